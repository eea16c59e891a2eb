"""Shortcuts past scikit-learn's input checks on the serving path: rows and
support sets that ``validate_data`` would hand back unchanged, and fitted
estimators that ``check_is_fitted`` would pass, are taken without the calls,
whose Python cost is most of a small ``fit``, ``predict`` or ``transform``
(``benchmarks/serving_latency.py``). Anything else goes through scikit-learn,
so every error and warning is its own; so does everything under the speed
switch (``SKMETA_ACCEL=0``, :mod:`skmeta.meta.accel`)."""

from __future__ import annotations

import numpy as np
from sklearn import get_config
from sklearn.utils.validation import check_is_fitted, validate_data

from ._checks import ROW_DTYPES
from .meta import accel
from .meta.inference import all_finite

__all__ = ["check_fitted", "checked_rows", "checked_support", "validated_rows"]


def _plain_rows(estimator, X) -> bool:
    """Whether `X` is a C-contiguous float32 or uint8 matrix of the width a
    fitted `estimator` (without feature names) was fitted on: what
    ``validate_data(reset=False, dtype=ROW_DTYPES)`` returns unchanged, with
    no warning, once it is finite."""
    return (
        type(X) is np.ndarray
        and accel.enabled()  # SKMETA_ACCEL=0: every shortcut off
        and (X.dtype == np.float32 or X.dtype == np.uint8)
        and X.ndim == 2
        and X.shape[0] > 0
        and X.shape[1] == getattr(estimator, "n_features_in_", None)
        and X.flags.c_contiguous
        and not hasattr(estimator, "feature_names_in_")
    )


def validated_rows(estimator, X) -> np.ndarray:
    """`X` as scikit-learn's ``validate_data(reset=False, dtype=ROW_DTYPES)``
    returns it for a fitted `estimator` (float32, or uint8 kept as is), without
    its finite check (the caller's).

    A float32 or uint8 C-contiguous matrix of the fitted width, for an
    estimator fitted without feature names, is returned as is without the
    call: ``validate_data`` would return it unchanged, and its ~370 Python
    calls, run with caches cold after the forward passes, cost 5% of an MLP's
    ``transform`` of 2,000 rows here (0.35 ms). Anything else goes through
    ``validate_data``.
    """
    if _plain_rows(estimator, X):
        return X
    return validate_data(
        estimator, X, reset=False, dtype=ROW_DTYPES, ensure_all_finite=False
    )


def checked_rows(estimator, X) -> np.ndarray:
    """`X` as ``validate_data(estimator, X, reset=False, dtype=ROW_DTYPES)``
    returns it, finite check included: the rows ``predict`` and its kin take.

    The rows of :func:`validated_rows`' shortcut, once found finite (or with
    ``sklearn.set_config(assume_finite=True)``), are returned as is; all
    others, non-finite ones included, go through ``validate_data``, so every
    error and warning is scikit-learn's own. The call is about 80 us, a third
    of an MLP classifier's ``predict_proba`` on one row.
    """
    if _plain_rows(estimator, X) and (
        X.dtype == np.uint8 or get_config()["assume_finite"] or all_finite(X)
    ):
        return X
    return validate_data(estimator, X, reset=False, dtype=ROW_DTYPES)


def checked_support(estimator, X, y, dtypes: list, **params) -> tuple:
    """``validate_data(estimator, X, y, dtype=dtypes, **params)`` for ``fit``:
    X and y checked, ``n_features_in_`` set, ``feature_names_in_`` dropped
    for X without names.

    An ndarray X of one of `dtypes` (native byte order), finite, with rows and
    columns, and a vector y of as many integer, boolean or string labels (or
    finite floats) would come back unchanged: they are returned without the
    call, whose ~150 us were a fifth of a 5-way 1-shot fit of an MLP
    classifier. Anything else, every error and warning, is
    ``validate_data``'s.
    """
    assume_finite = get_config()["assume_finite"]
    if (
        type(X) is np.ndarray
        and type(y) is np.ndarray
        and accel.enabled()  # SKMETA_ACCEL=0: every shortcut off
        and X.ndim == 2
        and y.ndim == 1
        and 0 < X.shape[0] == y.shape[0]
        and X.shape[1] > 0
        and any(X.dtype == dtype for dtype in dtypes)
        and (y.dtype.kind in "biuU" or y.dtype in (np.float32, np.float64))
        and (assume_finite or X.dtype.kind != "f" or all_finite(X))
        and (assume_finite or y.dtype.kind != "f" or all_finite(y))
    ):
        estimator.n_features_in_ = X.shape[1]
        estimator.__dict__.pop("feature_names_in_", None)  # as validate_data
        return X, y
    return validate_data(estimator, X, y, dtype=dtypes, **params)


def check_fitted(estimator) -> None:
    """scikit-learn's ``check_is_fitted(estimator)``, which passes whenever
    ``meta_model_`` is set (an attribute ending in ``_``): then without the
    call, whose tags cost more than the forward pass of an MLP on one row."""
    if "meta_model_" not in vars(estimator):
        check_is_fitted(estimator)
