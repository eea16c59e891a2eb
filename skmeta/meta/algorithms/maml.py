"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, 2017).

The meta-gradient is that of each task's query loss after the inner loop
(:mod:`.inner_loop`) on its support set, through the inner loop's steps
(second order) or not (``first_order=True``).
"""

from __future__ import annotations

import torch

from ..net import MetaNet
from ..setting_checks import check_bool_setting
from .base import TaskBatch, task_targets
from .inner_loop import InnerLoopMethod, task_state

__all__ = ["MAML"]


class MAML(InnerLoopMethod):
    """Model-Agnostic Meta-Learning (second order unless `first_order`).

    Parameters
    ----------
    inner_lr : float, default=0.4
        Step size of the inner SGD loop.
    inner_steps : int, default=None
        Inner SGD steps on the support set. None means
        ``classification_steps`` (2) for classification and 1 for
        regression: the fewest that adapt the whole network. The any-way
        classification head starts with every class row equal, which makes
        the body's gradient zero at the first step, so ``inner_steps=1``
        adapts only the head (as ANIL does). The regression head
        (:class:`~.heads.RegressionHead`) moves the body at the first step.
    first_order : bool, default=False
        Drop second derivatives (FOMAML): faster, less memory.
    regression : bool, default=False
        Real-valued targets (a linear output, mean squared error).
    inner_batch_size : int, "auto" or None, default="auto"
        Rows per inner step when the trained model adapts: "auto" takes
        the whole support set up to 1,000 rows and 400-row mini-batches
        beyond, None the whole set always (see
        :class:`~.inner_loop.InnerLoopMethod`).
    """

    name = "maml"
    summary = "MAML: second-order gradient steps on the support set"
    settings = ("inner_lr", "inner_steps", "first_order", "inner_batch_size")
    # `inner_steps` for classification when None: the first step moves only
    # the shared head (its class rows are equal, so the body's gradient is
    # zero), the second the body too (benchmarks/results/defaults_select.md)
    classification_steps = 2

    def __init__(
        self,
        inner_lr: float = 0.4,
        inner_steps: int | None = None,
        first_order: bool = False,
        regression: bool = False,
        inner_batch_size: int | str | None = "auto",
    ) -> None:
        if inner_steps is None:
            inner_steps = 1 if regression else self.classification_steps
        super().__init__(inner_lr, inner_steps, regression, inner_batch_size)
        self.first_order = check_bool_setting("first_order", first_order)

    def loss(self, net: MetaNet, batch: TaskBatch):
        """Mean over tasks of the query loss after each task's inner loop.

        The reference computation of the meta-gradient: all tasks adapted as
        one group, each task's query pass on its own.
        """
        state = self.adapt_tasks(
            net,
            dict(net.named_parameters()),
            batch.support_x,
            batch.support_y,
            batch.n_way,
            create_graph=not self.first_order,
        )
        losses, scores = [], []
        for task in range(batch.n_tasks):
            loss, score = self.query_loss(
                net,
                task_state(state, task),
                batch.query_x[task],
                task_targets(batch.query_y, task),
            )
            losses.append(loss)
            scores.append(score)
        score = torch.stack(scores).mean().item()
        return torch.stack(losses).mean(), {self.metric: score}
