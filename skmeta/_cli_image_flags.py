"""The flags that apply to images only: how ``--image-size`` and ``--color``
read an image folder, and their refusal, with ``train``'s image backbones and
augmentations, on a table; ``--on-empty`` and ``--on-error``, refused where
no image folder is read.

A ``.csv`` file, or an ``.npz`` file of flat rows, holds features, not
images: ``--image-size 28`` and ``--color grey`` were accepted there and did
nothing, and ``--backbone conv4`` asked for a Python parameter. An ``.npz``
file of images is taken at its own size and colour: a flag that disagrees is
refused too. Whether an ``.npz`` file holds images is read from its arrays'
headers, before its rows are (``train`` checks its flags first). No file is
decoded image by image: ``--on-error warn`` on one did nothing, silently.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ._cli_columns import label_column
from ._cli_dataset import DataError
from ._cli_tables import X_NAMES, image_row_shape

__all__ = ["file_shape", "folder_options", "image_options", "refuse_image_flags"]

#: What :func:`file_shape` says of a table of flat rows.
FLAT = "flat rows"


def image_options(args, model=None, verbose: bool = False) -> dict:
    """How to read DATA, once the image-only flags are known to apply to it.

    Parameters
    ----------
    args : argparse.Namespace
        A command's flags (``train``, ``evaluate``, ``embed``).
    model : MetaModel, optional
        Its input shape is the only image size and colour ``evaluate`` and
        ``embed`` read; other flags are refused.
    verbose : bool, default=False
        A progress bar while an image folder is decoded.

    Returns
    -------
    dict
        ``load_dataset``'s keywords: image size and colour (the flags', else
        the model's, else 84x84 RGB), label column, empty classes, unreadable
        files.

    Raises
    ------
    DataError
        An image-only flag given for a table (:func:`refuse_image_flags`,
        :func:`folder_options`), or a size or colour the model does not take.
    """
    refuse_image_flags(args, args.data)
    folders = folder_options(args, args.data)
    size, color = args.image_size, args.color
    shape = None if model is None else model.input_shape
    images = shape is not None and len(shape) == 3
    if images and size is not None and (size[0], size[-1]) != tuple(shape[1:]):
        raise DataError(
            f"--image-size {' '.join(map(str, size))}: the model takes "
            f"{shape[1]}x{shape[2]} images; leave --image-size out to read them so."
        )
    if images and color is not None and (color == "rgb") != (shape[0] != 1):
        kind = "grey" if shape[0] == 1 else "colour (rgb)"
        raise DataError(
            f"--color {color}: the model takes {kind} images (input shape "
            f"{shape}); leave --color out to read them so."
        )
    if size is None:
        size = [84] if not images else list(shape[1:])
    if color is None:
        color = "rgb" if not images or shape[0] == 3 else "grey"
    return {
        "image_size": (size[0], size[-1]),
        "color": color,
        "label_column": label_column(args.label_column, args.data),
        **folders,
        "verbose": verbose,
    }


def folder_options(args, data, query=None) -> dict:
    """``--on-empty`` and ``--on-error``: ``"raise"`` when left out, refused
    when given where they do nothing.

    Parameters
    ----------
    args : argparse.Namespace
        ``on_empty`` and ``on_error``, None when left out.
    data : path-like
        DATA, or ``predict``'s ``--support``: ``--on-empty`` applies to it as
        a folder of class subfolders, ``--on-error`` as any image folder.
    query : path-like, optional
        ``predict``'s ``--query``: ``--on-error`` applies to it as a folder.

    Returns
    -------
    dict
        ``on_empty`` and ``on_error``, ``load_dataset``'s keywords.

    Raises
    ------
    DataError
        Naming the flag, and the files (``.csv``, ``.npz``: rows read as they
        are) or the folder without class subfolders it finds instead. A path
        that does not exist is left to its loader.
    """
    named = [("", data)] if query is None else [("--support ", data)]
    if query is not None:
        named.append(("--query ", query))
    for flag, value, checked, what in (
        ("--on-empty", args.on_empty, named[:1], "folders of class subfolders"),
        ("--on-error", args.on_error, named, "image folders"),
    ):
        found = [_not_read_so(label, path, flag) for label, path in checked]
        if value is not None and all(found):
            raise DataError(
                f"{flag} {value}: applies to {what}; {' and '.join(found)}; "
                "leave it out."
            )
    return {"on_empty": args.on_empty or "raise", "on_error": args.on_error or "raise"}


def _not_read_so(label: str, path, flag: str) -> str | None:
    """Why `path` (``label``: its flag) reads no image folder `flag` could
    act on, or None where it may."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".csv", ".npz"):
        kind = "an .npz" if path.suffix.lower() == ".npz" else "a .csv"
        return f"{label}{path} is {kind} file, its rows read as they are"
    if flag == "--on-empty" and path.is_dir():
        if not any(_is_class(entry) for entry in path.iterdir()):
            return f"{label}{path} holds images without class subfolders"
    return None


def _is_class(entry: Path) -> bool:
    """Whether folder entry `entry` is a class subfolder (hidden ones are not
    read)."""
    return entry.is_dir() and not entry.name.startswith(".")


def refuse_image_flags(args, path) -> None:
    """Refuse the image-only flags of `args` that DATA `path` makes
    meaningless: any of them for a table of flat rows, and a size or colour
    other than its own for an ``.npz`` file of images.

    Parameters
    ----------
    args : argparse.Namespace
        ``--image-size`` and ``--color``; ``train``'s ``--backbone``,
        ``--augmentation`` and ``--class-augmentation`` where it has them.
    path : path-like
        DATA; an image folder, or a file that cannot be read (its loader
        says why), takes every flag.

    Raises
    ------
    DataError
        Naming the flag and the file, and saying that the flag applies to
        image folders and rows of images.
    """
    shape = file_shape(path)
    if shape == FLAT:
        for flag, value, fix in _image_flags(args):  # the first one given
            raise DataError(
                f"{flag} {value}: applies to image folders and rows of images; "
                f"{path} holds flat rows of features{fix}."
            )
    if shape is None or shape == FLAT:
        return
    size, color = args.image_size, args.color
    if size is not None and (size[0], size[-1]) != shape[1:]:
        raise DataError(
            f"--image-size {' '.join(map(str, size))}: {path} holds "
            f"{shape[1]}x{shape[2]} images, taken at their size (--image-size "
            "resizes an image folder's); leave it out."
        )
    if color is not None and (color == "rgb") != (shape[0] != 1):
        raise DataError(
            f"--color {color}: {path} holds images of {shape[0]} channel(s), "
            "taken as they are (--color converts an image folder's); leave it out."
        )


def _image_flags(args):
    """``(flag, value, fix)`` of each image-only flag `args` gives, `fix`
    what a table takes instead."""
    from .meta.augment import IMAGE_PRESETS
    from .meta.backbones import takes_images

    if args.image_size is not None:
        yield "--image-size", " ".join(map(str, args.image_size)), "; leave it out"
    if args.color is not None:
        yield "--color", args.color, "; leave it out"
    backbone = getattr(args, "backbone", None)
    if backbone is not None and takes_images(backbone):
        yield "--backbone", backbone, " (--backbone mlp takes them)"
    augmentation = getattr(args, "augmentation", None) or []
    for name in [augmentation] if isinstance(augmentation, str) else augmentation:
        if name in IMAGE_PRESETS:
            yield "--augmentation", name, " (--augmentation features takes them)"
    turns = getattr(args, "class_augmentation", None)
    if turns is not None:
        yield "--class-augmentation", turns, " (it turns square images)"


def file_shape(path):
    """What DATA file `path` holds: ``FLAT`` (a ``.csv`` file, or an ``.npz``
    file's 2-D ``X`` without a 3-value ``input_shape``), the ``(C, H, W)`` of
    an ``.npz`` file's images, or None (a folder, or a file whose loader
    will say what is wrong with it)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or not path.is_file() or suffix not in (".csv", ".npz"):
        return None
    if suffix == ".csv":
        return FLAT
    try:
        return _npz_shape(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _npz_shape(path: Path):
    """As :func:`file_shape`, for an ``.npz`` file: read from the header of
    its ``X`` (the rows unread) and its ``input_shape`` array."""
    with zipfile.ZipFile(path) as archive:
        files = {
            name[:-4]: name for name in archive.namelist() if name.endswith(".npy")
        }
        key = next((k for k in X_NAMES if k in files), None)
        if key is None:
            return None
        with archive.open(files[key]) as handle:
            major, _ = np.lib.format.read_magic(handle)
            read = np.lib.format.read_array_header_1_0
            if major > 1:
                read = np.lib.format.read_array_header_2_0
            shape = read(handle)[0]
        stored = None
        if "input_shape" in files:
            with archive.open(files["input_shape"]) as handle:
                stored = tuple(int(s) for s in np.lib.format.read_array(handle))
    if len(shape) == 2:
        return stored if stored is not None and len(stored) == 3 else FLAT
    return image_row_shape(shape)
