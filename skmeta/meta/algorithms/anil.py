"""ANIL, Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals, 2019): the inner
loop adapts the head only; the body is meta-learnt by the outer loop."""

from __future__ import annotations

from .maml import MAML

__all__ = ["ANIL"]


class ANIL(MAML):
    """ANIL: MAML whose inner loop adapts the head alone.

    Parameters
    ----------
    inner_lr, first_order, regression, inner_batch_size
        As for :class:`~.maml.MAML`.
    inner_steps : int, default=None
        Inner SGD steps on the head. None means 1.
    """

    name = "anil"
    summary = "ANIL: the inner loop adapts the head only"
    classification_steps = 1  # the head, all it adapts, moves at the first step

    def adapted_parameters(self, params):
        return {}
