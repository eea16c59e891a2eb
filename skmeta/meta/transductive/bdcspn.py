"""BD-CSPN: prototype rectification (Liu, Song & Qin, "Prototype Rectification
for Few-Shot Learning", ECCV 2020).

Two biases of the support prototypes are reduced with the unlabelled rows:

- cross-class bias: the unlabelled rows are shifted by the difference of the
  support mean and the unlabelled mean, ``xi = mean(support) - mean(unlabelled)``
  (not with fewer unlabelled rows than classes: the shift maps a single row
  onto the support mean, erasing it, and a few rows from some of the classes
  towards it; see :func:`cross_class_shift`);
- intra-class bias: each unlabelled row is pseudo-labelled with its nearest
  prototype (cosine), and each class's prototype becomes the weighted mean of
  its support rows and pseudo-labelled rows, weights ``exp(eps * cos(x, P_c))``
  normalised within the class (the paper's ``eps = 10``).

Rows are then classified by cosine similarity to the rectified prototypes
(scores ``eps * cos``). Every pseudo-labelled row joins its class, as in the
easyfsl reference implementation (the paper also describes keeping only the
most confident ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..setting_checks import check_bool_setting, check_real_setting
from .base import TransductiveMethod, check_embeddings, class_means, one_hot

__all__ = ["BDCSPN", "cross_class_shift", "rectified_prototypes"]


def cosine_scores(rows: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each row to each prototype, shape (n, n_classes)."""
    return F.normalize(rows, dim=1) @ F.normalize(protos, dim=1).T


def cross_class_shift(
    support: torch.Tensor, unlabelled: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """BD-CSPN's cross-class shift ``mean(support) - mean(unlabelled)``, or
    zeros with fewer unlabelled rows than classes.

    The shift assumes the unlabelled rows cover the classes as the support
    does. One unlabelled row is moved exactly onto the support mean, which no
    class owns: at 5-way 1-shot on Omniglot, one row per fit, BD-CSPN labelled
    24.0% right with the shift and 80.0% without (79.5% inductive).

    Parameters
    ----------
    support : Tensor of shape (n_support, dim)
    unlabelled : Tensor of shape (n_unlabelled, dim)
    n_classes : int

    Returns
    -------
    Tensor of shape (dim,)
    """
    if unlabelled.shape[0] < n_classes:
        return torch.zeros_like(support[0])
    return support.mean(0) - unlabelled.mean(0)


def rectified_prototypes(
    support: torch.Tensor,
    support_y: torch.Tensor,
    unlabelled: torch.Tensor,
    n_classes: int,
    temperature: float = 10.0,
) -> torch.Tensor:
    """BD-CSPN's intra-class rectification of the class means.

    Parameters
    ----------
    support : Tensor of shape (n_support, dim)
    support_y : Tensor of shape (n_support,), int64
    unlabelled : Tensor of shape (n_unlabelled, dim)
        Already shifted (cross-class bias reduction) if that is wanted.
    n_classes : int
    temperature : float, default=10
        The paper's ``eps``.

    Returns
    -------
    Tensor of shape (n_classes, dim)
    """
    protos = class_means(support, support_y, n_classes)
    if unlabelled.shape[0] == 0:
        return protos
    pseudo = cosine_scores(unlabelled, protos).argmax(1)
    rows = torch.cat([support, unlabelled])
    members = one_hot(torch.cat([support_y, pseudo]), n_classes)  # (n, n_classes)
    # a softmax within each class: only its members' logits, the largest
    # shifted to 0, so that exp cannot overflow at a large temperature
    logits = temperature * cosine_scores(rows, protos)
    logits = logits.masked_fill(members == 0, float("-inf"))
    top = torch.nan_to_num(logits.amax(0, keepdim=True), neginf=0.0)
    weights = torch.exp(logits - top)  # exp(-inf) = 0 outside the class
    weights = weights / weights.sum(0, keepdim=True)
    return weights.T @ rows


class BDCSPN(TransductiveMethod):
    """Prototype rectification (BD-CSPN, Liu et al. 2020).

    Without unlabelled rows there is nothing to rectify with: it is cosine
    nearest class mean.

    Parameters
    ----------
    temperature : float, default=10
        ``eps`` of the pseudo-label weights ``exp(eps * cos)`` (the paper's
        value), also the scale of the returned cosine scores.
    shift : bool, default=True
        Cross-class bias reduction: shift the unlabelled (and new) rows by
        ``mean(support) - mean(unlabelled)``; skipped with fewer unlabelled
        rows than classes (:func:`cross_class_shift`). Set False when the
        unlabelled rows may miss classes: with 15 rows of one class of 5
        (1-shot, Omniglot, 200 episodes), BD-CSPN labelled 23.1% right with
        the shift and 78.4% without (79.9% inductive).
    """

    name = "bdcspn"
    summary = "BD-CSPN: prototypes rectified by pseudo-labelled rows (Liu 2020)"
    settings = ("temperature", "shift")

    def __init__(self, temperature: float = 10.0, shift: bool = True) -> None:
        self.temperature = check_real_setting("temperature", temperature)
        self.shift = check_bool_setting("shift", shift)

    def fit(self, support, support_y, unlabelled, n_classes):
        support, support_y, unlabelled = check_embeddings(
            support, support_y, unlabelled, n_classes
        )
        shift = torch.zeros_like(support[0])
        if self.shift:
            shift = cross_class_shift(support, unlabelled, n_classes)
        protos = rectified_prototypes(
            support, support_y, unlabelled + shift, n_classes, self.temperature
        )
        state = {"prototypes": protos, "shift": shift}
        state["unlabelled_scores"] = self.predict(state, unlabelled)
        return state

    def predict(self, state, queries):
        rows = queries.double() + state["shift"]
        return self.temperature * cosine_scores(rows, state["prototypes"])
