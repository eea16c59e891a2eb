"""Loader for a folder of images with one subfolder per class (as ImageFolder)."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from ._image_decode import decode_image
from ._npy_cache import cached_rows

__all__ = ["load_image_folder"]

IMG_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
_MODES = {"rgb": "RGB", "grey": "L", "gray": "L"}
_DTYPES = ("uint8", "float32")
_CACHE_FORMAT = 1  # bump when the decoding changes, to rebuild older caches


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_size(image_size: object) -> tuple[int, int]:
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    try:
        height, width = image_size
        return _positive_int("height", height), _positive_int("width", width)
    except (TypeError, ValueError):
        raise ValueError(
            "image_size must be a positive int or a pair (height, width) of "
            f"positive ints, got {image_size!r}"
        ) from None


def _check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def _walk_class(folder: Path) -> list[str]:
    """Image files under `folder` and its subfolders (hidden ones skipped), as
    paths relative to ``folder.parent``, in torchvision's ImageFolder order."""
    found = []
    for parent, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(parent).relative_to(folder.parent).as_posix()
        found.extend((rel, name) for name in files if _is_image(name))
    return [f"{rel}/{name}" for rel, name in sorted(found)]


def _select_classes(root: Path, classes: object) -> list[str]:
    """Sorted names of the class folders of `root` to load."""
    found = sorted(
        e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")
    )
    if not found:
        raise ValueError(f"No class folder in {str(root)!r}: expected one per class.")
    if classes is None:
        return found
    if (
        isinstance(classes, str)
        or not isinstance(classes, Iterable)
        or not (classes := list(classes))
        or not all(isinstance(c, str) for c in classes)
    ):
        raise ValueError(
            f"classes must be a non-empty list of folder names, got {classes!r}"
        )
    missing = sorted(set(classes) - set(found))
    if missing:
        raise ValueError(
            f"classes: no folder {missing} in {str(root)!r}; it has "
            f"{len(found)} class folders, the first being {found[:5]}."
        )
    return sorted(set(classes))


def _list_tree(
    root: Path, classes: object, max_per_class: int | None, on_empty: str
) -> tuple[list[str], list[str], np.ndarray]:
    """The class names, file paths relative to `root`, and their int targets."""
    names, files, targets = [], [], []
    empty = []
    for name in _select_classes(root, classes):
        found = _walk_class(root / name)[:max_per_class]
        if not found:
            empty.append(name)
            continue
        files.extend(found)
        targets.extend([len(names)] * len(found))
        names.append(name)
    if empty:
        where = ", ".join(repr(str(root / e)) for e in empty)
        msg = f"No image ({', '.join(IMG_EXTENSIONS)}) in the class folder(s) {where}"
        if not names:
            raise ValueError(f"{msg}: no class has an image.")
        if on_empty == "raise":
            raise ValueError(f"{msg}. Pass on_empty='warn' to skip them.")
        warnings.warn(f"{msg}: skipped.", UserWarning, stacklevel=3)
    return names, files, np.asarray(targets, dtype=np.int64)


def _rows(
    paths: list[str],
    size: tuple[int, int],
    mode: str,
    crop: bool,
    dtype: str,
    verbose: bool,
) -> Iterator[np.ndarray]:
    """Decode the images one at a time, as rows of `dtype`."""
    scale = np.float32(255)
    desc = "Decoding images"
    with tqdm(paths, desc=desc, unit="img", disable=not verbose) as bar:
        for path in bar:
            row = decode_image(path, size, mode, crop)
            yield row if dtype == "uint8" else row.astype(np.float32) / scale


def _check_dtype(dtype: object) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    return name


def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = (84, 84),
    color: str = "rgb",
    dtype: str = "uint8",
    resize: str = "stretch",
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
    on_empty: str = "raise",
    mmap_path: str | os.PathLike | None = None,
    return_X_y: bool = False,
    verbose: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load a folder of images, one subfolder per class, as rows of pixels.

    The layout is that of torchvision's ``ImageFolder``: ``root/<class>/<file>``,
    class folders sorted by name, files found in a class folder and, recursively,
    in its subfolders. Files and folders whose name starts with ``"."`` are
    skipped, as are files without an image extension (``.bmp .gif .jpeg .jpg
    .png .tif .tiff .webp``, any case) and files directly in `root`.

    Every image is decoded with Pillow (only its first frame; EXIF orientation
    applied), converted to `color` with transparent pixels composited on white
    and 16-bit grey levels scaled to 8 bits, and resized to `image_size` with
    Pillow's antialiased bilinear filter (as torchvision's ``Resize``). Large
    JPEGs are decoded at a reduced scale first (Pillow's ``draft``).

    .. versionadded:: 0.1

    Parameters
    ----------
    root : str or path-like
        Folder holding one subfolder of images per class.
    image_size : int or tuple of int (height, width), default=(84, 84)
        Size every image is resized to; an int means a square.
    color : {"rgb", "grey", "gray"}, default="rgb"
        Three colour channels, or one grey channel (ITU-R 601-2 luma).
    dtype : {"uint8", "float32"}, default="uint8"
        ``"uint8"`` keeps the pixel values 0..255 (4 times smaller);
        ``"float32"`` divides them by 255, giving values in [0, 1].
    resize : {"stretch", "crop"}, default="stretch"
        ``"stretch"`` resizes the whole image, changing its aspect ratio if it
        differs from `image_size`'s; ``"crop"`` keeps the aspect ratio by
        resizing the largest centred part of that ratio (as Pillow's
        ``ImageOps.fit``: the filter reads a pixel or so past the cut).
    classes : list of str, default=None
        Names of the class folders to load; ``None`` loads all of them.
    max_per_class : int, default=None
        Load at most this many images per class, the first in file order.
    on_empty : {"raise", "warn"}, default="raise"
        What to do with class folders holding no image: raise a ``ValueError``
        that names them, or warn and leave them out of `target_names`.
    mmap_path : str or path-like, default=None
        If given, the rows are stored in this ``.npy`` file, written one image
        at a time so that the data set never has to fit in memory, and ``data``
        is returned as a read-only memory map of it. A JSON manifest
        ``<mmap_path>.json`` records the files (name, class, size, modification
        time) and the settings; a later call with the same folder and settings
        reuses the file without decoding any image, and any change (a file
        added, removed or modified, another setting) rebuilds it. Both files are
        written atomically (a temporary file renamed).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.
    verbose : bool, default=False
        Show a progress bar (tqdm) while decoding.

    Returns
    -------
    data : Bunch
        ``data`` : ndarray of shape (n_images, C * height * width), of `dtype`,
        each row an image flattened channel-first: ``data[i]`` reshapes to
        ``input_shape``; a read-only ``numpy.memmap`` if `mmap_path` is given.
        ``images`` : the same array viewed as shape (n_images, C, height,
        width). ``target`` : int64 ndarray of shape (n_images,), the class
        index 0..n_classes-1. ``target_names`` : ndarray of str of shape
        (n_classes,), the class folder names, sorted. ``filenames`` : ndarray
        of str of shape (n_images,), the path of each image. ``input_shape`` :
        tuple ``(C, height, width)``, ``C`` being 3 for ``"rgb"``, 1 for grey.
        ``DESCR`` : str, a description of the data.
    (data, target) : tuple of ndarray
        If `return_X_y` is True.

    Raises
    ------
    FileNotFoundError
        If `root` does not exist.
    NotADirectoryError
        If `root` is not a folder.
    ValueError
        If a parameter is invalid, `root` has no class folder, a class folder
        has no image (with ``on_empty="raise"``), or an image file cannot be
        read (the message names the file).

    See Also
    --------
    load_omniglot : Load the Omniglot handwritten characters.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skmeta.datasets import load_image_folder
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for name, value in [("cat", 40), ("dog", 200)]:
    ...         Path(root, name).mkdir()
    ...         for i in range(3):
    ...             pixels = np.full((30, 20, 3), value + i, dtype=np.uint8)
    ...             Image.fromarray(pixels).save(Path(root, name, f"{i}.png"))
    ...     bunch = load_image_folder(root, image_size=(12, 8))
    >>> bunch.data.shape, bunch.data.dtype, bunch.input_shape
    ((6, 288), dtype('uint8'), (3, 12, 8))
    >>> bunch.target.tolist(), bunch.target_names.tolist()
    ([0, 0, 0, 1, 1, 1], ['cat', 'dog'])
    >>> bunch.images[4, :, 0, 0].tolist()  # dog 1: red, green, blue
    [201, 201, 201]
    """
    size = _check_size(image_size)
    mode = _MODES[_check_choice("color", color, tuple(_MODES))]
    dtype = _check_dtype(dtype)
    crop = _check_choice("resize", resize, ("stretch", "crop")) == "crop"
    _check_choice("on_empty", on_empty, ("raise", "warn"))
    if max_per_class is not None:
        max_per_class = _positive_int("max_per_class", max_per_class)
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"The image folder {str(root)!r} does not exist.")
    if not root.is_dir():
        raise NotADirectoryError(f"The image folder {str(root)!r} is not a folder.")

    names, files, target = _list_tree(root, classes, max_per_class, on_empty)
    paths = [os.path.join(root, f) for f in files]
    input_shape = (3 if mode == "RGB" else 1, *size)
    shape = (len(paths), int(np.prod(input_shape)))
    rows = functools.partial(_rows, paths, size, mode, crop, dtype, verbose)
    if mmap_path is None:
        data = np.empty(shape, dtype=dtype)
        for i, row in enumerate(rows()):
            data[i] = row
    else:
        stats = [os.stat(p) for p in paths]
        manifest = {
            "format": _CACHE_FORMAT,
            "settings": [list(size), mode, dtype, resize],
            "target_names": names,
            "files": [
                [f, int(t), s.st_size, s.st_mtime_ns]
                for f, t, s in zip(files, target, stats, strict=True)
            ],
        }
        data = cached_rows(mmap_path, manifest, shape, np.dtype(dtype), rows)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=data.reshape(-1, *input_shape),
        target=target,
        target_names=np.array(names, dtype=str),
        filenames=np.array(paths, dtype=str),
        input_shape=input_shape,
        DESCR=(
            f"Image folder {str(root)!r}: {len(paths)} images of {len(names)} "
            f"classes, as {dtype} rows of shape {input_shape} (channels, height, "
            f"width) flattened channel-first."
        ),
    )
