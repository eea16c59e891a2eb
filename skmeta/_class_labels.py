"""The check of class labels, for support sets of one row per class."""

from __future__ import annotations

import numpy as np
from sklearn.utils.multiclass import type_of_target

from .meta import accel

__all__ = ["check_class_labels"]

_CLASS_TYPES = (
    "binary",
    "multiclass",
    "multiclass-multioutput",
    "multilabel-indicator",
    "multilabel-sequences",
)


def check_class_labels(y: np.ndarray) -> None:
    """Refuse labels that are no classes, as scikit-learn's
    ``check_classification_targets`` does, without its warning that more
    than half of the labels are unique ("`y` could represent a regression
    problem"): a few-shot support set is so by design (100 classes of one
    row each). The check itself is kept: float targets are refused.

    The check is repeated rather than called with the warning filtered:
    ``warnings.catch_warnings`` swaps the process-wide filters, which
    concurrent fits (threads of a search) could leave changed.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        The labels.

    Raises
    ------
    ValueError
        For labels of another type (e.g. ``"continuous"``), in scikit-learn's
        words.
    """
    if (
        type(y) is np.ndarray
        and y.ndim == 1
        and y.dtype.kind in "biuU"
        and accel.enabled()  # SKMETA_ACCEL=0: every shortcut off
    ):
        # integers, booleans and strings in a vector: always "binary" or
        # "multiclass" for type_of_target, whose ~140 us are a sixth of a
        # one-shot fit with a pretrained MLP
        return
    y_type = type_of_target(y, input_name="y")
    if y_type not in _CLASS_TYPES:
        raise ValueError(
            f"Unknown label type: {y_type}. Maybe you are trying to fit a "
            "classifier, which expects discrete classes on a "
            "regression target with continuous values."
        )
