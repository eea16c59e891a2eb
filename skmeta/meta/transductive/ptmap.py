"""PT-MAP (Hu, Gripon & Pateux, "Leveraging the Feature Distribution in
Transfer-based Few-Shot Learning", ICANN 2021).

Power transform, then a MAP estimate of the class centres with optimal
transport:

1. each embedding ``f`` becomes ``(f + 1e-6) ** beta`` (``beta = 0.5``;
   a negative ``f`` becomes ``-(|f| + 1e-6) ** beta``, so embeddings with
   negative values work too; a zero becomes ``1e-6 ** beta`` as in the
   reference code), is L2-normalised, then the support rows are centred on their
   mean and the unlabelled rows on theirs, and each row is L2-normalised again;
2. the class centres start at the support class means; 20 times: the
   unlabelled rows' soft assignments are the Sinkhorn optimal-transport plan
   of cost ``||x - mu_c||^2`` at regularisation ``lambda = 10``, rows summing
   to 1 and classes to ``n_unlabelled / n_classes`` (the method assumes
   balanced classes), the support rows keep their labels, and each centre
   moves ``alpha = 0.2`` of the way to the assignment-weighted mean.

Defaults of the paper's code (``beta``, ``lambda``, ``alpha``, 20 epochs,
Sinkhorn until the row sums change by less than ``1e-6``, at most 1,000
iterations). The paper's QR reduction of the features (a rotation that keeps
distances) is left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..setting_checks import check_int_setting, check_real_setting
from .base import (
    TransductiveMethod,
    check_embeddings,
    class_means,
    one_hot,
    squared_distances,
)

__all__ = ["PTMAP", "power_transform", "sinkhorn"]


def power_transform(rows: torch.Tensor, beta: float) -> torch.Tensor:
    """``(f + 1e-6) ** beta`` of each value ``f >= 0`` (the reference code's,
    so 0 becomes ``1e-6 ** beta``), ``-(|f| + 1e-6) ** beta`` of a negative
    one, then each row L2-normalised.

    Parameters
    ----------
    rows : Tensor of shape (n, dim)
    beta : float

    Returns
    -------
    Tensor of shape (n, dim)
    """
    # not rows.sign(): its 0 at f = 0 sent a ReLU network's zeros to 0, not 1e-3
    sign = torch.where(rows >= 0, 1.0, -1.0).to(rows.dtype)
    return F.normalize(sign * (rows.abs() + 1e-6).pow(beta), dim=1)


def sinkhorn(
    cost: torch.Tensor,
    column_sums: torch.Tensor,
    lam: float,
    tol: float = 1e-6,
    max_iter: int = 1000,
) -> torch.Tensor:
    """Entropic optimal transport plan of `cost` (n, n_classes), rows summing
    to 1 and columns to `column_sums` (n_classes,).

    Returns
    -------
    Tensor of shape (n, n_classes)
    """
    # each row shifted by its own smallest cost, which cancels out in the
    # plan: no row underflows to zeros at a large lam
    plan = torch.exp(-lam * (cost - cost.amin(1, keepdim=True)))
    plan = plan / plan.sum()
    row_sums = cost.new_zeros(cost.shape[0])
    for _ in range(max_iter):
        current = plan.sum(1)
        if (row_sums - current).abs().max() <= tol:
            break
        row_sums = current
        plan = plan / current.unsqueeze(1)
        plan = plan * (column_sums / plan.sum(0)).unsqueeze(0)
    return plan


class PTMAP(TransductiveMethod):
    """Power transform + MAP estimation with optimal transport (Hu et al. 2021).

    Without unlabelled rows, it is nearest class mean on the power-transformed,
    centred embeddings. The Sinkhorn step assumes as many unlabelled rows in
    every class, so class-imbalanced unlabelled sets hurt it, and fewer
    unlabelled rows than classes are refused: centred on their own mean, a
    single row is a zero vector, and the balanced plan then labels such rows
    at chance (17% at 5-way 1-shot on Omniglot with one row, against 79.5%
    inductive).

    Parameters
    ----------
    beta : float, default=0.5
        Exponent of the power transform.
    lam : float, default=10
        Sinkhorn's regularisation ``lambda`` (the plan is ``exp(-lambda * cost)``
        rescaled), also the scale of the returned scores.
    alpha : float, default=0.2
        Step of the class centres towards their new estimate.
    n_iter : int, default=20
        MAP epochs.
    """

    name = "ptmap"
    summary = "PT-MAP: power transform + optimal transport (Hu 2021)"
    settings = ("beta", "lam", "alpha", "n_iter")

    def __init__(
        self, beta: float = 0.5, lam: float = 10.0, alpha: float = 0.2, n_iter: int = 20
    ) -> None:
        self.beta = check_real_setting("beta", beta)
        self.lam = check_real_setting("lam", lam)
        self.alpha = check_real_setting("alpha", alpha, maximum=1.0)
        self.n_iter = check_int_setting("n_iter", n_iter, minimum=0)

    def fit(self, support, support_y, unlabelled, n_classes):
        support, support_y, unlabelled = check_embeddings(
            support, support_y, unlabelled, n_classes
        )
        if 0 < unlabelled.shape[0] < n_classes:
            raise ValueError(
                f"transductive='ptmap' got {unlabelled.shape[0]} unlabelled "
                f"row(s) for {n_classes} classes: its optimal transport gives "
                "every class an equal share of the unlabelled rows, so it needs "
                "a batch with every class present, several rows each. Label "
                "so few rows inductively (transductive=None)."
            )
        support = power_transform(support, self.beta)
        unlabelled = power_transform(unlabelled, self.beta)
        support_center = support.mean(0)
        center = unlabelled.mean(0) if unlabelled.shape[0] else support_center
        support = F.normalize(support - support_center, dim=1)
        unlabelled = F.normalize(unlabelled - center, dim=1)
        centres = class_means(support, support_y, n_classes)
        labelled = one_hot(support_y, n_classes)
        rows = torch.cat([support, unlabelled])
        column_sums = torch.full(
            (n_classes,), unlabelled.shape[0] / n_classes, dtype=rows.dtype
        )
        plan = unlabelled.new_zeros(0, n_classes)
        for _ in range(self.n_iter if unlabelled.shape[0] else 0):
            plan = self._plan(unlabelled, centres, column_sums)
            weights = torch.cat([labelled, plan])
            estimate = (weights.T @ rows) / weights.sum(0).unsqueeze(1)
            centres = centres + self.alpha * (estimate - centres)
        if unlabelled.shape[0]:
            plan = self._plan(unlabelled, centres, column_sums)
        return {
            "centres": centres,
            "center": center,
            # the plan's rows sum to 1: their log is a score of the same order
            "unlabelled_scores": torch.log(plan.clamp_min(1e-300)),
        }

    def _plan(self, unlabelled, centres, column_sums):
        return sinkhorn(squared_distances(unlabelled, centres), column_sums, self.lam)

    def predict(self, state, queries):
        """Scores of new rows: ``-lambda * ||x - mu_c||^2`` after the same
        preprocessing, centred on the unlabelled rows' mean (no transport:
        a new row's class does not change the fitted balance)."""
        rows = power_transform(queries.double(), self.beta)
        rows = F.normalize(rows - state["center"], dim=1)
        return -self.lam * squared_distances(rows, state["centres"])
