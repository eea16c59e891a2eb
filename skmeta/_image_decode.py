"""Decode one image file into a fixed-size row of pixels (for load_image_folder)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

__all__ = ["decode_image"]

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_REDUCING_GAP = 3.0  # Pillow: reduce() by an integer factor first, then resample


def _declared_bits(img: Image.Image) -> int | None:
    """Bits per sample that an integer-mode file declares, if it says so."""
    if img.mode.startswith("I;16"):
        return 16
    if img.format == "PNG":  # at most 16 bits (older Pillows open them as "I")
        return 16
    bits = _tiff_tag(img, 258)  # BitsPerSample
    return int(bits) if isinstance(bits, int) and 0 < bits <= 32 else None


def _declares_signed(img: Image.Image) -> bool:
    """Whether the file's integer samples are signed: Pillow's ``I;16S``
    modes, or TIFF's SampleFormat 2 (Pillow opens signed 16-bit TIFFs as
    mode ``I``)."""
    return img.mode.endswith("S") or _tiff_tag(img, 339) == 2


def _tiff_tag(img: Image.Image, tag: int):
    """A TIFF tag's first value (None if absent or not a TIFF)."""
    tags = getattr(img, "tag_v2", None)
    value = tags.get(tag) if tags is not None else None
    if isinstance(value, tuple):
        value = value[0] if value else None
    return value


def _integer_white(pixels: np.ndarray, bits: int | None, signed: bool = False) -> float:
    """The value that is white in an ``I;16*`` or ``I`` image (see _to_mode)."""
    if bits is not None and bits < 32:
        return float(2 ** (bits - signed) - 1)
    peak = pixels.max(initial=0)
    return float(next(w for w in (255, 65535, 2**31 - 1) if peak <= w))


def _to_mode(
    img: Image.Image, mode: str, bits: int | None = None, signed: bool = False
) -> Image.Image:
    """Convert any Pillow mode to ``"L"`` or ``"RGB"``.

    Transparent pixels are composited on white; integer grey levels are
    scaled as :func:`decode_image` describes, `bits` being the file's
    declared bits per sample (None if unknown) and `signed` whether they are
    signed.
    """
    if img.mode == "I" or img.mode.startswith("I;16"):
        wide = np.asarray(img, dtype=np.float64)
        white = _integer_white(wide, bits, signed)
        grey = np.clip(np.rint(wide / (white / 255)), 0, 255)
        img = Image.fromarray(grey.astype(np.uint8))
    elif img.mode == "F":  # floating point: white is 1.0, or 255 beyond 1
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)
        white = 1.0 if values.max(initial=0.0) <= 1.0 else 255.0
        grey = np.clip(np.rint(values * (255 / white)), 0, 255)
        img = Image.fromarray(grey.astype(np.uint8))
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

    Notes
    -----
    Integer grey levels (Pillow modes ``I;16*`` and ``I``, which Pillow's own
    conversion clips at 255) are scaled from 0..white to 0..255, negative values
    clipped to 0. White is ``2**bits - 1`` where the file declares fewer than 32
    bits per sample: 65535 for 16-bit images (``I;16*`` modes, PNGs), TIFF's
    BitsPerSample otherwise; ``2**(bits - 1) - 1`` (32767 for 16 bits) where the
    samples are signed (``I;16S``, TIFF's SampleFormat 2), negative values
    clipped, as scikit-image's ``img_as_ubyte`` does. A 32-bit image, or one of
    unknown depth, states no white level: it is then the smallest of 255, 65535
    and ``2**31 - 1`` not below the image's maximum, so that 8-bit values stored
    as 32-bit integers are kept and 16-bit ones scaled as 16 bits. Such images
    are scaled one by one: two of one data set may be scaled differently.
    Floating-point grey levels (mode ``F``, e.g. 32-bit float TIFFs) are
    white at 1.0 when no value exceeds 1 (scikit-image's convention), else at
    255; values outside are clipped and NaN is black.
    """
    height, width = size
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":  # decode at a reduced scale, still >= size
                img.draft(mode, (max(size), max(size)))
            bits, signed = _declared_bits(img), _declares_signed(img)
            img = _to_mode(ImageOps.exif_transpose(img), mode, bits, signed)
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
