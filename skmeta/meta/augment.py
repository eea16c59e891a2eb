"""Data augmentation during meta-training, one batch at a time.

Augmentation only ever applies to the rows meta-training draws (episodes and
mini-batches); validation, adaptation and ``transform`` see the data as it is.
Random draws come from torch's generator, which meta-training seeds from
``random_state``, so a run is reproducible.

- :class:`ImageAugmentation`: random resized crop, horizontal flip and colour
  jitter, per image, with ``torchvision.transforms.v2``.
- :class:`AffineAugmentation`: small random rotations, shifts, scalings and
  shears, drawn per image and applied to the whole batch in one resampling
  (strokes, characters, digits: images that must not flip).
- :class:`~skmeta.meta.elastic.ElasticAugmentation` (its own module): random
  elastic distortions per image, one batched resampling (Simard et al. 2003).
- :class:`FeatureAugmentation`: Gaussian noise and feature dropout for rows of
  features, in units of each feature's standard deviation.
- Any callable taking one sample ``(*input_shape)`` tensor and returning one of
  the same shape (a torchvision transform, for example), applied per sample.
- A list or tuple of these, applied in turn to each batch (e.g. an affine map
  then elastic distortions, as Simard et al. 2003 composed them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .augment_checks import checked_per_sample
from .elastic import ElasticAugmentation
from .resample import check_images, check_padding, resampled

__all__ = [
    "IMAGE_PRESETS",
    "PRESETS",
    "AffineAugmentation",
    "FeatureAugmentation",
    "ImageAugmentation",
    "describe_augmentation",
    "make_augmentation",
]

PRESETS = ("images", "affine", "elastic", "features")
#: The presets that take images, input_shape=(C, H, W).
IMAGE_PRESETS = ("images", "affine", "elastic")


@dataclass(frozen=True)
class ImageAugmentation:
    """Random resized crop, horizontal flip and colour jitter of each image.

    Parameters
    ----------
    crop_scale : tuple of float, default=(0.5, 1.0)
        Range of the cropped area as a share of the image (then resized back
        to the image's size); None for no crop.
    flip : bool, default=True
        Flip left-right with probability 0.5. Turn it off where mirror images
        are different classes (characters, digits).
    color_jitter : float, default=0.4
        Strength of random brightness, contrast and saturation changes (colour
        images) or brightness and contrast (grey); 0 for none. Needs ``uint8``
        pixels or floats in [0, 1].
    """

    crop_scale: tuple[float, float] | None = (0.5, 1.0)
    flip: bool = True
    color_jitter: float = 0.4

    def build(
        self, input_shape: tuple[int, ...]
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The per-batch function for images of `input_shape` ``(C, H, W)``."""
        if len(input_shape) != 3:
            raise ValueError(
                "ImageAugmentation needs images: input_shape=(C, H, W); got "
                f"input_shape={tuple(input_shape)}. For rows of features use "
                "augmentation='features'."
            )
        import importlib

        from .._optional import import_torchvision

        import_torchvision("augmentation=ImageAugmentation")
        v2 = importlib.import_module("torchvision.transforms.v2")
        steps = []
        if self.crop_scale is not None:
            steps.append(
                v2.RandomResizedCrop(
                    input_shape[1:], scale=tuple(self.crop_scale), antialias=True
                )
            )
        if self.flip:
            steps.append(v2.RandomHorizontalFlip())
        jitter = self.color_jitter
        if jitter:
            colour = input_shape[0] == 3
            steps.append(
                v2.ColorJitter(jitter, jitter, saturation=jitter if colour else None)
            )
        per_image = v2.Compose(steps)

        def augment(images: torch.Tensor) -> torch.Tensor:
            if jitter and images.is_floating_point():
                low, high = images.aminmax()
                if low < 0 or high > 1:
                    raise ValueError(
                        "ImageAugmentation's colour jitter needs uint8 pixels or "
                        f"floats in [0, 1]; the data range from {low:g} to "
                        f"{high:g}. Rescale X, or set color_jitter=0."
                    )
            return torch.stack([per_image(image) for image in images])

        return augment


@dataclass(frozen=True)
class AffineAugmentation:
    """Small random affine distortions of each image, one batched resampling.

    Each image gets its own rotation, shift, scale and shear, drawn from
    torch's generator; the whole batch is then resampled at once
    (:func:`torch.nn.functional.affine_grid` and ``grid_sample``, bilinear),
    a few milliseconds for a meta-batch of small images where a per-image
    transform loop costs more than the training step. No flip: for strokes,
    characters and digits, whose mirror images are other symbols. Koch et al.
    (2015) trained their one-shot Omniglot networks on such distortions.

    Parameters
    ----------
    degrees : float, default=10.0
        Rotations drawn uniformly from ``[-degrees, degrees]``.
    translate : float, default=0.1
        Shifts drawn uniformly from ``[-translate, translate]`` times the
        image's width (horizontal) and height (vertical), each axis apart.
    scale : tuple of float, default=(0.9, 1.1)
        Zoom factors drawn uniformly from this range (1: no zoom).
    shear : float, default=0.0
        Horizontal shear angles drawn uniformly from ``[-shear, shear]``
        degrees.
    padding : {"border", "zeros", "reflection"}, default="border"
        Values where the distorted image reaches past the original:
        ``"border"`` repeats the edge pixels (the background, whether dark or
        light), ``"zeros"`` fills with 0.
    """

    degrees: float = 10.0
    translate: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)
    shear: float = 0.0
    padding: str = "border"

    def build(
        self, input_shape: tuple[int, ...]
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The per-batch function for images of `input_shape` ``(C, H, W)``."""
        check_images("AffineAugmentation", input_shape)
        low, high = self.scale
        if not (
            self.degrees >= 0
            and 0 <= self.translate < 1
            and 0 < low <= high
            and 0 <= self.shear < 90
        ):
            raise ValueError(
                "AffineAugmentation needs degrees >= 0, 0 <= translate < 1, "
                "0 < scale[0] <= scale[1] and 0 <= shear < 90; got "
                f"{self!r}."
            )
        check_padding("AffineAugmentation", self.padding)

        def augment(images: torch.Tensor) -> torch.Tensor:
            import torch.nn.functional as F

            n, shape = images.shape[0], list(images.shape)
            theta = self.draw(n, aspect=shape[2] / shape[3])
            theta = theta.to(device=images.device, dtype=torch.float32)
            grid = F.affine_grid(theta, shape, align_corners=False)
            return resampled(images, grid, self.padding)

        return augment

    def draw(self, n: int, aspect: float = 1.0) -> torch.Tensor:
        """`n` random maps for ``affine_grid``, shape ``(n, 2, 3)``, for
        images whose height is `aspect` times their width."""

        def uniform(low, high, size=(n,)):
            return low + (high - low) * torch.rand(size)

        return affine_maps(
            angle=uniform(-self.degrees, self.degrees),
            shear=uniform(-self.shear, self.shear),
            zoom=uniform(*self.scale),
            shift=uniform(-self.translate, self.translate, (n, 2)),
            aspect=aspect,
        )


def affine_maps(angle, shear, zoom, shift, aspect: float = 1.0) -> torch.Tensor:
    """Sampling maps of images rotated, sheared, zoomed, then shifted.

    Parameters
    ----------
    angle, shear : Tensor of shape (n,)
        Counter-clockwise rotation and horizontal shear, in degrees.
    zoom : Tensor of shape (n,)
        Scale factors (2: twice as large).
    shift : Tensor of shape (n, 2)
        Right and down shifts, as shares of the image's width and height.
    aspect : float, default=1.0
        The images' height over their width. Angles are those of the pixel
        grid: ``affine_grid``'s coordinates run from -1 to 1 along both
        axes, so a map is turned into them through the image's aspect.

    Returns
    -------
    Tensor of shape (n, 2, 3)
        For each image, the map from output to input coordinates in
        ``affine_grid``'s convention ([-1, 1], x to the right, y down): the
        inverse of the forward map.
    """
    angle, shear = torch.deg2rad(angle), torch.deg2rad(shear)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # y points down, so a counter-clockwise turn on screen has -sin above.
    forward = torch.stack(
        [
            torch.stack([cos, sin + cos * tan], 1),
            torch.stack([-sin, cos - sin * tan], 1),
        ],
        1,
    ) * zoom.view(-1, 1, 1)
    # in pixels p = D n with D = diag(width, height) / 2: the map in
    # normalised coordinates is D^-1 A D
    forward[:, 0, 1] *= aspect
    forward[:, 1, 0] /= aspect
    inverse = torch.linalg.inv(forward)
    offset = -(inverse @ (2 * shift).unsqueeze(2))
    return torch.cat([inverse, offset], 2)


@dataclass(frozen=True)
class FeatureAugmentation:
    """Gaussian noise and feature dropout for rows of features.

    Parameters
    ----------
    noise : float, default=0.1
        Standard deviation of the added noise, in units of each feature's
        standard deviation in the meta-training data.
    dropout : float, default=0.1
        Probability that a feature of a row is replaced by its mean.
    """

    noise: float = 0.1
    dropout: float = 0.1

    def build(
        self, mean: torch.Tensor, scale: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The per-batch function, given the per-feature (or global) mean and
        standard deviation, tensors of shape ``(n_features,)`` or ``(1,)``."""
        if self.noise < 0 or not 0 <= self.dropout < 1:
            raise ValueError(
                "FeatureAugmentation needs noise >= 0 and 0 <= dropout < 1; got "
                f"noise={self.noise}, dropout={self.dropout}."
            )

        def augment(rows: torch.Tensor) -> torch.Tensor:
            shape = rows.shape
            x = rows.reshape(shape[0], -1).to(torch.float32)
            m, s = mean.to(x.device), scale.to(x.device)
            if self.noise:
                x = x + self.noise * s * torch.randn(x.shape).to(x.device)
            if self.dropout:
                dropped = torch.rand(x.shape).to(x.device) < self.dropout
                x = torch.where(dropped, m.expand_as(x), x)
            return x.view(shape)

        return augment


def make_augmentation(
    spec, input_shape: tuple[int, ...], mean: torch.Tensor, scale: torch.Tensor
) -> Callable | None:
    """The per-batch augmentation function for the ``augmentation`` setting.

    Parameters
    ----------
    spec : None, str, ImageAugmentation, AffineAugmentation, \
ElasticAugmentation, FeatureAugmentation, callable, or list or tuple of them
        ``"images"``, ``"affine"``, ``"elastic"`` and ``"features"`` are the
        classes with their defaults; a callable is applied to each sample, a
        tensor of shape `input_shape`; a list or tuple applies its items in
        turn, each to the batch the one before returned.
    input_shape : tuple of int
    mean, scale : Tensor of shape (n_features,) or (1,)
        The meta-training data's statistics.

    Returns
    -------
    callable or None
        ``augment(batch) -> batch`` on tensors of shape ``(n, *input_shape)``.
    """
    if spec is None:
        return None
    if isinstance(spec, list | tuple):
        return _composed(spec, input_shape, mean, scale)
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(
                f"augmentation={spec!r} is unknown; use None, one of {PRESETS}, an "
                "ImageAugmentation, an AffineAugmentation, an ElasticAugmentation, "
                "a FeatureAugmentation or a callable."
            )
        spec = {
            "images": ImageAugmentation,
            "affine": AffineAugmentation,
            "elastic": ElasticAugmentation,
            "features": FeatureAugmentation,
        }[spec]()
    if isinstance(spec, ImageAugmentation | AffineAugmentation | ElasticAugmentation):
        return spec.build(input_shape)
    if isinstance(spec, FeatureAugmentation):
        return spec.build(mean, scale)
    if callable(spec):
        return checked_per_sample(spec)
    raise TypeError(
        "augmentation must be None, 'images', 'affine', 'elastic', 'features', an "
        "ImageAugmentation, an AffineAugmentation, an ElasticAugmentation, a "
        "FeatureAugmentation, a callable, or a list of them; got "
        f"{type(spec).__name__}."
    )


def _composed(specs, input_shape, mean, scale) -> Callable:
    """The augmentations of the list or tuple `specs`, applied in turn."""
    if len(specs) == 0 or any(s is None or isinstance(s, list | tuple) for s in specs):
        raise ValueError(
            "augmentation as a list needs one or more augmentations, none of "
            f"them None or a list; got {specs!r}. Use augmentation=None for none."
        )
    steps = [make_augmentation(s, input_shape, mean, scale) for s in specs]

    def augment(batch: torch.Tensor) -> torch.Tensor:
        for step in steps:
            batch = step(batch)
        return batch

    return augment


def describe_augmentation(spec) -> str | None:
    """How `spec` is recorded in a model's config (JSON): a string or None."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, list | tuple):
        return "[" + ", ".join(describe_augmentation(s) for s in spec) + "]"
    known = (
        ImageAugmentation,
        AffineAugmentation,
        ElasticAugmentation,
        FeatureAugmentation,
    )
    if isinstance(spec, known):
        return repr(spec)
    if isinstance(spec, functools.partial):  # its function and arguments
        args = [describe_augmentation(spec.func), *map(_stable_repr, spec.args)]
        args += [f"{k}={_stable_repr(v)}" for k, v in spec.keywords.items()]
        return f"functools.partial({', '.join(args)})"
    name = getattr(spec, "__qualname__", None)  # a function or class
    if name is None:  # an instance: its class and attributes, no address
        cls = type(spec)
        if cls.__repr__ is object.__repr__ and hasattr(spec, "__dict__"):
            fields = sorted(vars(spec).items())
            inner = ", ".join(f"{k}={_stable_repr(v)}" for k, v in fields)
        else:
            inner = _stable_repr(spec)
        return f"{cls.__module__}.{cls.__qualname__}({inner})"
    return f"{getattr(spec, '__module__', '?')}.{name}"


def _stable_repr(value) -> str:
    """`value`'s repr without memory addresses (``at 0x7f...``), which differ
    from one process to the next: a checkpoint would never resume, and
    torchrun's ranks would disagree (a reviewer)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))
