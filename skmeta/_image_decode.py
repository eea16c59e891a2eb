"""Decode one image file into a fixed-size row of pixels (for load_image_folder)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

__all__ = ["decode_image"]

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_REDUCING_GAP = 3.0  # Pillow: reduce() by an integer factor first, then resample


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Convert any Pillow mode to ``"L"`` or ``"RGB"``.

    Transparent pixels are composited on white. 16-bit and 32-bit integer
    grey levels (``I;16*``, ``I``) are scaled from 0..65535 to 0..255
    (Pillow's own conversion clips them at 255 instead).
    """
    if img.mode == "I" or img.mode.startswith("I;16"):
        wide = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.rint(wide / 257), 0, 255).astype(np.uint8))
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return img if img.mode == mode else img.convert(mode)


def _crop_box(width: int, height: int, size: tuple[int, int]) -> tuple:
    """The centred box of aspect ratio ``size`` (H, W) inside a width x height image."""
    out_h, out_w = size
    if width * out_h > height * out_w:  # too wide: crop the sides
        keep = height * out_w / out_h
        return ((width - keep) / 2, 0.0, (width + keep) / 2, float(height))
    keep = width * out_h / out_w
    return (0.0, (height - keep) / 2, float(width), (height + keep) / 2)


def decode_image(
    path: str | os.PathLike, size: tuple[int, int], mode: str, crop: bool
) -> np.ndarray:
    """Read one image file as a flattened channel-first uint8 row.

    Parameters
    ----------
    path : str or path-like
        The image file.
    size : tuple of int (height, width)
        Size of the output image.
    mode : {"L", "RGB"}
        Pillow mode of the output: one grey or three colour channels.
    crop : bool
        Centre-crop to the aspect ratio of `size` before resizing, rather than
        stretching the whole image.

    Returns
    -------
    row : ndarray of shape (C * height * width,)
        The uint8 pixels in channel-first order, ``C`` being 1 for ``"L"`` and 3
        for ``"RGB"``.

    Raises
    ------
    ValueError
        If the file cannot be read as an image; the message names the file.
    """
    height, width = size
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":  # decode at a reduced scale, still >= size
                img.draft(mode, (max(size), max(size)))
            img = _to_mode(ImageOps.exif_transpose(img), mode)
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError...
        raise ValueError(
            f"Cannot read the image file {os.fspath(path)!r}: {exc}"
        ) from exc
    if img.size != (width, height):
        box = _crop_box(*img.size, size) if crop else None
        img = img.resize(
            (width, height),
            Image.Resampling.BILINEAR,
            box=box,
            reducing_gap=_REDUCING_GAP,
        )
    pixels = np.asarray(img, dtype=np.uint8)
    if pixels.ndim == 3:
        pixels = pixels.transpose(2, 0, 1)
    return pixels.ravel()
