"""Checks of the estimators' inputs that need no estimator state: the
``pretrained`` model, the ``device``, ``input_shape``, and rows to predict on."""

from __future__ import annotations

import functools
import inspect
import math
import os
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
import torch

from .meta.caller import user_stacklevel
from .meta.model import MetaModel

# What the rows to embed or predict are kept as: float32, or uint8 (images,
# memory maps of them), which inference converts a block at a time instead of
# copying all of it as float32; anything else becomes float32 here (float64
# beyond float32's range thus fails the finiteness check).
ROW_DTYPES = [np.float32, np.uint8]

__all__ = [
    "check_float32_range",
    "warn_inert_settings",
    "check_feature_names",
    "check_input_shape",
    "load_pretrained",
    "pretrained_file_version",
    "refuse_bool_counts",
    "resolve_device",
    "same_value",
]


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int, backbone=None) -> MetaModel:
    return MetaModel.load(path, backbone)


def load_pretrained(pretrained, backbone=None) -> MetaModel:
    """The `pretrained` parameter as a MetaModel.

    A path is read once per file version (and `backbone`): a MetaModel is
    immutable, so the 1,000 fits of an episodic evaluation share one copy of
    the weights. `backbone` (a module class, factory or instance) is what a
    file of a custom-backbone model needs to be rebuilt (``MetaModel.load``);
    it is not used for a MetaModel given as such.
    """
    if isinstance(pretrained, MetaModel):
        return pretrained
    try:
        path, stat = _model_file(pretrained)
    except (ValueError, OSError) as exc:  # a NUL byte, a name too long...
        raise ValueError(
            f"pretrained={str(pretrained)!r} is not a usable path: {exc}."
        ) from None
    if stat is None:
        raise FileNotFoundError(f"pretrained={str(pretrained)!r}: no such model file.")
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size, backbone)


def _model_file(pretrained) -> tuple[Path, os.stat_result | None]:
    """The resolved path of a `pretrained` path and its stat (None: no file)."""
    path = Path(os.path.expanduser(pretrained)).resolve()
    return path, path.stat() if path.is_file() else None


def pretrained_file_version(pretrained) -> tuple[int, int] | None:
    """(mtime_ns, size) of the model file `pretrained` names, what
    ``load_pretrained`` tells its versions apart by; None for a MetaModel,
    None, or a path that names no readable file (fit says why)."""
    if not isinstance(pretrained, str | os.PathLike):
        return None
    try:
        _, stat = _model_file(pretrained)
    except (ValueError, OSError, TypeError):
        return None
    return None if stat is None else (stat.st_mtime_ns, stat.st_size)


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device: {exc}"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r}, but this torch ({torch.__version__}) sees no "
            "CUDA GPU. Use device='auto' (a GPU when there is one) or 'cpu'; an "
            "estimator fitted on a GPU moves with est.set_params(device='cpu')."
        )
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r}: this machine has {torch.cuda.device_count()} "
            "CUDA device(s)."
        )
    if resolved.type not in ("cpu", "cuda"):
        problem = _device_problem(resolved)
        if problem is not None:
            raise ValueError(
                f"device={device!r} cannot hold data in this torch "
                f"({torch.__version__}): {problem}. Use device='auto' or 'cpu'."
            )
    return resolved


@functools.lru_cache(maxsize=8)
def _device_problem(device: torch.device) -> str | None:
    """Why `device` cannot take a tensor there and back (None if it can): a
    backend torch was built without (``"mps"``, ``"xla"``), or ``"meta"``,
    which holds shapes but no values."""
    try:
        torch.zeros(1, device=device).cpu()
    except Exception as exc:  # NotImplementedError, RuntimeError, ImportError...
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


def refuse_bool_counts(estimator) -> None:
    """Refuse True/False for the integer parameters (episode sizes,
    ``max_iter``, ...): scikit-learn's ``Interval(Integral, ...)`` takes them
    as 1 and 0, and torch then fails deep inside with a ``TypeError``."""
    for name, constraints in estimator._parameter_constraints.items():
        value = getattr(estimator, name, None)
        if isinstance(value, bool | np.bool_) and any(
            getattr(c, "type", None) is Integral for c in constraints
        ):
            raise TypeError(
                f"The {name!r} parameter of {type(estimator).__name__} must be an "
                f"int, not a bool; got {value!r}."
            )


def check_input_shape(
    input_shape, n_features: int, dtype=np.float32
) -> tuple[int, ...]:
    """Validate the ``input_shape`` parameter against the width of X (of
    `dtype`), and warn where rows look like images given another way."""
    if input_shape is None:
        sides = [(c, math.isqrt(n_features // c)) for c in (1, 3)]
        square = [(c, s) for c, s in sides if s >= 8 and c * s * s == n_features]
        if dtype == np.uint8 and square:
            c, s = square[0]
            warnings.warn(
                f"X holds uint8 rows of {n_features} features and input_shape is "
                "None, so they are taken as a table (an MLP). If they are "
                f"images, pass input_shape=({c}, {s}, {s}) (channels, height, "
                "width) for a convolutional network.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return (n_features,)
    shape = tuple(input_shape)
    if not shape or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(
            f"input_shape must be a tuple of positive ints, got {input_shape!r}."
        )
    if math.prod(shape) != n_features:
        raise ValueError(
            f"input_shape={shape} holds {math.prod(shape)} values per row but X "
            f"has {n_features} features; they must match (e.g. (1, 28, 28) for 784)."
        )
    if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] > 4:
        warnings.warn(
            f"input_shape={shape} reads as (height, width, channels); skmeta "
            "takes (channels, height, width), as torch does, and would build "
            f"a network of {shape[0]} input channels. Reorder each image "
            "(X.reshape(n, H, W, C).transpose(0, 3, 1, 2).reshape(n, -1)) and "
            f"pass input_shape=({shape[2]}, {shape[0]}, {shape[1]}).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return tuple(int(s) for s in shape)


def check_feature_names(estimator, model: MetaModel) -> None:
    """Refuse X whose feature names differ from those `model` meta-trained on.

    scikit-learn's own rule, applied across estimators: a ``pretrained``
    model's ``config["provenance"]["feature_names"]`` must equal the fitted
    ``feature_names_in_`` (same names, same order); X without names beside a
    model with names gets scikit-learn's warning. A model meta-trained on
    rows without names is not checked.

    Raises
    ------
    ValueError
        If both have names and they differ.
    """
    recorded = (model.config.get("provenance") or {}).get("feature_names")
    if not recorded:
        return
    seen = getattr(estimator, "feature_names_in_", None)
    if seen is None:
        warnings.warn(
            f"X does not have valid feature names, but the pretrained model was "
            f"meta-trained with feature names ({', '.join(recorded[:3])}, ...); "
            "give X the same columns, in the same order.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return
    seen = [str(name) for name in seen]
    if seen == list(recorded):
        return
    if sorted(seen) == sorted(recorded):
        problem = "the same names in another order"
    else:
        unseen = [n for n in seen if n not in recorded][:3]
        missing = [n for n in recorded if n not in seen][:3]
        problem = f"names unseen at meta-training: {unseen}; missing: {missing}"
    hint = ""
    if [name.split("__", 1)[-1] for name in seen] == list(recorded):
        # "num__f0": the names a ColumnTransformer (set_output) gives its outputs
        hint = (
            " They are the model's behind a prefix, as a ColumnTransformer "
            "names its outputs: give it verbose_feature_names_out=False."
        )
    raise ValueError(
        "The feature names of X should match those the pretrained model was "
        f"meta-trained on ({problem}). Select and order X's columns as "
        f"at meta-training.{hint}"
    )


def warn_inert_settings(estimator) -> None:
    """One ``UserWarning`` naming the meta-training settings given (not at
    their defaults) that the others make inert: `checkpoint_every` without
    `checkpoint`, `n_iter_no_change` without `early_stopping`, and
    `validation_fraction` when no class is held out (neither
    `early_stopping` nor calibration)."""
    defaults = inspect.signature(type(estimator)).parameters
    params = estimator.get_params(deep=False)
    holds_out = estimator.early_stopping or estimator._calibrates()
    inert = {
        "checkpoint_every": (estimator.checkpoint is None, "checkpoint=PATH"),
        "n_iter_no_change": (not estimator.early_stopping, "early_stopping=True"),
        "validation_fraction": (
            not holds_out,
            "early_stopping=True or calibrate=True",
        ),
    }
    named = [
        f"{name}={params[name]!r} (it needs {needs})"
        for name, (unused, needs) in inert.items()
        if unused and params[name] != defaults[name].default
    ]
    if named:
        warnings.warn(
            f"These settings are ignored: {'; '.join(named)}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def check_float32_range(values: np.ndarray, name: str) -> None:
    """Refuse float64 values beyond float32's range: the network computes in
    float32, where they would become infinite (and the loss NaN). Warn of
    columns that vary in float64 but not in float32 (values around 1e9 that
    differ by less than 64, say): the network sees them constant."""
    if values.dtype != np.float64 or values.size == 0:
        return
    low, high = values.min(axis=0), values.max(axis=0)
    limit = float(np.finfo(np.float32).max)
    if np.max(high) > limit or np.min(low) < -limit:
        raise ValueError(
            f"{name} holds values beyond float32's range (+-{limit:.3g}), which "
            "the network computes in; rescale them (e.g. with StandardScaler)."
        )
    # rounding is monotonic: a column's values all round to one float32
    # exactly when its least and greatest do
    # columns that differ by float64 rounding alone ([0.3, 0.1 + 0.2]) vary
    # for neither: a spread of a few float64 spacings is no variation
    spread = high - low
    varies = spread > 64 * np.finfo(np.float64).eps * np.maximum(abs(low), abs(high))
    lost = np.atleast_1d(varies & (low.astype(np.float32) == high.astype(np.float32)))
    if lost.any():
        what = (
            f"{name} varies by less than float32's precision at its values: the "
            "network, which computes in float32, sees it constant. Subtract its "
            "mean first."
            if values.ndim == 1
            else f"{name}'s column(s) {_some(np.flatnonzero(lost))} vary by less "
            "than float32's precision at their values: the network, which "
            "computes in float32, sees them constant. Subtract their mean first "
            "(e.g. with StandardScaler)."
        )
        warnings.warn(what, UserWarning, stacklevel=user_stacklevel())


def _some(indices: np.ndarray) -> str:
    """Up to five of `indices`, and how many more."""
    shown = ", ".join(str(int(i)) for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")


def same_value(a, b) -> bool:
    """Whether two parameter values are the same, as a refit would see them:
    identical, equal (labels of any type), or both NaN (pickling keeps no
    identity of floats, and NaN equals nothing); False where a comparison
    has no single truth value (arrays)."""
    try:
        if a is b or bool(a == b):
            return True
        return bool(np.isnan(a)) and bool(np.isnan(b))
    except (TypeError, ValueError):
        return False
