"""Meta-gradients of the inner-loop methods, unit by unit, in worker threads.

The reference (``algorithm.loss(net, batch).backward()``) keeps every task's
graph alive until one backward pass. Here each unit -- a task, or for MAML and
its variants a group of tasks adapted together -- is differentiated on its own
and its graphs freed at once, as learn2learn does per task, and units run in
worker threads (:mod:`.threads`).

A group's support sets go through the network together where a grouped path
is registered (:mod:`.grouped`): task by task, the second-order part of a task
is per-op overhead on 5-row tensors, which grouping amortises. Each task's
query pass then runs on its adapted state detached from the group's graph (one
query graph alive at a time), and one last backward carries the query
gradients through the group's inner loop. Gradients equal the reference's
(float64 tests).
"""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..algorithms import MAML, InnerLoopMethod, TaskBatch, task_targets
from ..net import widest_activations
from . import find, register
from .threads import accumulate_gradients, n_workers

__all__ = ["GROUP_BUDGET", "GROUP_SIZE", "group_size"]

# At most 4 tasks a group (as fast as 8 here, 40-50 MiB less), and at most 2M
# floats in the group's widest support activation: its second-order graph is
# alive while its tasks' query passes run (benchmarks/README.md).
GROUP_SIZE = 4
GROUP_BUDGET = 2**21


def group_size(net, batch: TaskBatch, workers: int) -> int:
    """Most tasks adapted together: 1 (task by task) unless the network has a
    grouped path; at most :data:`GROUP_SIZE`, the tasks' share per worker,
    and what keeps the group's widest support activation within
    :data:`GROUP_BUDGET` floats."""
    if find("embed_tasks", net) is None:
        return 1
    n_tasks, n_support = batch.support_x.shape[:2]
    per_task = n_support * widest_activations(net)[0]
    size = min(GROUP_SIZE, -(-n_tasks // workers), GROUP_BUDGET // max(1, per_task))
    return max(1, size)


def _vector_jacobian_product(outputs, vectors, inputs) -> tuple:
    """``torch.autograd.grad(outputs, inputs, grad_outputs=vectors)``, through
    a scalar: the gradient of ``sum((o * v).sum())`` feeds each output's graph
    exactly its vector (the backward of ``* v`` multiplies ``1.0`` by `v`), so
    the result is the same to the bit. Given tensors as ``grad_outputs``, torch
    checks their shapes with ``torch.fx``'s symbolic shapes, whose first use
    imports SymPy: about 30 MiB of Python objects for the process's life."""
    scalar = sum((o * v).sum() for o, v in zip(outputs, vectors, strict=True))
    return torch.autograd.grad(scalar, inputs, allow_unused=True)


def _add_into(total: list, grads) -> None:
    for i, grad in enumerate(grads):
        if grad is not None:
            total[i] = grad if total[i] is None else total[i] + grad


def _group_gradients(algorithm: MAML, net, named, params, batch, tasks: range):
    """Gradient of the query losses of a group of tasks adapted together,
    each divided by the meta-batch size; and (loss, score) per task."""
    rows = slice(tasks.start, tasks.stop)
    group = batch.tasks(rows)
    state = algorithm.adapt_tasks(
        net,
        named,
        group.support_x,
        group.support_y,
        batch.n_way,
        create_graph=not algorithm.first_order,
    )
    adapted, spec = tree_flatten(state)
    tracked = [t for t in adapted if t.requires_grad]
    upstream = [torch.zeros_like(t) for t in tracked]
    total: list = [None] * len(params)
    extras = []
    for j, task in enumerate(tasks):
        leaves = [t[j].detach().requires_grad_(t.requires_grad) for t in adapted]
        loss, score = algorithm.query_loss(
            net,
            tree_unflatten(leaves, spec),
            batch.query_x[task],
            task_targets(batch.query_y, task),
        )
        inputs = [leaf for leaf in leaves if leaf.requires_grad]
        grads = torch.autograd.grad(
            loss / batch.n_tasks, [*inputs, *params], allow_unused=True
        )
        for into, grad in zip(upstream, grads[: len(inputs)], strict=True):
            if grad is not None:
                into[j].copy_(grad)
        _add_into(total, grads[len(inputs) :])  # e.g. ANIL's body
        extras.append((loss.item(), score.item()))
    if tracked:
        _add_into(total, _vector_jacobian_product(tracked, upstream, params))
    return total, extras


def forms_mamls_loss(algorithm) -> bool:
    """A MAML whose meta-training loss is MAML's own: the grouped path
    recomputes that loss (``adapt_tasks`` then ``query_loss`` per task), so a
    subclass that overrides ``loss`` takes the task-by-task path, which calls
    its ``loss``."""
    return isinstance(algorithm, MAML) and type(algorithm).loss is MAML.loss


@register("meta_gradient", forms_mamls_loss)
def grouped_meta_gradient(algorithm: MAML, net, batch: TaskBatch, n_jobs=None):
    """Add the meta-gradient of `batch` to ``.grad``, groups of tasks in
    worker threads; returns ``(loss, metrics)`` as the reference reports."""
    n_tasks = batch.n_tasks
    workers = n_workers(n_jobs, n_tasks, batch.support_x.device, net)
    size = group_size(net, batch, workers)
    # as many groups as balance the workers, sizes differing by at most 1
    n_groups = min(n_tasks, workers * -(-n_tasks // (workers * size)))
    bounds = [k * n_tasks // n_groups for k in range(n_groups + 1)]
    groups = [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]
    named = dict(net.named_parameters())
    params = [p for p in named.values() if p.requires_grad]
    results = accumulate_gradients(
        params,
        len(groups),
        lambda g: _group_gradients(algorithm, net, named, params, batch, groups[g]),
        workers,
    )
    losses, scores = zip(*(task for group in results for task in group), strict=True)
    return sum(losses) / n_tasks, {algorithm.metric: sum(scores) / n_tasks}


@register("meta_gradient", lambda algorithm: isinstance(algorithm, InnerLoopMethod))
def task_meta_gradient(algorithm: InnerLoopMethod, net, batch: TaskBatch, n_jobs=None):
    """Add the meta-gradient of `batch` to ``.grad``, task by task in worker
    threads (any inner-loop method: its loss is the mean of its tasks')."""
    n_tasks = batch.n_tasks
    params = [p for p in net.parameters() if p.requires_grad]

    def unit(task: int):
        loss, metrics = algorithm.loss(net, batch.tasks(slice(task, task + 1)))
        grads = torch.autograd.grad(loss / n_tasks, params, allow_unused=True)
        return grads, (loss.item(), metrics[algorithm.metric])

    workers = n_workers(n_jobs, n_tasks, batch.support_x.device, net)
    results = accumulate_gradients(params, n_tasks, unit, workers)
    losses, scores = zip(*results, strict=True)
    return sum(losses) / n_tasks, {algorithm.metric: sum(scores) / n_tasks}
