"""The check of class labels, for support sets of one row per class."""

from __future__ import annotations

import sys

import numpy as np
from sklearn.utils.multiclass import type_of_target

from .meta import accel

__all__ = ["check_class_labels", "refuse_missing_labels"]

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


def refuse_missing_labels(estimator, y) -> None:
    """Refuse labels that are missing (None, NaN or pandas' NA among labels
    held as objects: a pandas ``string`` or ``category`` column, a polars
    column with nulls), naming the rows. scikit-learn's checks fail on them
    with a ``TypeError`` from pandas ("boolean value of NA is ambiguous") or
    from sorting None beside strings. Numbers are left to scikit-learn, whose
    "Input y contains NaN." its own checks expect.

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted (named in the message).
    y : array-like of shape (n_samples,)
        The labels, as given.

    Raises
    ------
    ValueError
        If a label is missing.
    """
    values = np.asarray(y)  # no copy for a NumPy array (numbers or strings)
    if values.dtype.kind != "O" or values.ndim != 1:
        return
    pandas = sys.modules.get("pandas")  # NA can only come from a loaded pandas
    if pandas is not None:
        missing = np.asarray(pandas.isna(values), dtype=bool)
    else:  # None, or NaN (the one value unequal to itself)
        missing = np.fromiter((v is None or v != v for v in values), bool, len(values))
    rows = np.flatnonzero(missing)
    if rows.size:
        raise ValueError(
            f"y has {rows.size} missing label(s) (None, NaN or NA; the first at "
            f"row {rows[0]}): {type(estimator).__name__} needs the class of "
            "every row. Drop those rows or label them (with transductive=, "
            "unlabelled rows are marked -1)."
        )
