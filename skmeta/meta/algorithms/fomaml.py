"""First-order MAML (Finn et al. 2017): MAML without second derivatives."""

from __future__ import annotations

from .maml import MAML

__all__ = ["FOMAML"]


class FOMAML(MAML):
    """First-order MAML: the query gradient at the adapted weights is the
    meta-gradient.

    Parameters
    ----------
    inner_lr, inner_steps, regression, inner_batch_size
        As for :class:`~.maml.MAML`.
    first_order : bool, default=True
        False makes it MAML.
    """

    name = "fomaml"
    summary = "first-order MAML"

    def __init__(
        self,
        inner_lr=0.4,
        inner_steps=None,
        first_order=True,
        regression=False,
        inner_batch_size="auto",
    ):
        super().__init__(
            inner_lr, inner_steps, first_order, regression, inner_batch_size
        )
