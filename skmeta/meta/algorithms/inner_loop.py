"""The one functional inner loop of the gradient-based methods.

Parameters in, adapted parameters out: :meth:`InnerLoopMethod.adapt_tasks`
takes the network's parameters as a mapping (the meta-parameters during
meta-training, detached copies in ``FewShotClassifier.fit``) and returns each
task's adapted weights, head and support batch statistics, writing nothing
into the network. MAML, first-order MAML, Meta-SGD, ANIL, Proto-MAML and Reptile
are small subclasses that each override one hook:

- :meth:`~InnerLoopMethod.adapted_parameters` -- which parameters adapt (ANIL:
  the head only);
- :meth:`~InnerLoopMethod.sgd_step` -- where step sizes come from (Meta-SGD:
  learnt per weight);
- :meth:`~InnerLoopMethod.initial_head` -- how the head starts (Proto-MAML:
  from the support prototypes);
- ``loss`` -- how the meta-gradient is formed (MAML: the query loss after the
  inner loop; Reptile: a step towards the adapted weights).

Classification and regression differ by the head (:mod:`.heads`) only.
"""

from __future__ import annotations

import torch

from ..functional import embed_once, embed_tasks
from ..net import MetaNet
from ..setting_checks import (
    InvalidSetting,
    check_bool_setting,
    check_int_setting,
    check_real_setting,
)
from .base import AdaptationDiverged, Algorithm, map_tensors
from .chunked import (
    adapt_chunk_rows,
    auto_batch_rows,
    chunked_inner_loop,
    gradient_chunk_rows,
    minibatch_rows,
)
from .divergence import check_adaptation, settings_text
from .heads import ClassificationHead, RegressionHead

__all__ = ["InnerLoopMethod", "task_state"]

HEAD = ("head_weight", "head_bias")
#: The most inner steps, 100 times the most this repository's tests and
#: benchmarks take (10): a model file's setting is what fit runs, so it has
#: a bound (a file's 10**30 loaded, and fit ran until stopped).
MAX_INNER_STEPS = 10_000


def task_state(state: dict, task: int) -> dict:
    """One task's part of a state from :meth:`InnerLoopMethod.adapt_tasks`."""
    return {
        "weights": {k: w[task] for k, w in state["weights"].items()},
        "head_weight": state["head_weight"][task],
        "head_bias": state["head_bias"][task],
        "stats": [(mean[task], var[task]) for mean, var in state["stats"]],
    }


def _tensors(value):
    """The tensors of a nest of dicts, lists and tuples."""
    found = []
    map_tensors(found.append, value)
    return found


class InnerLoopMethod(Algorithm):
    """Base of the methods that adapt by gradient steps on the support set.

    Parameters
    ----------
    inner_lr : float, default=0.4
        Step size of the inner SGD loop.
    inner_steps : int, default=1
        Inner SGD steps on the support set.
    regression : bool, default=False
        Real-valued targets: a linear output and mean squared error
        (:class:`~.heads.RegressionHead`) instead of the any-way classification
        head.
    inner_batch_size : int, "auto" or None, default="auto"
        Rows per inner step when a trained model adapts (``fit``, validation,
        ``episodic_score``): a support set of more rows takes each step on
        a mini-batch of that many (:func:`~.chunked.minibatch_rows`: classes
        in their shares, the mini-batch's batch statistics where the body
        adapts), which costs time linear in it rather than in the support
        set. "auto" (:func:`~.chunked.auto_batch_rows`) takes whole-set
        steps on a support set of up to 1,000 rows (every usual episode:
        20-way 5-shot is 100), and mini-batches of at most 400 rows on a
        larger one. None takes every step on the whole support set (exact,
        at any size).
        Meta-training's own inner loop on its episodes always takes the
        whole support set.
    """

    settings = ("inner_lr", "inner_steps", "inner_batch_size")
    adaptation_settings = ("inner_lr", "inner_steps", "inner_batch_size")
    supports_regression = True
    task_norm = True
    parallel_tasks = True  # skmeta.meta.accel.meta_gradient's worker threads
    # the head starts from the support embeddings (first-order methods then
    # keep the support graph for the query loss's gradient)
    head_from_support = False

    def __init__(
        self,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        regression: bool = False,
        inner_batch_size: int | str | None = "auto",
    ) -> None:
        # a float32 rate: torch fails converting a larger one
        self.inner_lr = check_real_setting(
            "inner_lr", inner_lr, maximum=torch.finfo(torch.float32).max
        )
        self.inner_steps = check_int_setting(
            "inner_steps", inner_steps, maximum=MAX_INNER_STEPS
        )
        regression = check_bool_setting("regression", regression)
        if regression and not self.supports_regression:
            raise ValueError(f"method={self.name!r} does not do regression.")
        if not (isinstance(inner_batch_size, str) and inner_batch_size == "auto"):
            try:
                inner_batch_size = check_int_setting(
                    "inner_batch_size", inner_batch_size, allow_none=True
                )
            except InvalidSetting:
                raise InvalidSetting(
                    'inner_batch_size must be "auto", None or an int >= 1; got '
                    f"inner_batch_size={inner_batch_size!r}."
                ) from None
        self.inner_batch_size = inner_batch_size
        self.head = RegressionHead() if regression else ClassificationHead()

    def batch_rows(self, n_rows: int) -> int | None:
        """Rows per adaptation step on a support set of `n_rows` rows, with
        `inner_batch_size` "auto" resolved (:func:`~.chunked.auto_batch_rows`);
        None: every step takes the whole set."""
        if self.inner_batch_size == "auto":
            return auto_batch_rows(n_rows)
        return self.inner_batch_size

    @property
    def regression(self) -> bool:
        return isinstance(self.head, RegressionHead)

    @property
    def metric(self) -> str:
        return self.head.metric

    def method_params(self) -> dict:
        params = super().method_params()
        if self.regression:
            params["regression"] = True
        if self.inner_batch_size == "auto":  # the default: files as before it
            del params["inner_batch_size"]
        return params

    def meta_parameters(self, net, embedding_dim, n_classes):
        return self.head.meta_parameters(embedding_dim)

    # -- hooks ------------------------------------------------------------
    def adapted_parameters(self, params: dict) -> dict[str, torch.Tensor]:
        """The backbone parameters the inner loop changes, from `params` (all
        the network's, by name): all of them."""
        return {k: v for k, v in params.items() if k.startswith("backbone.")}

    def inner_parameters(self, net: MetaNet, params: dict) -> dict[str, torch.Tensor]:
        """The parameters the inner loop adapts: :meth:`adapted_parameters`
        less the network's frozen ones (``net.frozen_parameters``, see
        :mod:`skmeta.meta.freezing`), which keep their meta-trained values."""
        frozen = getattr(net, "frozen_parameters", frozenset())
        return {
            name: p
            for name, p in self.adapted_parameters(params).items()
            if name not in frozen
        }

    def sgd_step(self, params, names, tensors, grads) -> list[torch.Tensor]:
        """``tensor - inner_lr * grad`` for each tensor, differentiable.

        One fused ``_foreach_add`` with a scalar rate: one autograd node
        instead of two per tensor, about 4x faster than a loop here.
        """
        return list(torch._foreach_add(tensors, grads, alpha=-self.inner_lr))

    def initial_head(self, params, support_emb, support_y, n_classes):
        """Per-task head ``(T, ways, dim)``, ``(T, ways)`` before the first
        step: the meta-learnt one (:mod:`.heads`)."""
        weight, bias = (params["extra." + k] for k in HEAD)
        return self.head.initial(weight, bias, support_emb.shape[0], n_classes)

    # -- the inner loop ---------------------------------------------------
    def adapt_tasks(
        self,
        net,
        params,
        support_x,
        support_y,
        n_classes,
        create_graph,
        losses=None,
        detach_steps=False,
    ):
        """Adapt to several tasks at once, each from the same meta-weights.

        Parameters
        ----------
        net : MetaNet
        params : dict of str to Tensor
            The network's parameters by name (``net.named_parameters()``), or
            stand-ins for them.
        support_x : Tensor of shape (n_tasks, n_support, n_features)
        support_y : Tensor of shape (n_support,) or (n_tasks, n_support)
            Ways shared by every task, or per-task regression targets.
        n_classes : int
        create_graph : bool
            Keep the graph of the steps (second-order meta-gradients).
        losses : list, optional
            Receives each step's support loss (the sum over tasks, a 0-d
            tensor, detached) before its update.
        detach_steps : bool, default=False
            Start each step from leaves of its own, with no graph back to
            the steps before (adaptation at deployment, whose state is
            detached anyway): memory stays that of one step. Kept, the graph
            of the steps held about twice the weights per step (a 70,000
            weight MLP: 6.7 GB over 10,000 steps).

        Returns
        -------
        state : dict
            ``weights`` (name to ``(n_tasks, *shape)``), ``head_weight``,
            ``head_bias`` and ``stats`` (per task batch norm ``(mean, var)``,
            each ``(n_tasks, channels)``), all with a leading task axis.
        """
        n_tasks = support_x.shape[0]
        weights = {
            name: p.expand(n_tasks, *p.shape)
            for name, p in self.inner_parameters(net, params).items()
        }
        emb, stats = embed_tasks(net, weights, support_x)
        head_w, head_b = self.initial_head(params, emb, support_y, n_classes)
        for step in range(self.inner_steps):
            if step and weights:  # the body moved: embed again
                emb, stats = embed_tasks(net, weights, support_x)
            outputs = torch.baddbmm(head_b.unsqueeze(1), emb, head_w.transpose(1, 2))
            # the sum of the tasks' losses: each task's weights get its own gradient
            loss = self.head.loss_sum(outputs, support_y)
            if losses is not None:
                losses.append(loss.detach())
            names = [*weights, *HEAD]
            current = [*weights.values(), head_w, head_b]
            grads = torch.autograd.grad(
                loss,
                current,
                create_graph=create_graph,
                retain_graph=create_graph or self.head_from_support,
            )
            *updated, head_w, head_b = self.sgd_step(params, names, current, grads)
            if detach_steps:  # as chunked_inner_loop: no graph across steps
                *updated, head_w, head_b = (
                    t.detach().requires_grad_(True) for t in [*updated, head_w, head_b]
                )
            weights = dict(zip(names[:-2], updated, strict=True))
        if weights and stats:  # task batch norm: the adapted weights' statistics
            _, stats = embed_tasks(net, weights, support_x)
        return {
            "weights": weights,
            "head_weight": head_w,
            "head_bias": head_b,
            "stats": stats,
        }

    def outputs(self, net: MetaNet, state: dict, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``(n_rows, ways)`` of one task's adapted `state` for rows
        `x`. The pass is differentiated at most once (second derivatives come
        from the inner loop)."""
        emb = embed_once(net, state["weights"], x, state["stats"])
        return torch.nn.functional.linear(emb, state["head_weight"], state["head_bias"])

    def query_loss(self, net, state, query_x, query_y):
        """(loss, score) of one task's adapted `state` on its queries."""
        outputs = self.outputs(net, state, query_x)
        return self.head.loss(outputs, query_y), self.head.score(outputs, query_y)

    # -- Algorithm interface ----------------------------------------------
    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        """Adapt to one support set (see :class:`~.base.Algorithm`).

        A support set of more rows than one chunk
        (:func:`~.chunked.adapt_chunk_rows`) is run in chunks
        (:func:`~.chunked.gradient_chunk_rows`) with the whole
        set's batch statistics given (:mod:`.chunked`); a smaller one in one
        pass. With ``inner_batch_size`` set and more support rows than it,
        each step takes a mini-batch of the rows instead
        (:func:`~.chunked.minibatch_rows`). The support loss after the last
        step is computed too: :func:`~.divergence.check_adaptation` raises
        :class:`~.base.AdaptationDiverged` when a step's loss, the adapted
        state or the support outputs are not finite, and warns when the loss
        rose by more than 5% over the steps.
        """
        losses: list[torch.Tensor] = []
        chunk_rows = adapt_chunk_rows(net)
        n_rows = support_x.shape[0]
        batch_rows = self.batch_rows(n_rows)
        minibatch = batch_rows is not None and n_rows > batch_rows
        with torch.enable_grad():
            # leaves of our own, sharing the network's memory: the network and
            # its parameters are left as they are (shared by other callers)
            params = {
                name: p.detach().requires_grad_(True)
                for name, p in net.named_parameters()
            }
            if self.regression:  # per-task targets
                support_y = support_y.unsqueeze(0)
            if minibatch or n_rows > chunk_rows:
                state = chunked_inner_loop(
                    self,
                    net,
                    params,
                    support_x,
                    support_y,
                    n_classes,
                    min(chunk_rows, gradient_chunk_rows(net)),
                    losses,
                    batch_size,
                    minibatch_rows(
                        n_rows,
                        batch_rows,
                        self.inner_steps,
                        None if self.regression else support_y,
                    )
                    if minibatch
                    else None,
                )
            else:
                state = self.adapt_tasks(
                    net,
                    params,
                    support_x.unsqueeze(0),
                    support_y,
                    n_classes,
                    False,
                    losses,
                    detach_steps=True,
                )
                state = task_state(state, 0)
        state = map_tensors(torch.Tensor.detach, state)
        with torch.no_grad():  # the support loss after the last step
            outputs = torch.cat(
                [self.outputs(net, state, part) for part in support_x.split(batch_size)]
            )
            targets = support_y[0] if self.regression else support_y
            losses.append(self.head.loss(outputs, targets))
        check_adaptation(self, losses, [*_tensors(state), outputs])
        return state

    def predict(self, net, state, query_x, batch_size=100):
        chunks = [self.outputs(net, state, part) for part in query_x.split(batch_size)]
        outputs = torch.cat(chunks).double()
        if not torch.isfinite(outputs).all():
            raise AdaptationDiverged(
                f"The adapted model's outputs are not finite ({settings_text(self)}."
            )
        return outputs

    def evaluate(self, outputs, targets):
        outputs = outputs.float()
        return self.head.loss(outputs, targets).item(), self.head.score(
            outputs, targets
        ).item()
