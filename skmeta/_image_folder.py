"""Loader for a folder of images with one subfolder per class (as ImageFolder)."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator, Sequence
from numbers import Integral
from pathlib import Path
from typing import Literal, overload

import numpy as np
from sklearn.utils import Bunch
from tqdm.auto import tqdm

from ._image_cache import mmap_rows
from ._image_decode import decode_image
from ._image_tree import IMG_EXTENSIONS as IMG_EXTENSIONS  # for _cli_data
from ._image_tree import list_tree
from ._tqdm_streams import tqdm_options

__all__ = ["load_image_folder"]

_MODES = {"rgb": "RGB", "grey": "L", "gray": "L"}
_DTYPES = ("uint8", "float32")
_CACHE_FORMAT = 4  # bump when the decoding changes, to rebuild older caches
_SHOWN = 3  # unreadable files named in the warning


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_size(image_size: object) -> tuple[int, int]:
    pair = image_size
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        pair = (image_size, image_size)
    try:
        height, width = pair
        return _positive_int("height", height), _positive_int("width", width)
    except (TypeError, ValueError):
        raise ValueError(
            "image_size must be a positive integer or a pair (height, width) of "
            f"positive integers (sizes in pixels), got {image_size!r}."
        ) from None


def _check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def decoded_rows(
    paths: list[str],
    size: tuple[int, int],
    mode: str,
    crop: bool,
    dtype: str,
    verbose: bool,
    skipped: list | None = None,
) -> Iterator[np.ndarray]:
    """Decode the images one at a time, as rows of `dtype`.

    An unreadable file raises a ``ValueError``, or, if `skipped` is a list,
    yields no row: its index and error message are appended to `skipped`.
    """
    scale = np.float32(255)
    desc = "Decoding images"
    options = tqdm_options()  # few lines in a log file
    with tqdm(paths, desc=desc, unit="img", disable=not verbose, **options) as bar:
        for i, path in enumerate(bar):
            try:
                row = decode_image(path, size, mode, crop)
            except ValueError as exc:
                if skipped is None:
                    raise ValueError(
                        f"{exc} (on_error='warn' skips unreadable files)"
                    ) from exc
                skipped.append((i, str(exc)))
                continue
            yield row if dtype == "uint8" else row.astype(np.float32) / scale


def _leave_out(
    root: Path, names: list[str], files: list[str], target: np.ndarray, skipped: list
) -> tuple[list[str], list[str], np.ndarray]:
    """Drop the unreadable files (`skipped`: index, error) with one warning;
    a class left with no file is dropped too, the targets renumbered."""
    bad = [i for i, _ in skipped]
    shown = ", ".join(repr(files[i]) for i in bad[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    if len(bad) == len(files):
        raise ValueError(
            f"None of the {len(files)} image files of {str(root)!r} can be read "
            f"({shown}{more}): {skipped[0][1]}"
        )
    keep = np.ones(len(files), dtype=bool)
    keep[bad] = False
    present, target = np.unique(target[keep], return_inverse=True)
    gone = sorted(set(names) - {names[c] for c in present})
    msg = (
        f"Skipped {len(bad)} of the {len(files)} image files of {str(root)!r}, "
        f"which cannot be read: {shown}{more}."
    )
    if skipped[0][1] is not None:
        msg += f" The first error: {skipped[0][1]}"
    if gone:
        msg += f" Class folder(s) {gone} left with no image: left out."
    warnings.warn(msg, UserWarning, stacklevel=3)
    files = [f for f, k in zip(files, keep, strict=True) if k]
    return [names[c] for c in present], files, target.astype(np.int64)


def _check_cache_path(path: Path) -> None:
    """Refuse an `mmap_path` that is a folder (its rename failed only after
    every image was decoded)."""
    if path.is_dir():
        raise ValueError(
            f"mmap_path {str(path)!r} is a folder; give the name of a .npy file "
            "to write the rows to."
        )


def _check_dtype(dtype: object) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    return name


@overload
def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = ...,
    color: str = ...,
    dtype: str = ...,
    resize: str = ...,
    classes: Sequence[str] | None = ...,
    max_per_class: int | None = ...,
    on_empty: str = ...,
    on_error: str = ...,
    mmap_path: str | os.PathLike | None = ...,
    return_X_y: Literal[False] = ...,
    verbose: bool = ...,
) -> Bunch: ...
@overload
def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = ...,
    color: str = ...,
    dtype: str = ...,
    resize: str = ...,
    classes: Sequence[str] | None = ...,
    max_per_class: int | None = ...,
    on_empty: str = ...,
    on_error: str = ...,
    mmap_path: str | os.PathLike | None = ...,
    return_X_y: Literal[True],
    verbose: bool = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] = ...,
    color: str = ...,
    dtype: str = ...,
    resize: str = ...,
    classes: Sequence[str] | None = ...,
    max_per_class: int | None = ...,
    on_empty: str = ...,
    on_error: str = ...,
    mmap_path: str | os.PathLike | None = ...,
    return_X_y: bool,
    verbose: bool = ...,
) -> Bunch | tuple[np.ndarray, np.ndarray]: ...
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
    on_error: str = "raise",
    mmap_path: str | os.PathLike | None = None,
    return_X_y: bool = False,
    verbose: bool = False,
) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load a folder of images, one subfolder per class, as rows of pixels.

    The layout is that of torchvision's ``ImageFolder``: ``root/<class>/<file>``,
    class folders sorted by name, files found in a class folder and, recursively,
    in its subfolders. Files and folders whose name starts with ``"."`` are
    skipped, as are files without an image extension (``.bmp .gif .jpeg .jpg
    .png .tif .tiff .webp``, any case). Image files directly in `root` have no
    class: they are skipped with a warning that counts them.

    Links are followed, with no loop: a class folder's walk enters no folder
    it has already read (a folder reached by two paths is read once, at the
    first in sorted order), not `root` or a folder above it, and no folder
    that is, by its real path, inside another class folder. A linked file is
    read wherever it is found: linked into two class folders, it is loaded
    twice, once with each label.

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
    on_error : {"raise", "warn"}, default="raise"
        What to do with image files that cannot be decoded (corrupt,
        truncated, not an image): raise a ``ValueError`` that names the first
        one, or leave them out (their rows, targets and filenames alike) with
        one warning that counts them and names the first few. A class whose
        files are all unreadable is then left out of `target_names`;
        `max_per_class` counts the files before any is left out.
    mmap_path : str or path-like, default=None
        If given, the rows are stored in this ``.npy`` file, written one image
        at a time so that the data set never has to fit in memory, and ``data``
        is returned as a read-only memory map of it. A JSON manifest
        ``<mmap_path>.json`` records the files (name, class, size, modification
        time) and the settings; a later call with the same folder and settings
        reuses the file without decoding any image, and any change (a file
        added, removed or modified, another setting) rebuilds it. Both files are
        written atomically (a temporary file renamed). The manifest lists the
        files left out by ``on_error="warn"``; with it, a new file is first
        decoded to a temporary ``.npy`` file beside `mmap_path` (its row count
        is known only once every file is decoded), then renamed into place.
        On Windows a file in use cannot be replaced: a rebuild while an array
        returned from it earlier is alive raises a ``PermissionError`` naming
        `mmap_path` (delete that array first, or give another path).
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
        has no image (with ``on_empty="raise"``), an image file cannot be
        read (with ``on_error="raise"``; the message names the file), or no
        image file can be read.

    Warns
    -----
    UserWarning
        If image files lie directly in `root`, if a class folder has no image
        (with ``on_empty="warn"``) or if image files cannot be read (with
        ``on_error="warn"``).

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
    _check_choice("on_error", on_error, ("raise", "warn"))
    if max_per_class is not None:
        max_per_class = _positive_int("max_per_class", max_per_class)
    if mmap_path is not None:  # before decoding, not after
        _check_cache_path(Path(os.path.expanduser(mmap_path)))
    root = Path(os.path.expanduser(root))
    if not root.exists():
        raise FileNotFoundError(f"The image folder {str(root)!r} does not exist.")
    if not root.is_dir():
        raise NotADirectoryError(f"The image folder {str(root)!r} is not a folder.")

    names, files, target = list_tree(root, classes, max_per_class, on_empty)
    paths = [os.path.join(root, f) for f in files]
    input_shape = (3 if mode == "RGB" else 1, *size)
    width = int(np.prod(input_shape))
    rows = functools.partial(decoded_rows, paths, size, mode, crop, dtype, verbose)
    skipped = [] if on_error == "warn" else None
    if mmap_path is None:
        data = np.empty((len(paths), width), dtype=dtype)
        n = 0
        for n, row in enumerate(rows(skipped), start=1):
            data[n - 1] = row
        data.resize((n, width), refcheck=False)  # in place: unreadable files
    else:
        manifest = {
            "format": _CACHE_FORMAT,
            "settings": [list(size), mode, dtype, resize],
            "target_names": names,
            "files": [
                [f, int(t), s.st_size, s.st_mtime_ns]
                for f, t, s in zip(files, target, map(os.stat, paths), strict=True)
            ],
        }
        data, skipped = mmap_rows(
            mmap_path, manifest, files, width, np.dtype(dtype), rows, on_error == "warn"
        )
    if skipped:
        names, files, target = _leave_out(root, names, files, target, skipped)
        paths = [os.path.join(root, f) for f in files]
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
