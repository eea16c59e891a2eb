"""What the batched image augmentations share: checks and one resampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["check_images", "check_padding", "resampled"]

PADDINGS = ("border", "zeros", "reflection")


def check_images(owner: str, input_shape: tuple[int, ...]) -> None:
    """Raise unless `input_shape` is an image's ``(C, H, W)``; `owner` names
    the augmentation in the message."""
    if len(input_shape) != 3:
        raise ValueError(
            f"{owner} needs images: input_shape=(C, H, W); got "
            f"input_shape={tuple(input_shape)}. For rows of features use "
            "augmentation='features'."
        )


def check_padding(owner: str, padding: str) -> None:
    """Raise unless `padding` is one of ``grid_sample``'s padding modes."""
    if padding not in PADDINGS:
        raise ValueError(
            f"{owner}'s padding must be 'border', 'zeros' or 'reflection'; "
            f"got {padding!r}."
        )


def resampled(images: torch.Tensor, grid: torch.Tensor, padding: str) -> torch.Tensor:
    """`images` sampled at `grid` (bilinear), in the images' dtype.

    Parameters
    ----------
    images : Tensor of shape (n, channels, height, width)
        Any dtype; integers are rounded and clipped to their range.
    grid : Tensor of shape (n, height, width, 2)
        Sampling points in ``grid_sample``'s [-1, 1] units
        (``align_corners=False``).
    padding : {"border", "zeros", "reflection"}

    Returns
    -------
    Tensor of shape (n, channels, height, width)
    """
    x = images.to(torch.float32)
    grid = grid.to(device=x.device, dtype=x.dtype)
    out = F.grid_sample(x, grid, padding_mode=padding, align_corners=False)
    if not images.is_floating_point():
        info = torch.iinfo(images.dtype)
        out = out.round().clamp(info.min, info.max)
    return out.to(images.dtype)
