"""MetaOptNet with an SVM head (Lee, Maji, Ravichandran & Soatto,
"Meta-Learning with Differentiable Convex Optimization", 2019).

Each task's head is a linear SVM fitted on the support embeddings; the query
loss is back-propagated through its optimum by implicit differentiation
(:func:`~skmeta.meta.algorithms.closed_form.svm_head`). The paper solves the
Crammer-Singer multi-class SVM's dual with a differentiable QP solver
(qpth); here the head is scikit-learn's ``LinearSVC(C=C)`` problem instead
(one-vs-rest, squared hinge, penalised intercept), solved exactly by Newton's
method: no extra dependency, a smooth problem whose optimum is found to
machine precision, and a head that can be checked against scikit-learn's.
"""

from __future__ import annotations

from ..setting_checks import check_real_setting
from .closed_form import ClosedFormHeadMethod, svm_head

__all__ = ["MetaOptNet"]


class MetaOptNet(ClosedFormHeadMethod):
    """Linear SVM head (squared hinge, one-vs-rest), solved per task.

    Parameters
    ----------
    C : float, default=1.0
        Weight of the squared hinge losses, as ``LinearSVC``'s. An adaptation
        setting: a pretrained model adapts with another value if given one
        (its learnt logit scale was fitted for the meta-training value).
    """

    name = "metaoptnet"
    summary = "MetaOptNet: linear SVM head by implicit differentiation (LinearSVC)"
    settings = ("C",)
    adaptation_settings = ("C",)

    def __init__(self, C: float = 1.0) -> None:
        self.C = check_real_setting("C", C)

    def solve(self, features, labels, n_classes):
        return svm_head(features, labels, n_classes, self.C)
