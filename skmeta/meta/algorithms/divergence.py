"""Divergence of an inner loop is never silent.

Too large an inner learning rate, or too many inner steps, can make the
support loss grow step after step until the weights and outputs overflow. An
adaptation whose support loss, adapted state or support outputs are not
finite raises :class:`~.base.AdaptationDiverged` (a ``ValueError``: ``fit``
fails, and scikit-learn's searches record the candidate as failed with this
message); one whose support loss ended more than 5% above where it started
warns with :class:`~.base.AdaptationWarning`. Both name ``inner_steps`` and
``inner_lr``. A smaller rise is not taken for divergence: the methods
meta-learn a start from which the steps lower the *query* loss, and the
support loss may end a little higher (a reviewer saw rises of 0.0-0.5% on up
to a fifth of sine waves at a model's own settings).
"""

from __future__ import annotations

import warnings

import torch

from ..caller import user_stacklevel
from .base import AdaptationDiverged, AdaptationWarning

__all__ = ["RISE_TOLERANCE", "check_adaptation", "settings_text"]

# The relative rise of the support loss, first to last, that warns.
RISE_TOLERANCE = 0.05


def settings_text(method) -> str:
    """The inner-loop settings of `method` and what to change, in words: the
    end of a sentence whose parenthesis this closes."""
    rate = f"inner_lr={method.inner_lr}"
    smaller = "use a smaller inner_lr"
    if "inner_lr" not in method.adaptation_settings:  # Meta-SGD: learnt rates
        rate += ", the initial value of its meta-learnt step sizes"
        # a pretrained model's learnt rates cannot be changed at fit
        smaller = "meta-train with a smaller inner_lr"
    if method.inner_steps > 1:  # (with only one step, fewer is no advice)
        joint = " or " if smaller.startswith("use ") else ", or "
        smaller = f"use fewer inner_steps{joint}{smaller.removeprefix('use ')}"
    return f"inner_steps={method.inner_steps}, {rate}); {smaller}"


def check_adaptation(method, losses: list[torch.Tensor], tensors) -> None:
    """Raise or warn if an adaptation diverged.

    Parameters
    ----------
    method : InnerLoopMethod
    losses : list of 0-d Tensor
        The support loss before each of the ``inner_steps`` updates, then the
        one after the last. With mini-batch steps (``inner_batch_size``), the
        first and the last are the whole set's and those between the
        mini-batches' (:func:`~.chunked.chunked_inner_loop`).
    tensors : iterable of Tensor
        The adapted state's tensors and the support outputs.

    Raises
    ------
    AdaptationDiverged
        If a loss or a tensor is NaN or infinite; the message names the step.
    """
    values = torch.stack([loss.detach().float().reshape(()) for loss in losses])
    finite = torch.isfinite(values)
    if not finite.all():
        bad = int((~finite).nonzero()[0, 0])
        where = f"inner step {bad + 1}" if bad < method.inner_steps else "the last step"
        raise AdaptationDiverged(
            f"Adaptation diverged: the support loss became {float(values[bad])} "
            f"{'at' if bad < method.inner_steps else 'after'} {where} "
            f"({settings_text(method)}."
        )
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise AdaptationDiverged(
            "Adaptation diverged: the adapted weights or the support outputs are "
            f"not finite after the last inner step ({settings_text(method)}."
        )
    if values[-1] > values[0] * (1 + RISE_TOLERANCE):
        steps = ", ".join(f"{v:.4g}" for v in values.tolist())
        rise = float(values[-1] / values[0] - 1) if values[0] > 0 else float("inf")
        warnings.warn(
            f"The support loss rose by {rise:.0%} over the inner steps ({steps}): "
            f"the inner loop overshoots or diverges ({settings_text(method)}.",
            AdaptationWarning,
            stacklevel=user_stacklevel(),  # the user's line
        )
