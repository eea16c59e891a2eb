"""The warnings about features a meta-trained network ignores: those constant
in its meta-training rows (flat rows only), which it multiplies by 0
(:meth:`skmeta.meta.net.MetaNet.set_input_statistics`).

At fit, one warning names them; at transform, predict and the support fit of
a pretrained model, one warning per call names those that vary in the rows
given (judged on an evenly spaced sample of rows, to stay cheap).
"""

from __future__ import annotations

import warnings

import numpy as np

from .meta.caller import user_stacklevel

__all__ = ["warn_constant_features", "warn_if_ignored_features_vary"]

_SAMPLE_ROWS = 1024  # rows read to tell whether an ignored feature varies
_NAMED = 5  # features named in a warning; the rest counted


def ignored_features(model) -> np.ndarray:
    """Indices of the features `model` ignores (none for older models).

    Parameters
    ----------
    model : MetaModel

    Returns
    -------
    ndarray of int of shape (n_ignored,)
    """
    return np.asarray(model.config.get("ignored_features", ()), dtype=np.intp)


def named_features(estimator, indices: np.ndarray) -> str:
    """Up to `_NAMED` features by name (``feature_names_in_``) or index."""
    names = getattr(estimator, "feature_names_in_", None)
    shown = [
        repr(str(names[i])) if names is not None else f"column {i}"
        for i in indices[:_NAMED]
    ]
    more = indices.size - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def warn_constant_features(estimator, model) -> None:
    """Warn that `model`, just meta-trained by `estimator`, ignores the
    features constant in its meta-training rows.

    Parameters
    ----------
    estimator : MetaEstimator
        Names the features (``feature_names_in_``, else column indices).
    model : MetaModel
    """
    ignored = ignored_features(model)
    if ignored.size:
        warnings.warn(
            f"{ignored.size} feature(s) were constant in the meta-training data "
            f"and are ignored (multiplied by 0): {named_features(estimator, ignored)}. "
            "The network never learnt from them, so their values at "
            "transform and predict cannot change the outputs; meta-train on "
            "data where they vary if they carry information.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def warn_if_ignored_features_vary(estimator, X) -> None:
    """Warn once if a feature the fitted model ignores varies in `X`.

    Parameters
    ----------
    estimator : MetaEstimator
        Fitted: reads ``meta_model_`` (and ``feature_names_in_``).
    X : ndarray of shape (n_samples, n_features)
        The checked rows; at most 1,024 evenly spaced ones are read.
    """
    ignored = ignored_features(estimator.meta_model_)
    if not ignored.size or X.shape[0] < 2:
        return
    rows = np.unique(np.linspace(0, X.shape[0] - 1, _SAMPLE_ROWS).astype(np.intp))
    values = np.asarray(X[np.ix_(rows, ignored)])
    varying = ignored[(values != values[:1]).any(axis=0)]
    if varying.size:
        warnings.warn(
            f"{varying.size} feature(s) vary in these rows but were constant "
            "in the meta-training data, so the model ignores them (multiplied "
            f"by 0): {named_features(estimator, varying)}. Their information is not "
            "used; meta-train on data where they vary to use it.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
