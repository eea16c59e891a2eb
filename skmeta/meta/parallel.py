"""Meta-gradients of a batch of tasks, unit by unit, in parallel threads.

Gradient-based meta-learning differentiates through each task's inner loop.
Each task's graph is small (a 5-image support set, 75 queries), so one task run
with torch's own intra-op threads keeps a CPU core waiting much of the time, and
batching whole tasks with ``vmap`` or grouped convolutions costs memory and was
slower here (benchmarks/README.md). Instead, units of work -- single tasks, or
groups of tasks adapted together (``MAML._group_gradients``) -- go to as many
worker threads as torch has intra-op threads, each worker running its units one
at a time on one thread: torch kernels and the autograd engine release the
GIL, so the workers really run side by side. A unit's graphs are freed as soon
as its gradient is taken, so each worker holds one unit's graphs at a time.

Results do not depend on timing: units are dealt to workers in a fixed
round-robin order, and the gradients are summed in a fixed order."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

__all__ = [
    "accumulate_gradients",
    "accumulate_task_gradients",
    "n_task_workers",
    "replicate",
]

# Long-lived workers: glibc gives each thread its own malloc arena and keeps what
# it frees there, so fresh threads at every meta-batch would each leave an arena
# of freed task graphs behind (measured: +150 MiB of resident memory).
_POOL: dict[str, object] = {"pid": None, "executor": None, "size": 0}


def _executor(n_workers: int) -> ThreadPoolExecutor:
    if _POOL["pid"] != os.getpid() or _POOL["size"] < n_workers:
        if _POOL["executor"] is not None and _POOL["pid"] == os.getpid():
            _POOL["executor"].shutdown(wait=True)
        _POOL.update(
            pid=os.getpid(),
            executor=ThreadPoolExecutor(n_workers, thread_name_prefix="skmeta-task"),
            size=n_workers,
        )
    return _POOL["executor"]


def n_task_workers(n_tasks: int, device: torch.device | str = "cpu") -> int:
    """Worker threads for `n_tasks` tasks: torch's intra-op threads on a CPU.

    One on an accelerator, whose kernels are asynchronous anyway.
    """
    if torch.device(device).type != "cpu":
        return 1
    return max(1, min(n_tasks, torch.get_num_threads()))


def replicate(module: nn.Module) -> nn.Module:
    """A copy of `module` that shares every parameter and buffer with it.

    Only the module objects are new. ``torch.func.functional_call`` swaps
    tensors into the module it is given, and task batch norm keeps statistics on
    its modules, so concurrent workers each need their own modules; gradients
    still reach the shared parameters.
    """
    shared = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return copy.deepcopy(module, memo=shared)


@contextlib.contextmanager
def _intra_op_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def accumulate_task_gradients(
    net: nn.Module,
    n_tasks: int,
    task_objective: Callable[[nn.Module, int], tuple[torch.Tensor, object]],
    n_workers: int = 1,
) -> list:
    """Add the gradient of every task's objective to the ``.grad`` of `net`.

    Parameters
    ----------
    net : torch.nn.Module
        Its parameters that require grad receive the summed gradients (added to
        ``.grad``, as ``backward`` would).
    n_tasks : int
    task_objective : callable
        ``task_objective(module, i)`` returns ``(objective, extra)`` for task
        ``i``: a scalar tensor to differentiate (already weighted, e.g. divided by
        the number of tasks) and anything to hand back (detached). `module` is
        `net`, or a replica of it sharing its parameters (:func:`replicate`);
        use it rather than `net` for the forward pass.
    n_workers : int, default=1
        Threads; each runs with one intra-op thread. 1 runs the tasks in the
        calling thread without changing torch's thread settings.

    Returns
    -------
    extras : list
        The ``extra`` of each task, in task order.
    """

    def unit_gradients(module, params, i):
        objective, extra = task_objective(module, i)
        return torch.autograd.grad(objective, params, allow_unused=True), extra

    return accumulate_gradients(net, n_tasks, unit_gradients, n_workers)


def accumulate_gradients(
    net: nn.Module,
    n_units: int,
    unit_gradients: Callable[[nn.Module, list, int], tuple[tuple, object]],
    n_workers: int = 1,
) -> list:
    """Add gradients computed unit by unit to the ``.grad`` of `net`.

    As :func:`accumulate_task_gradients`, for units of work that take their
    gradients themselves: ``unit_gradients(module, params, i)`` returns
    ``(grads, extra)``, one gradient (or None) per tensor of `params`, the
    parameters of `net` that require grad. Units are dealt to the workers
    round-robin and summed in a fixed order.

    Returns
    -------
    extras : list
        The ``extra`` of each unit, in unit order.
    """
    params = [p for p in net.parameters() if p.requires_grad]
    n_workers = max(1, min(int(n_workers), n_units))
    extras: list = [None] * n_units
    # Accumulators allocated here, before any task: allocated by a worker in
    # the middle of its first task, they would pin that task's freed buffers
    # apart in the worker's malloc arena for the rest of the meta-batch.
    sums = [[torch.zeros_like(p) for p in params] for _ in range(n_workers)]
    reached = [False] * len(params)  # parameters some unit's gradient reached
    errors: list[BaseException] = []

    def work(worker: int, module: nn.Module) -> None:
        try:
            if n_workers > 1:
                # Before any op: OpenMP's thread count is per thread, and a
                # oneDNN convolution run first would open a team of the default
                # size, leaving an idle OpenMP thread per worker. More OpenMP
                # threads than cores make libgomp sleep at every barrier, and
                # the caller's multi-threaded work ran up to 2x slower after.
                torch.set_num_threads(1)
            total = sums[worker]
            for i in range(worker, n_units, n_workers):
                grads, extras[i] = unit_gradients(module, params, i)
                for j, (t, g) in enumerate(zip(total, grads, strict=True)):
                    if g is not None:
                        t.add_(g)
                        reached[j] = True
                del grads
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    if n_workers == 1:
        work(0, net)
    else:
        modules = [replicate(net) for _ in range(n_workers)]
        with _intra_op_threads(1):
            pool = _executor(n_workers)
            futures = [pool.submit(work, w, modules[w]) for w in range(n_workers)]
            for future in futures:
                future.result()
    if errors:
        raise errors[0]
    for worker_sum in sums:
        for p, g, used in zip(params, worker_sum, reached, strict=True):
            if not used:  # left alone, as backward would (the optimiser skips it)
                continue
            if p.grad is None:
                p.grad = g
            else:
                p.grad.add_(g)
    return extras
