"""Write labelled images as an image-folder tree (``root/<class>/<file>``) for tests.

``write_image_tree`` takes grey images (such as the rows of
``skmeta.datasets.make_glyphs``) or colour images, optionally resizes and
colourises them, and saves them one file each, so that
``skmeta.datasets.load_image_folder`` (or torchvision's ``ImageFolder``) reads
them back as a labelled data set. The returned Bunch holds the exact pixels
written, for comparisons, and the order in which the loader reads the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.utils import Bunch

__all__ = ["colourise", "write_image_tree"]


def _as_uint8(images: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` or ``(n, H, W, 3)`` uint8 images from uint8 or [0, 1] floats;
    rows of a square grey image, ``(n, side**2)``, are reshaped."""
    images = np.asarray(images)
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"rows of width {images.shape[1]} are not square images")
        images = images.reshape(len(images), side, side)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise ValueError(
            f"expected (n, H, W) or (n, H, W, 3) images, got {images.shape}"
        )
    if images.dtype == np.uint8:
        return images
    return np.rint(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)


def colourise(
    grey: np.ndarray, groups: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Paint grey images with an ink and a background colour per group.

    Parameters
    ----------
    grey : ndarray of shape (n, H, W), uint8
        Ink level of each pixel (255 is full ink, 0 background).
    groups : ndarray of shape (n,), int
        Images of one group share their two colours.
    rng : numpy Generator
        Draws the colours: per group, either a dark background (channels in
        0..95) with a light ink (160..255) or the reverse, so that ink and
        background always differ by at least 64 in every channel.

    Returns
    -------
    rgb : ndarray of shape (n, H, W, 3), uint8
        ``background + level / 255 * (ink - background)``, rounded.
    """
    _, index = np.unique(groups, return_inverse=True)
    n_groups = index.max() + 1
    dark = rng.integers(0, 96, (n_groups, 3))
    light = rng.integers(160, 256, (n_groups, 3))
    light_ink = rng.random(n_groups) < 0.5
    ink = np.where(light_ink[:, None], light, dark)[index]
    background = np.where(light_ink[:, None], dark, light)[index]
    level = grey[..., None].astype(np.float64) / 255
    rgb = background[:, None, None] + level * (ink - background)[:, None, None]
    return np.rint(rgb).astype(np.uint8)


def write_image_tree(
    root: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: dict | None = None,
    size: int | tuple[int, int] | None = None,
    color: str = "grey",
    palette: str = "image",
    fmt: str = "png",
    rng: int | np.random.Generator | None = 0,
) -> Bunch:
    """Save labelled images as ``root/<class name>/<index>.<fmt>`` files.

    Parameters
    ----------
    root : str or path-like
        Folder to write into (created if needed).
    images : ndarray of shape (n, H, W), (n, H, W, 3) or (n, side**2)
        uint8 pixels, or floats in [0, 1] (rounded to ``round(255 * v)``).
        Rows of width ``side**2`` are square grey images, as ``make_glyphs``
        returns.
    labels : ndarray of shape (n,)
        The class of each image, any sortable labels.
    class_names : dict, default=None
        Folder name of each label. By default ``class000``, ``class001``... in
        the order of the sorted labels, so that the loader's ``target`` is the
        rank of the label (``np.unique(labels, return_inverse=True)[1]``).
    size : int or tuple of int (height, width), default=None
        Resize the images to this size (Pillow, bilinear) before saving.
    color : {"grey", "rgb"}, default="grey"
        Save grey (``L``) files, or colour (``RGB``) ones. Grey images written as
        ``"rgb"`` are colourised (see `palette`); colour images are kept.
    palette : {"image", "class"}, default="image"
        Colourise with random colours per image (colour says nothing of the
        class), or per class (colour alone tells the classes apart).
    fmt : str, default="png"
        File extension, also the Pillow format (``"png"``, ``"jpg"``, ``"bmp"``,
        ``"webp"``...). JPEGs are saved with quality 95.
    rng : int or numpy Generator, default=0
        Draws the colours.

    Returns
    -------
    tree : Bunch
        ``paths`` : list of Path of length n, the file of each image, in the
        input order. ``pixels`` : uint8 ndarray of shape (n, H, W) or
        (n, H, W, 3), the pixels handed to the encoder (exactly those read back
        for lossless formats). ``class_names`` : dict, label to folder name.
        ``order`` : int ndarray of shape (n,), the input index of each image in
        the order the loader reads them (by class, then by index).
    """
    root = Path(root)
    labels = np.asarray(labels)
    pixels = _as_uint8(images)
    if len(pixels) != len(labels):
        raise ValueError(f"{len(pixels)} images but {len(labels)} labels")
    if size is not None:
        height, width = (size, size) if np.isscalar(size) else size
        bilinear = Image.Resampling.BILINEAR
        pixels = np.stack(
            [
                np.asarray(Image.fromarray(p).resize((width, height), bilinear))
                for p in pixels
            ]
        )
    rng = np.random.default_rng(rng)
    if color == "rgb" and pixels.ndim == 3:
        groups = labels if palette == "class" else np.arange(len(labels))
        pixels = colourise(pixels, groups, rng)
    elif color == "grey" and pixels.ndim == 4:
        pixels = np.stack([np.asarray(Image.fromarray(p).convert("L")) for p in pixels])
    elif color not in ("grey", "rgb"):
        raise ValueError(f"color must be 'grey' or 'rgb', got {color!r}")
    sorted_labels = np.unique(labels)
    if class_names is None:
        class_names = {lab: f"class{i:03d}" for i, lab in enumerate(sorted_labels)}
    width = max(5, len(str(len(labels) - 1)))
    paths = []
    for i, (pixel, label) in enumerate(zip(pixels, labels, strict=True)):
        folder = root / class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{i:0{width}d}.{fmt}")
        extra = {"quality": 95} if fmt.lower() in ("jpg", "jpeg") else {}
        Image.fromarray(pixel).save(paths[-1], **extra)
    names = np.array([class_names[lab] for lab in labels])
    order = np.lexsort((np.arange(len(labels)), names))
    return Bunch(paths=paths, pixels=pixels, class_names=class_names, order=order)


def decode_counter(monkeypatch) -> list:
    """The paths ``load_image_folder`` decodes from now on, in order (its
    ``decode_image`` wrapped by `monkeypatch`)."""
    import skmeta._image_folder as image_folder

    calls = []
    decode = image_folder.decode_image

    def counting(path, *args):
        calls.append(path)
        return decode(path, *args)

    monkeypatch.setattr(image_folder, "decode_image", counting)
    return calls
