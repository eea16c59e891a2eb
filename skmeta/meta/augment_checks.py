"""Checks of the ``augmentation`` setting that catch silent mistakes: flips
with mirror-image classes, and callables that change a sample's shape or
pixel range."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from .caller import user_stacklevel

__all__ = ["check_flips_with_class_augmentation", "checked_per_sample"]


def _flips(spec) -> bool:
    """Whether the augmentation `spec` flips images left to right."""
    from .augment import ImageAugmentation

    if isinstance(spec, list | tuple):
        return any(_flips(s) for s in spec)
    return spec == "images" or (isinstance(spec, ImageAugmentation) and spec.flip)


def check_flips_with_class_augmentation(spec, class_augmentation) -> None:
    """Refuse or warn where a horizontal flip gives an image another class.

    Parameters
    ----------
    spec : object
        The ``augmentation`` setting.
    class_augmentation : {None, "rot90", "dihedral"}

    Raises
    ------
    ValueError
        With ``"dihedral"``: a flipped image of one of a class's eight
        classes *is* the image of another of them, always.

    Warns
    -----
    UserWarning
        With ``"rot90"``: the flip of a turned image of a left-right
        symmetric object (a bottle, a box) is the image of the opposite
        turn's class.
    """
    if class_augmentation is None or not _flips(spec):
        return
    if class_augmentation == "dihedral":
        raise ValueError(
            "augmentation flips images left to right, and "
            "class_augmentation='dihedral' makes each class's mirror image a "
            "class of its own: every flipped image would carry another class's "
            "label. Use ImageAugmentation(flip=False), or "
            "class_augmentation='rot90' or None."
        )
    warnings.warn(
        "augmentation flips images left to right after class_augmentation="
        "'rot90' turns them: the flip of a turned image of a left-right "
        "symmetric object (a bottle, a letter A) is the image of the opposite "
        "turn's class, under another label. Use ImageAugmentation(flip=False) "
        "with class_augmentation, or class_augmentation=None (a photo turned "
        "by 90 degrees is rarely a new category).",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def checked_per_sample(transform: Callable) -> Callable:
    """``augment(batch)``: `transform` applied to each sample of a batch (its
    own random draw), checked to keep each sample's shape, and warned about
    once if it turns 0-255 pixels into [0, 1] values (as
    ``v2.ToDtype(torch.float32, scale=True)`` does): the network would then
    standardise them with the 0-255 data's statistics, and train on nearly
    constant inputs."""
    warned = []

    def augment(batch: torch.Tensor) -> torch.Tensor:
        out = [transform(sample) for sample in batch]
        for sample in out:
            if not torch.is_tensor(sample) or sample.shape != batch.shape[1:]:
                got = tuple(sample.shape) if torch.is_tensor(sample) else type(sample)
                raise ValueError(
                    f"The augmentation callable {transform!r} returned {got} for "
                    f"a sample of shape {tuple(batch.shape[1:])}: it must return "
                    "a tensor of the sample's shape (crop back to the input "
                    "size, e.g. RandomResizedCrop to the same size)."
                )
        out = torch.stack(out)
        scaled = not batch.is_floating_point() and out.is_floating_point()
        if scaled and not warned and float(out.max()) <= 1.0 < float(batch.max()):
            warned.append(True)
            warnings.warn(
                f"The augmentation callable {transform!r} turned 0-255 pixels "
                "into values in [0, 1] (as ToDtype(..., scale=True) does); the "
                "network standardises its inputs with the meta-training rows' "
                "0-255 statistics, so it would train on nearly constant "
                "inputs. Keep the input's dtype and range: no ToDtype(scale="
                "True) or Normalize in the pipeline.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return out

    return augment
