"""How a network's input is normalised: data statistics, or per channel as
pretrained weights expect.

By default :class:`~skmeta.meta.net.MetaNet` standardises rows with the
meta-training data's mean and scale (``set_input_statistics``). Weights
pretrained on ImageNet expect each channel normalised with ImageNet's mean
and standard deviation instead; :func:`default_input_normalization` says which
applies, and :meth:`MetaNet.set_channel_normalization
<skmeta.meta.net.MetaNet.set_channel_normalization>` applies it.

Users choose with ``backbone_params={"input_normalization": ...}``:

- ``"data"``: the data's statistics, as for networks trained from scratch;
- ``"imagenet"``: ImageNet's per-channel mean and std;
- a dict ``{"mean": [...], "std": [...]}``, per channel, for pixels in [0, 1]
  (optionally ``"pixel_range"``, and ``"kind"``, a label);
- not given: ``"imagenet"`` for a ``"torchvision:<name>"`` backbone with
  ``weights`` (a weights name or a local file), ``"data"`` otherwise.

The pixel range (255 for 0-255 data, 1 for [0, 1]) is that of the
meta-training rows: 255 for an integer array, otherwise 255 when a sample of
the rows holds values above 1.5, else 1; a dict may fix it
(``"pixel_range"``). Rows given later (``transform``, ``predict``) must be on
the same range: :func:`check_pixel_range` warns when they are not. For
1-channel images, ImageNet's mean and std are averaged
over its channels (0.449, 0.226), and a torchvision backbone repeats the grey
channel to 3.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import torch

from .caller import user_stacklevel

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "check_pixel_range",
    "default_input_normalization",
    "infer_pixel_range",
    "pixel_ranges_differ",
    "resolve_input_normalization",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_KEYS = {"kind", "mean", "std", "pixel_range"}


def infer_pixel_range(X) -> float:
    """The value of a white pixel in rows `X`: 255.0 or 1.0.

    Parameters
    ----------
    X : ndarray or Tensor of shape (n_samples, n_features)
        Integer data gives 255.0 without reading it; float data gives 255.0
        when a sample of at most 2,048 rows holds a value above 1.5.

    Returns
    -------
    float
    """
    dtype = X.dtype
    is_float = (
        dtype.is_floating_point
        if isinstance(X, torch.Tensor)
        else (np.issubdtype(dtype, np.floating))
    )
    if not is_float:
        return 255.0
    step = max(1, len(X) // 2048)
    sample = X[::step]
    top = float(sample.max()) if len(sample) else 0.0
    return 255.0 if top > 1.5 else 1.0


def resolve_input_normalization(
    spec, n_channels: int, pixel_range: float | None = None
) -> dict | None:
    """A per-channel normalisation in full, from its short forms.

    Parameters
    ----------
    spec : None, {"data", "imagenet"} or mapping
        See the module doc. None and ``"data"`` mean the data's statistics.
    n_channels : int
        Channels of the images.
    pixel_range : float, optional
        Used when `spec` does not give one; default 1.0.

    Returns
    -------
    dict or None
        ``{"kind", "mean", "std", "pixel_range"}`` with one mean and std per
        channel (what :meth:`MetaNet.set_channel_normalization
        <skmeta.meta.net.MetaNet.set_channel_normalization>` takes as
        keywords), or None for the data's statistics.
    """
    if spec is None or (isinstance(spec, str) and spec == "data"):
        return None
    if isinstance(spec, str) and spec == "imagenet":
        spec = {"kind": "imagenet"}
    if not isinstance(spec, Mapping) or set(spec) - _KEYS:
        raise ValueError(
            "input_normalization must be 'data', 'imagenet' or a dict with keys "
            f"among {sorted(_KEYS)} ('mean' and 'std' per channel, for pixels in "
            f"[0, 1]); got {spec!r}."
        )
    kind = spec.get("kind", "custom")
    if kind == "imagenet":
        mean, std = spec.get("mean", IMAGENET_MEAN), spec.get("std", IMAGENET_STD)
        if n_channels == 1:  # grey images: ImageNet's averaged over channels
            mean, std = [float(np.mean(mean))], [float(np.mean(std))]
    elif "mean" in spec and "std" in spec:
        mean, std = spec["mean"], spec["std"]
    else:
        raise ValueError(
            f"input_normalization={dict(spec)!r} needs 'mean' and 'std' (one value "
            "per channel, for pixels in [0, 1]), or kind='imagenet'."
        )
    mean = [float(v) for v in np.ravel(mean)]
    std = [float(v) for v in np.ravel(std)]
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, n_channels):
            raise ValueError(
                f"input_normalization: {name} has {len(values)} values for images "
                f"of {n_channels} channels."
            )
    pixel_range = float(spec.get("pixel_range", pixel_range or 1.0))
    return {
        "kind": str(kind),
        "mean": mean * (n_channels // len(mean)),
        "std": std * (n_channels // len(std)),
        "pixel_range": pixel_range,
    }


def default_input_normalization(
    backbone, backbone_params: Mapping | None, input_shape, X=None
) -> dict | None:
    """The input normalisation meta-training should use (see the module doc).

    Parameters
    ----------
    backbone : str, callable or torch.nn.Module
        The ``backbone`` setting, resolved or not.
    backbone_params : mapping or None
        Its ``input_normalization`` key, if any, decides; otherwise a
        ``"torchvision:<name>"`` backbone with ``weights`` gets ImageNet's.
    input_shape : tuple of int
        Shape of one row; only images, ``(C, H, W)``, are normalised per
        channel.
    X : ndarray or Tensor of shape (n_samples, n_features), optional
        The meta-training rows, for their pixel range
        (:func:`infer_pixel_range`); 1.0 when not given.

    Returns
    -------
    dict or None
        Keywords for :meth:`MetaNet.set_channel_normalization
        <skmeta.meta.net.MetaNet.set_channel_normalization>`, or None: use
        the data's statistics (``MetaNet.set_input_statistics``).

    Examples
    --------
    >>> norm = default_input_normalization(
    ...     "torchvision:resnet18", {"weights": "DEFAULT"}, (3, 32, 32)
    ... )
    >>> norm["kind"], norm["mean"], norm["pixel_range"]
    ('imagenet', [0.485, 0.456, 0.406], 1.0)
    >>> default_input_normalization("conv4", None, (3, 32, 32)) is None
    True
    """
    from .vision import PREFIX

    params = dict(backbone_params or {})
    if "input_normalization" in params:
        spec = params["input_normalization"]
    elif (
        isinstance(backbone, str)
        and backbone.startswith(PREFIX)
        and params.get("weights") is not None
    ):
        spec = "imagenet"
    else:
        spec = None
    if spec is None or (isinstance(spec, str) and spec == "data"):
        return None
    if len(input_shape) != 3:
        raise ValueError(
            f"input_normalization={spec!r} normalises image channels; it needs "
            f"input_shape=(C, H, W), got {tuple(input_shape)}."
        )
    pixel_range = None if X is None else infer_pixel_range(X)
    return resolve_input_normalization(spec, int(input_shape[0]), pixel_range)


def expected_pixel_range(config: Mapping) -> float | None:
    """The pixel range a model's image rows must have, from its config: its
    channel normalisation's, else that of the rows it meta-trained on
    (``config["provenance"]["data"]["pixel_range"]``); None when unknown (a
    wrapped module given rows as they are, a model written before the
    range was recorded) or when the rows are not images."""
    if len(config.get("input_shape") or ()) != 3:
        return None
    norm = config.get("input_normalization")
    if norm:
        return float(norm["pixel_range"])
    data = (config.get("provenance") or {}).get("data") or {}
    recorded = data.get("pixel_range")
    return None if recorded is None else float(recorded)


def _clear_pixel_range(X) -> float | None:
    """255.0 for integer rows, or float rows with no negative value and
    some above 1.5; 1.0 for float rows all in [0, 1], not all 0; None
    otherwise (e.g. standardised rows), from at most 2,048 rows."""
    if not np.issubdtype(X.dtype, np.floating):
        return 255.0
    sample = np.asarray(X[:: max(1, len(X) // 2048)])
    low, top = float(sample.min()), float(sample.max())
    if low < 0.0 or top <= 0.0:  # e.g. standardised: not judged
        return None
    return 255.0 if top > 1.5 else 1.0


def pixel_ranges_differ(config: Mapping, X) -> tuple[float, float] | None:
    """``(range of X, range of the model)`` when image rows `X` are clearly
    on another pixel range than the model's (:func:`check_pixel_range` warns
    then), else None."""
    expected = expected_pixel_range(config)
    if expected is None or len(X) == 0:
        return None
    got = _clear_pixel_range(X)
    return None if got is None or got == expected else (got, expected)


def check_pixel_range(config: Mapping, X) -> None:
    """Warn when image rows `X` are on another range than the model's.

    A model meta-trained on 0-255 pixels (e.g. ``uint8`` rows) and given
    rows in [0, 1] (e.g. ``load_image_folder(..., dtype="float32")``), or
    the reverse, embeds every row wrongly and predicts at chance; so does a
    wrapped ImageNet network (``pixel_range=1.0``) given ``uint8`` rows.

    Parameters
    ----------
    config : mapping
        The model's config (``MetaModel.config``).
    X : ndarray of shape (n_samples, n_features)
        Rows about to be embedded; at most 2,048 of them are read. Integer
        rows, or non-negative ones with values above 1.5, are 0-255 pixels;
        float rows all in [0, 1] are [0, 1] pixels; others (e.g.
        standardised) are not judged.
    """
    ranges = pixel_ranges_differ(config, X)
    if ranges is None:
        return
    got, expected = ranges
    scale = "0-255" if got == 255.0 else "[0, 1]"
    fix = "divide them by 255" if got == 255.0 else "multiply them by 255"
    warnings.warn(
        f"X holds {scale} pixels, but the model's image rows are "
        f"{'0-255' if expected == 255.0 else '[0, 1]'} pixels (pixel range "
        f"{expected:g}): every row would be embedded wrongly. Give rows on the "
        f"model's range ({fix}), as at meta-training, or for a wrapped module "
        "set MetaModel.from_module(..., pixel_range=...).",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
