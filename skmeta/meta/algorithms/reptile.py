"""Reptile (Nichol, Achiam & Schulman, 2018).

For each task, take `inner_steps` SGD steps from the meta-weights on all of the
task's rows; the meta-update moves the meta-weights towards the adapted ones.
Here that direction, ``theta - theta'``, is the gradient of a surrogate loss, so
the usual optimiser (Adam, as in the paper) and training loop apply.
Deployment is the inner loop of :class:`~skmeta.meta.algorithms.maml.MAML` on
the support set.
"""

from __future__ import annotations

import torch

from ..net import MetaNet
from .base import TaskBatch
from .maml import MAML

__all__ = ["Reptile"]


class Reptile(MAML):
    """Reptile: first-order meta-learning by moving towards adapted weights.

    Parameters
    ----------
    inner_lr : float, default=0.1
    inner_steps : int, default=5
    regression : bool, default=False
    """

    name = "reptile"
    summary = "Reptile: first-order meta-learning towards adapted weights"
    settings = ("inner_lr", "inner_steps")

    def __init__(self, inner_lr=0.1, inner_steps=5, regression=False):
        super().__init__(inner_lr, inner_steps, first_order=True, regression=regression)

    def _task_objective(self, net: MetaNet, batch: TaskBatch, task: int):
        meta = {
            **self._adapted(net),
            "head_weight": net.extra["head_weight"],
            "head_bias": net.extra["head_bias"],
        }
        x = torch.cat([batch.support_x[task], batch.query_x[task]])
        y = torch.cat(
            [
                self._task_targets(batch.support_y, task),
                self._task_targets(batch.query_y, task),
            ]
        )
        state = self._inner_loop(net, x, y, batch.n_way, create_graph=False)
        adapted = {
            **state["weights"],
            "head_weight": state["head_weight"],
            "head_bias": state["head_bias"],
        }
        if not self.regression:  # the shared head: average over the classes
            adapted["head_weight"] = adapted["head_weight"].mean(0)
            adapted["head_bias"] = adapted["head_bias"].mean(0)
        # d/dtheta of 0.5 * ||theta - theta'||^2 with theta' held fixed
        surrogate = sum(
            0.5 * ((meta[name] - value.detach()) ** 2).sum()
            for name, value in adapted.items()
        )
        with torch.no_grad():  # reported: the adapted task loss
            outputs = self._logits(net, state, x)
            return surrogate, self._task_loss(outputs, y), self._score(outputs, y)
