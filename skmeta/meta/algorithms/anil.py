"""ANIL, Almost No Inner Loop (Raghu, Raghu, Bengio & Vinyals, 2019): the inner
loop adapts the head only; the body is meta-learnt by the outer loop."""

from __future__ import annotations

from .maml import MAML

__all__ = ["ANIL"]


class ANIL(MAML):
    """ANIL: MAML whose inner loop adapts the head alone.

    Parameters
    ----------
    inner_lr, inner_steps, first_order, regression
        As for :class:`~.maml.MAML`.
    """

    name = "anil"
    summary = "ANIL: the inner loop adapts the head only"

    def adapted_parameters(self, params):
        return {}
