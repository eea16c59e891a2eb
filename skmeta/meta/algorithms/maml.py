"""Optimisation-based meta-learning: MAML, first-order MAML, Meta-SGD, ANIL,
Proto-MAML (Finn et al. 2017; Li et al. 2017; Raghu et al. 2019; Triantafillou
et al. 2019).

One functional inner loop serves all five, in meta-training and in
``FewShotClassifier.fit``. The classifier head adapts to any number of classes:
it starts as one meta-learnt weight vector and bias shared by every class
(zero at first), or, for Proto-MAML, from the support prototypes. A network
whose ``extra["head_weight"]`` is a matrix, one row per way, has the fixed-way
head of Finn et al. instead. Batch norm uses the support set's statistics
(:mod:`skmeta.meta.norm`); a network with plain batch norm uses each batch's.
Meta-training adapts the tasks of a meta-batch in groups, the support sets of a
group through the network together where the backbone allows
(:mod:`skmeta.meta.grouped`), groups in parallel threads
(:mod:`skmeta.meta.parallel`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..first_order import first_order_embed, supports_first_order_embed
from ..grouped import grouped_embed, supports_grouped
from ..net import MetaNet, widest_activations
from ..norm import task_statistics
from ..parallel import accumulate_gradients, accumulate_task_gradients, n_task_workers
from .base import Algorithm, TaskBatch, map_tensors
from .protonet import prototypes_of_tasks

__all__ = ["ANIL", "FOMAML", "MAML", "MetaSGD", "ProtoMAML"]


def _add_into(total: list, grads) -> None:
    """``total[i] += grads[i]`` where given; None entries stay None."""
    for i, grad in enumerate(grads):
        if grad is not None:
            total[i] = grad if total[i] is None else total[i] + grad


def _vector_jacobian_product(outputs, vectors, inputs) -> tuple:
    """``torch.autograd.grad(outputs, inputs, grad_outputs=vectors)``, through
    a scalar: the gradient of ``sum((o * v).sum())`` feeds each output's graph
    exactly its vector (the backward of ``* v`` multiplies ``1.0`` by `v`), so
    the result is the same to the bit. Given tensors as ``grad_outputs``, torch
    checks their shapes with ``torch.fx``'s symbolic shapes, whose first use
    imports SymPy: about 30 MiB of Python objects for the process's life.

    Returns one gradient (or None, for an input no output depends on) per input.
    """
    scalar = sum((o * v).sum() for o, v in zip(outputs, vectors, strict=True))
    return torch.autograd.grad(scalar, inputs, allow_unused=True)


def _lr_key(name: str) -> str:
    """ParameterDict key of the Meta-SGD learning rate of parameter `name`."""
    return "lr__" + name.replace(".", "__")


class MAML(Algorithm):
    """Model-Agnostic Meta-Learning (second order unless `first_order`).

    Parameters
    ----------
    inner_lr : float, default=0.4
        Step size of the inner SGD loop.
    inner_steps : int, default=1
        Inner SGD steps on the support set.
    first_order : bool, default=False
        Drop second derivatives (FOMAML): faster, less memory.
    regression : bool, default=False
        Real-valued targets: a linear output (meta-learnt initialisation) and
        mean squared error instead of the any-way classification head.
    """

    name = "maml"
    summary = "MAML: second-order gradient steps on the support set"
    supports_regression = True
    settings = ("inner_lr", "inner_steps", "first_order")
    task_norm = True
    head_only = False  # ANIL adapts the head alone
    learn_inner_lr = False  # Meta-SGD learns one rate per weight
    proto_head = False  # Proto-MAML starts the head from prototypes
    group_size = 4  # tasks adapted together in meta-training (grouped.py) ...
    group_budget = 2**21  # ... and the floats of their widest support activation

    def __init__(
        self,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        first_order: bool = False,
        regression: bool = False,
    ) -> None:
        if not inner_lr > 0:
            raise ValueError(f"inner_lr must be positive, got {inner_lr}.")
        if int(inner_steps) != inner_steps or inner_steps < 1:
            raise ValueError(f"inner_steps must be an int >= 1, got {inner_steps}.")
        self.inner_lr = float(inner_lr)
        self.inner_steps = int(inner_steps)
        self.first_order = bool(first_order)
        self.regression = bool(regression)
        self.metric = "mse" if self.regression else "accuracy"
        if self.regression and self.proto_head:
            raise ValueError(f"method={self.name!r} does not do regression.")

    def method_params(self) -> dict:
        params = super().method_params()
        if self.regression:
            params["regression"] = True
        return params

    # -- meta-parameters ----------------------------------------------------
    def meta_parameters(self, net, embedding_dim, n_classes):
        if self.regression:  # a linear output layer, initialised as nn.Linear
            head = torch.nn.Linear(embedding_dim, 1)
            params = {
                "head_weight": head.weight.detach(),
                "head_bias": head.bias.detach(),
            }
        elif self.proto_head:
            params = {}
        else:  # one vector shared by all classes: any number of ways
            params = {
                "head_weight": torch.zeros(embedding_dim),
                "head_bias": torch.zeros(()),
            }
        if self.learn_inner_lr:
            shapes = {name: p.shape for name, p in self._adapted(net).items()}
            shapes.update(head_weight=(embedding_dim,), head_bias=())
            if self.regression:
                shapes.update(head_weight=(1, embedding_dim), head_bias=(1,))
            for name, shape in shapes.items():
                params[_lr_key(name)] = torch.full(shape, self.inner_lr)
        return params

    def _adapted(self, net: MetaNet) -> dict[str, torch.Tensor]:
        """Backbone weights the inner loop changes (none for ANIL)."""
        if self.head_only:
            return {}
        return {f"backbone.{name}": p for name, p in net.backbone.named_parameters()}

    def _lr(self, net: MetaNet, name: str):
        return net.extra[_lr_key(name)] if self.learn_inner_lr else self.inner_lr

    # -- the inner loop -------------------------------------------------------
    def _embed(self, net, weights, x, stats=None):
        """Embed rows with `weights` swapped in; returns (embedding, batch stats)."""
        with task_statistics(net, stats) as used:
            out = (
                functional_call(net, weights, (x,), strict=False) if weights else net(x)
            )
        return out, used

    def _embed_tasks(self, net, weights, x):
        """Embed each task's rows with its own weights and batch statistics.

        `weights` maps parameter names to per-task values ``(T, *shape)``, `x`
        is ``(T, n, n_features)``. Returns embeddings ``(T, n, dim)`` and the
        statistics of each task batch norm as ``(mean, var)`` of shape
        ``(T, channels)``. Several tasks of a built-in backbone go through the
        network together (:mod:`skmeta.meta.grouped`); otherwise task by task.
        """
        n_tasks = x.shape[0]
        if n_tasks > 1 and supports_grouped(net):
            return grouped_embed(net, weights, x)
        embeddings, per_task = [], []
        for task in range(n_tasks):
            emb, stats = self._embed(
                net, {name: w[task] for name, w in weights.items()}, x[task]
            )
            embeddings.append(emb)
            per_task.append(stats)
        stats = [
            tuple(torch.stack(values) for values in zip(*layer, strict=True))
            for layer in zip(*per_task, strict=True)
        ]
        return torch.stack(embeddings), stats

    def _initial_head(self, net, support_emb, support_y, n_classes):
        """Per-task head ``(T, ways, dim)``, ``(T, ways)``: ``ways`` is
        `n_classes`, or 1 for regression."""
        n_tasks = support_emb.shape[0]
        if self.regression:
            weight, bias = net.extra["head_weight"], net.extra["head_bias"]
        elif self.proto_head:
            protos = prototypes_of_tasks(support_emb, support_y, n_classes)
            return 2 * protos, -(protos * protos).sum(-1)
        else:
            weight, bias = net.extra["head_weight"], net.extra["head_bias"]
            if weight.dim() == 2:  # a fixed-way head, one row per way (Finn et al.)
                if weight.shape[0] != n_classes:
                    raise ValueError(
                        f"This network's head has {weight.shape[0]} ways; it "
                        f"cannot adapt to {n_classes} classes."
                    )
            else:  # one vector shared by all classes: any number of ways
                weight = weight.expand(n_classes, -1)
                bias = bias.expand(n_classes)
        return (
            weight.expand(n_tasks, *weight.shape),
            bias.expand(n_tasks, *bias.shape),
        )

    @staticmethod
    def _head_outputs(emb, head_w, head_b):
        """Per-task ``emb @ head_w.T + head_b``: ``(T, n, dim) -> (T, n, ways)``."""
        return torch.baddbmm(head_b.unsqueeze(1), emb, head_w.transpose(1, 2))

    def _inner_loop_tasks(self, net, support_x, support_y, n_classes, create_graph):
        """Adapt to several tasks at once, each from the same meta-weights.

        Parameters
        ----------
        support_x : Tensor of shape (n_tasks, n_support, n_features)
        support_y : Tensor of shape (n_support,) or (n_tasks, n_support)
            Ways shared by every task, or per-task regression targets.

        Returns
        -------
        state : dict
            ``weights`` (name to ``(n_tasks, *shape)``), ``head_weight``,
            ``head_bias`` and ``stats`` (per layer ``(mean, var)``, each
            ``(n_tasks, channels)``), all with a leading task axis.
        """
        n_tasks = support_x.shape[0]
        weights = {
            name: p.expand(n_tasks, *p.shape) for name, p in self._adapted(net).items()
        }
        emb, stats = self._embed_tasks(net, weights, support_x)
        head_w, head_b = self._initial_head(net, emb, support_y, n_classes)
        if self.head_only:  # ANIL: the body is fixed within the task
            emb_fixed = emb
        for step in range(self.inner_steps):
            if step and not self.head_only:
                emb, stats = self._embed_tasks(net, weights, support_x)
            elif self.head_only:
                emb = emb_fixed
            outputs = self._head_outputs(emb, head_w, head_b)
            # the sum of the tasks' losses: each task's weights get its own gradient
            loss = self._tasks_loss(outputs, support_y)
            names = [*weights, "head_weight", "head_bias"]
            current = [*weights.values(), head_w, head_b]
            grads = torch.autograd.grad(
                loss,
                current,
                create_graph=create_graph,
                # first-order Proto-MAML still differentiates the query loss
                # through the prototypes that initialise the head
                retain_graph=create_graph or self.proto_head,
            )
            *updated, head_w, head_b = self._sgd_step(net, names, current, grads)
            weights = dict(zip(names[:-2], updated, strict=True))
        if weights and stats and not self.head_only:
            # task batch norm: the statistics of the adapted weights
            _, stats = self._embed_tasks(net, weights, support_x)
        return {
            "weights": weights,
            "head_weight": head_w,
            "head_bias": head_b,
            "stats": stats,
        }

    def _inner_loop(self, net, support_x, support_y, n_classes, create_graph):
        """Adapted weights, head and support statistics for one task."""
        if self.regression:  # per-task targets
            support_y = support_y.unsqueeze(0)
        state = self._inner_loop_tasks(
            net, support_x.unsqueeze(0), support_y, n_classes, create_graph
        )
        return map_tensors(lambda t: t[0], state)

    def _sgd_step(self, net, names, tensors, grads) -> list[torch.Tensor]:
        """``tensor - lr * grad`` for each tensor, differentiable.

        One fused ``_foreach_add`` with a scalar rate: one autograd node
        instead of two per tensor, about 4x faster than the loop here.
        """
        if not self.learn_inner_lr:
            return list(torch._foreach_add(tensors, grads, alpha=-self.inner_lr))
        return [
            t - self._lr(net, name) * g
            for name, t, g in zip(names, tensors, grads, strict=True)
        ]

    def _tasks_loss(self, outputs, targets):
        """Sum over tasks of each task's mean loss; outputs ``(T, n, ways)``."""
        n_tasks, n_rows = outputs.shape[:2]
        if self.regression:
            return (outputs.squeeze(-1) - targets).pow(2).sum() / n_rows
        targets = targets.expand(n_tasks, n_rows).reshape(-1)
        flat = outputs.reshape(n_tasks * n_rows, -1)
        return F.cross_entropy(flat, targets, reduction="sum") / n_rows

    def _task_loss(self, outputs, targets):
        if self.regression:
            return F.mse_loss(outputs.squeeze(-1), targets)
        return F.cross_entropy(outputs, targets)

    def _score(self, outputs, targets) -> torch.Tensor:
        """The reported metric: accuracy, or mean squared error."""
        if self.regression:
            return F.mse_loss(outputs.squeeze(-1), targets).detach()
        return (outputs.argmax(1) == targets).float().mean()

    @staticmethod
    def _task_targets(labels: torch.Tensor, task: int | slice) -> torch.Tensor:
        """Labels of one task (or a slice of tasks): shared class ways, or
        per-task regression targets."""
        return labels[task] if labels.dim() == 2 else labels

    def _logits(self, net, state, query_x):
        """Query logits of an adapted `state`. The query pass is differentiated
        once (second derivatives come from the inner loop), so a Conv4 runs it
        with once-differentiable fused batch norms (:mod:`..first_order`)."""
        if supports_first_order_embed(net):
            emb = first_order_embed(net, state["weights"], query_x, state["stats"])
        else:
            emb, _ = self._embed(net, state["weights"], query_x, state["stats"])
        return F.linear(emb, state["head_weight"], state["head_bias"])

    def _task_objective(self, net, batch: TaskBatch, task: int):
        """One task of a meta-batch: (objective, loss, score).

        `objective` is what meta-training differentiates; `loss` (detached) and
        `score` are what it reports. For MAML both are the query loss after the
        inner loop; Reptile differentiates a surrogate instead.
        """
        support_y = self._task_targets(batch.support_y, task)
        query_y = self._task_targets(batch.query_y, task)
        state = self._inner_loop(
            net,
            batch.support_x[task],
            support_y,
            batch.n_way,
            create_graph=not self.first_order,
        )
        outputs = self._logits(net, state, batch.query_x[task])
        loss = self._task_loss(outputs, query_y)
        return loss, loss.detach(), self._score(outputs, query_y)

    # -- Algorithm interface --------------------------------------------------
    def loss(self, net: MetaNet, batch: TaskBatch):
        n_tasks = batch.support_x.shape[0]
        objectives, losses, scores = zip(
            *(self._task_objective(net, batch, task) for task in range(n_tasks)),
            strict=True,
        )
        objective = torch.stack(objectives).mean()
        # value: the reported loss; gradient: the objective's
        loss = torch.stack(losses).mean() + (objective - objective.detach())
        return loss, {self.metric: torch.stack(scores).mean().item()}

    def meta_gradient(self, net: MetaNet, batch: TaskBatch):
        """Tasks in parallel threads on a CPU (:mod:`skmeta.meta.parallel`), in
        groups whose support sets go through a built-in backbone together
        (:meth:`_group_gradients`), otherwise task by task, each graph freed
        after its gradient."""
        n_tasks = batch.support_x.shape[0]
        n_workers = n_task_workers(n_tasks, batch.support_x.device)
        size = self._group_size(net, batch, n_workers)
        if size == 1:

            def task_objective(module, task):
                objective, loss, score = self._task_objective(module, batch, task)
                return objective / n_tasks, (loss.item(), score.item())

            results = accumulate_task_gradients(net, n_tasks, task_objective, n_workers)
        else:
            # as many groups as balance the workers, sizes differing by at most 1
            n_groups = min(n_tasks, n_workers * -(-n_tasks // (n_workers * size)))
            bounds = [k * n_tasks // n_groups for k in range(n_groups + 1)]
            groups = [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]

            def group_gradients(module, params, g):
                return self._group_gradients(module, params, batch, groups[g])

            results = [
                task
                for group in accumulate_gradients(
                    net, len(groups), group_gradients, n_workers
                )
                for task in group
            ]
        losses, scores = zip(*results, strict=True)
        return sum(losses) / n_tasks, {self.metric: sum(scores) / n_tasks}

    def _group_size(self, net: MetaNet, batch: TaskBatch, n_workers: int) -> int:
        """Most tasks adapted together in meta-training (1: task by task).

        Groups need a backbone that runs grouped and an objective that is the
        query loss. Their size is at most ``group_size``, the tasks' share per
        worker, and what keeps the group's widest support activation within
        ``group_budget`` floats: the group's second-order graph is alive while
        the tasks' query passes run. ``meta_gradient`` then splits the tasks
        into as many groups as keep the workers balanced.
        """
        query_loss = type(self)._task_objective is MAML._task_objective
        if not query_loss or not supports_grouped(net):
            return 1
        n_tasks, n_support = batch.support_x.shape[:2]
        per_task = n_support * widest_activations(net)[0]
        return max(
            1,
            min(
                self.group_size,
                -(-n_tasks // n_workers),
                self.group_budget // max(1, per_task),
            ),
        )

    def _group_gradients(self, net, params, batch: TaskBatch, tasks: range):
        """Meta-gradient of a group of tasks adapted together.

        The inner loops of the group run as one (:meth:`_inner_loop_tasks`);
        each task's query loss is then differentiated with respect to its
        adapted state, detached from that graph, so only one query graph is
        alive at a time; a last backward pass carries those gradients through
        the group's inner loop. The result is the gradient of the tasks' query
        losses, each divided by the meta-batch size, as task by task.

        Returns
        -------
        grads : list
            One gradient (or None) per tensor of `params`.
        extras : list of (loss, score)
            One per task of the group.
        """
        n_tasks = batch.support_x.shape[0]
        rows = slice(tasks.start, tasks.stop)
        state = self._inner_loop_tasks(
            net,
            batch.support_x[rows],
            self._task_targets(batch.support_y, rows),
            batch.n_way,
            create_graph=not self.first_order,
        )
        adapted, spec = tree_flatten(state)
        tracked = [t for t in adapted if t.requires_grad]
        upstream = [torch.zeros_like(t) for t in tracked]
        total: list = [None] * len(params)
        extras = []
        for j, task in enumerate(tasks):
            leaves = [t[j].detach().requires_grad_(t.requires_grad) for t in adapted]
            task_state = tree_unflatten(leaves, spec)
            query_y = self._task_targets(batch.query_y, task)
            outputs = self._logits(net, task_state, batch.query_x[task])
            loss = self._task_loss(outputs, query_y)
            inputs = [leaf for leaf in leaves if leaf.requires_grad]
            grads = torch.autograd.grad(
                loss / n_tasks, [*inputs, *params], allow_unused=True
            )
            for into, grad in zip(upstream, grads[: len(inputs)], strict=True):
                if grad is not None:
                    into[j].copy_(grad)
            _add_into(total, grads[len(inputs) :])  # e.g. ANIL's body
            extras.append((loss.item(), self._score(outputs, query_y).item()))
        if tracked:
            _add_into(total, _vector_jacobian_product(tracked, upstream, params))
        return total, extras

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        # A private copy: functional_call swaps tensors into the module, and the
        # network of a MetaModel is shared by every estimator using it.
        net = copy.deepcopy(net)
        with torch.enable_grad():
            for p in net.parameters():
                p.requires_grad_(True)
            state = self._inner_loop(
                net, support_x, support_y, n_classes, create_graph=False
            )
        return map_tensors(torch.Tensor.detach, state)

    def predict(self, net, state, query_x, batch_size=100):
        net = copy.deepcopy(net)  # private: see adapt
        chunks = [self._logits(net, state, part) for part in query_x.split(batch_size)]
        return torch.cat(chunks).double()

    def episode_metrics(self, net, batch):
        losses, scores = [], []
        for task, (support_x, query_x) in enumerate(
            zip(batch.support_x, batch.query_x, strict=True)
        ):
            support_y = self._task_targets(batch.support_y, task)
            query_y = self._task_targets(batch.query_y, task)
            state = self.adapt(net, support_x, support_y, batch.n_way)
            with torch.no_grad():
                outputs = self.predict(net, state, query_x).float()
            losses.append(self._task_loss(outputs, query_y).item())
            scores.append(self._score(outputs, query_y).item())
        return sum(losses) / len(losses), sum(scores) / len(scores)


class FOMAML(MAML):
    """First-order MAML: MAML without second derivatives."""

    name = "fomaml"
    summary = "first-order MAML"

    def __init__(self, inner_lr=0.4, inner_steps=1, first_order=True, regression=False):
        super().__init__(inner_lr, inner_steps, first_order, regression)


class MetaSGD(MAML):
    """Meta-SGD: MAML with one meta-learnt inner learning rate per weight."""

    name = "metasgd"
    summary = "Meta-SGD: MAML with learnt per-weight inner learning rates"
    learn_inner_lr = True


class ANIL(MAML):
    """Almost No Inner Loop: the inner loop adapts the head only."""

    name = "anil"
    summary = "ANIL: the inner loop adapts the head only"
    head_only = True


class ProtoMAML(MAML):
    """Proto-MAML: the head starts from the support prototypes (any number of
    ways), then the inner loop fine-tunes everything."""

    name = "protomaml"
    summary = "Proto-MAML: head started from the support prototypes"
    supports_regression = False
    proto_head = True
