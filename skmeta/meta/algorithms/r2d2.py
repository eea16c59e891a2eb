"""R2-D2: ridge regression differentiable discriminator (Bertinetto, Henriques,
Torr & Vedaldi, "Meta-learning with differentiable closed-form solvers", 2019).

Each task's head is a ridge classifier fitted in closed form on the support
embeddings; meta-training back-propagates the query loss through the solve
(the Woodbury form: an ``n x n`` system for ``n`` support rows). The head is
exactly scikit-learn's ``RidgeClassifier(alpha=alpha)`` on the embeddings:
one-vs-rest targets of +1/-1 and an unpenalised intercept, where the paper
regresses one-hot targets without intercept and meta-learns ``alpha``; here
``alpha`` is a setting, which a meta-trained model may change when it adapts.
"""

from __future__ import annotations

from ..setting_checks import check_real_setting
from .closed_form import ClosedFormHeadMethod, ridge_head

__all__ = ["R2D2"]


class R2D2(ClosedFormHeadMethod):
    """Ridge regression head, solved in closed form per task.

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty, as ``RidgeClassifier``'s. An adaptation setting: a
        pretrained model adapts with another value if given one (its learnt
        logit scale was fitted for the meta-training value, so probabilities
        may be less well calibrated).
    """

    name = "r2d2"
    summary = "R2-D2: ridge regression head in closed form (RidgeClassifier)"
    settings = ("alpha",)
    adaptation_settings = ("alpha",)

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = check_real_setting("alpha", alpha)

    def solve(self, features, labels, n_classes):
        return ridge_head(features, labels, n_classes, self.alpha)
