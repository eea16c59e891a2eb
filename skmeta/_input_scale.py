"""The warning when rows lie far from the scale of the rows a model
meta-trained on.

A meta-trained network standardises its input by the meta-training rows'
mean and standard deviation (per feature for table rows, one pair for
images: ``MetaNet.set_input_statistics``), kept in every model file as the
``input_mean`` and ``input_scale`` buffers. Rows preprocessed otherwise (raw
rows given to a model meta-trained on standardised ones, or the reverse)
reach the network far from anything it learnt from: rows 1e-6 times as
spread embed to almost one point (``predict_proba`` uniform), rows 1e6 times
as spread make gradient-based adaptation diverge. No error says so; this
warning does.

Judged on the typical column: the median over the columns of each one's
spread (standard deviation over the rows, in meta-training standard
deviations) and shift (the distance of its mean from the meta-training mean,
in the same units); for images, all pixel values taken as one column. A
warning when the spread is over ``SCALE_FACTOR`` (50) times, or under
1/50 of, the meta-training rows', or the shift over 50 of their standard
deviations. New classes move single columns much further (up to 104
deviations in one column of one row of ``load_digits``), so single columns
are not judged; the medians stayed within 0.12-5.2 (spread) and 14 (shift)
on new classes of four tables, Omniglot's evaluation alphabets and glyphs,
while rows times 1e3 gave at least 290 and times 1e-3 at most 0.0034
(``benchmarks/input_scale.py``).

Models whose input scaling is not the data's (a channel normalisation such
as ImageNet's, a module wrapped by ``MetaModel.from_module``) are not
judged; image rows on another pixel range are left to the pixel-range
warning (:func:`skmeta.meta.input_normalization.check_pixel_range`).
"""

from __future__ import annotations

import math
import warnings
import weakref

import numpy as np

from ._ignored_features import ignored_features, named_features
from .meta import accel
from .meta.caller import user_stacklevel
from .meta.input_normalization import pixel_ranges_differ

__all__ = [
    "SCALE_FACTOR",
    "meta_training_statistics",
    "warn_if_off_scale",
    "warn_if_queries_off_scale",
]

#: How many times the meta-training rows' spread (or standard deviations of
#: shift) the typical column of X may differ by before a warning.
SCALE_FACTOR = 50.0
_SAMPLE_ROWS = 64  # rows read per call, evenly spaced (the factor was set on 5-25)
_SAMPLE_VALUES = 2**20  # and at most this many values (wide images: fewer rows)


def meta_training_statistics(model) -> tuple[np.ndarray, np.ndarray] | None:
    """The mean and standard deviation `model` standardises its input by,
    float64 arrays of shape (n_features,) for table rows or (1,) for images;
    None when they are not statistics of meta-training rows (a channel
    normalisation, a wrapped module)."""
    config = model.config
    if config.get("input_normalization") or config.get("from_module"):
        return None
    state = model.state
    if "input_mean" not in state or "input_scale" not in state:
        return None
    mean = state["input_mean"].detach().double().cpu().numpy().ravel()
    scale = state["input_scale"].detach().double().cpu().numpy().ravel()
    usable = mean.size and bool(np.all(np.isfinite(scale) & (scale > 0)))
    return (mean, scale) if usable else None


# model -> (mean, scale, judged columns or None for all), or None: not judged;
# read once per model (22 us a call), as the check runs at every predict
_REFERENCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _reference(model):
    try:
        return _REFERENCES[model]
    except (KeyError, TypeError):
        pass
    statistics = meta_training_statistics(model)
    reference = None
    if statistics is not None:
        mean, scale = statistics
        columns = None
        ignored = ignored_features(model)
        if mean.size > 1 and ignored.size:  # the ignored features left out
            columns = np.setdiff1d(np.arange(mean.size), ignored)
            mean, scale = mean[columns], scale[columns]
        reference = (mean, scale, columns)
    try:
        _REFERENCES[model] = reference
    except TypeError:  # not weakly referable: computed each time
        pass
    return reference


def warn_if_off_scale(estimator, X, model=None) -> bool:
    """Warn when rows `X` lie far from the scale of those `model` (default
    ``estimator.meta_model_``) meta-trained on; returns whether it warned.

    Parameters
    ----------
    estimator : MetaEstimator
        Names the features (``feature_names_in_``, else column indices).
    X : ndarray of shape (n_samples, n_features)
        The checked rows; at most 64 evenly spaced ones (and 2**20 values)
        are read.
    model : MetaModel, optional
    """
    model = estimator.meta_model_ if model is None else model
    reference = _reference(model)
    if reference is None or X.shape[0] == 0:
        return False
    images = len(model.input_shape) == 3  # one mean and scale for all pixels
    if images and pixel_ranges_differ(model.config, X) is not None:
        return False  # check_pixel_range says what differs
    mean, scale, columns = reference
    most = max(2, min(_SAMPLE_ROWS, _SAMPLE_VALUES // max(X.shape[1], 1)))
    if X.shape[0] > most:  # evenly spaced, distinct rows
        X = X[np.linspace(0, X.shape[0] - 1, most).astype(np.intp)]
    values = np.asarray(X, dtype=np.float64)
    if images:
        values = values.reshape(-1, 1)
    elif columns is not None:
        values = values[:, columns]
    with np.errstate(all="ignore"):  # NaN rows: refused later, not judged here
        z = (values - mean) / scale
        shift = np.abs(z.mean(axis=0))
        spread = z.std(axis=0) if len(z) > 1 else np.zeros(z.shape[1])
    varying = spread[spread > 0]
    # the typical (median) column beyond a bound: more than half of them are;
    # counted, as np.median's overhead was a fifth of a small fit, and the
    # medians computed only for the message
    if _most(varying > SCALE_FACTOR, varying.size):
        typical = float(np.median(varying))
        what = f"have a spread about {_about(typical)} times that of"
        beyond, order = spread > SCALE_FACTOR, -spread
    elif _most(varying < 1 / SCALE_FACTOR, varying.size):
        typical = float(np.median(varying))
        what = f"have a spread about 1/{_about(1 / typical)} of that of"
        beyond, order = (spread > 0) & (spread < 1 / SCALE_FACTOR), spread
    elif _most(shift > SCALE_FACTOR, shift.size):
        typical = float(np.median(shift))
        what = (
            f"lie about {_about(typical)} standard deviations (of "
            "those rows) from the mean of"
        )
        beyond, order = shift > SCALE_FACTOR, -shift
    else:
        return False
    if columns is None:
        columns = np.arange(z.shape[1])
    if images:
        where = "X's pixel values"
    else:
        flagged = columns[beyond][np.argsort(order[beyond], kind="stable")]
        where = f"X's features ({named_features(estimator, flagged)})"
    warnings.warn(
        f"{where} {what} the rows the model meta-trained on. The network "
        "standardises its input by those rows' mean and standard deviation, "
        "so rows on another scale reach it far from anything it learnt from "
        "and what it makes of them is unreliable: rows far less spread embed "
        "to almost one point (probabilities near uniform), rows far more "
        "spread make gradient-based adaptation diverge (a warning to lower "
        "inner_lr then misleads). Preprocess X as the "
        "meta-training rows were (e.g. the same fitted StandardScaler, in a "
        "Pipeline before this estimator).",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return True


def _most(beyond: np.ndarray, n: int) -> bool:
    """Whether more than half of `n` columns are `beyond` (bool array): the
    median column is (of an even count, the lower of the middle two)."""
    return n > 0 and 2 * int(np.count_nonzero(beyond)) > n


def _about(ratio: float) -> str:
    """A ratio in words: '20', '880', '1e6'."""
    if ratio < 1e4:
        return f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2g}"
    return f"1e{round(math.log10(ratio))}"


# estimator -> the model whose queries were judged on two rows or more: kept
# apart from the estimator, as predict and transform leave its __dict__ as is
_QUERIES_JUDGED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def warn_if_queries_off_scale(estimator, X) -> None:
    """:func:`warn_if_off_scale` for the rows of ``predict`` and its kin or
    ``transform``, until a call of two rows or more was judged for the fitted
    model.

    A scale mistake is in the preprocessing, made alike on every call, so one
    call of several rows finds it; the calls of a serving loop after it skip
    the check (0.03 ms of an MLP's 0.35 ms ``transform`` of one row). One
    row has no spread to judge (rows far less spread are missed), so calls of
    one row are judged until one of more rows comes. Under the speed switch
    (``SKMETA_ACCEL=0``) every call is judged. The support set of every
    ``fit`` and ``partial_fit`` is judged on its own.
    """
    model = estimator.meta_model_
    try:
        if _QUERIES_JUDGED.get(estimator) is model and accel.enabled():
            return
    except TypeError:  # not weakly referable: judged at every call
        pass
    warn_if_off_scale(estimator, X, model)
    if X.shape[0] > 1:
        try:
            _QUERIES_JUDGED[estimator] = model
        except TypeError:
            pass
