"""Reptile (Nichol, Achiam & Schulman, 2018).

For each task, take `inner_steps` SGD steps from the meta-weights on all of the
task's rows; the meta-update moves the meta-weights towards the adapted ones.
Here that direction, ``theta - theta'``, is the gradient of a surrogate loss, so
the usual optimiser and training loop apply. That is a variant of the paper's
serial Reptile, which takes Adam steps in the inner loop and a plain step
``theta += eps * (theta' - theta)`` (``eps`` annealed linearly) outside: here
the inner steps are plain SGD and Adam rescales the outer step per weight.
Deployment is the inner loop (:mod:`.inner_loop`) on the support set.
"""

from __future__ import annotations

import torch

from ..net import MetaNet
from .base import TaskBatch, task_targets
from .inner_loop import HEAD, InnerLoopMethod, task_state

__all__ = ["Reptile"]


class Reptile(InnerLoopMethod):
    """Reptile: first-order meta-learning by moving towards adapted weights.

    Parameters
    ----------
    inner_lr : float, default=0.1
    inner_steps : int, default=5
    regression : bool, default=False
    inner_batch_size : int, "auto" or None, default="auto"
        Rows per inner step when the trained model adapts: "auto" takes
        the whole support set up to 1,000 rows and 400-row mini-batches
        beyond, None the whole set always (see
        :class:`~.inner_loop.InnerLoopMethod`).
    """

    name = "reptile"
    summary = "Reptile: first-order meta-learning towards adapted weights"

    def __init__(
        self, inner_lr=0.1, inner_steps=5, regression=False, inner_batch_size="auto"
    ):
        super().__init__(inner_lr, inner_steps, regression, inner_batch_size)

    def loss(self, net: MetaNet, batch: TaskBatch):
        """Surrogate whose gradient is the mean over tasks of ``theta - theta'``;
        its value is the mean adapted task loss."""
        params = dict(net.named_parameters())
        x = torch.cat([batch.support_x, batch.query_x], 1)
        y = torch.cat([batch.support_y, batch.query_y], -1)
        state = self.adapt_tasks(net, params, x, y, batch.n_way, create_graph=False)
        meta = {**self.inner_parameters(net, params)}
        meta.update({k: params["extra." + k] for k in HEAD})
        adapted = dict(state["weights"])
        adapted.update(
            zip(
                HEAD,
                self.head.to_meta(
                    state["head_weight"], state["head_bias"], meta["head_weight"]
                ),
                strict=True,
            )
        )
        # d/dtheta of 0.5 * ||theta - theta'_t||^2 with theta'_t held fixed
        surrogate = sum(
            0.5 * ((meta[name] - value.detach()) ** 2).sum()
            for name, value in adapted.items()
        )
        surrogate = surrogate / batch.n_tasks
        with torch.no_grad():  # reported: the adapted task loss
            losses, scores = zip(
                *(
                    self.query_loss(net, task_state(state, t), x[t], task_targets(y, t))
                    for t in range(batch.n_tasks)
                ),
                strict=True,
            )
        value = torch.stack(losses).mean()
        metrics = {self.metric: torch.stack(scores).mean().item()}
        return value + (surrogate - surrogate.detach()), metrics
