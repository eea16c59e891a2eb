"""What the ``skmeta`` command reads and writes: data sets from image folders,
``.npz`` and ``.csv`` files, and features to ``.npy``, ``.npz``, ``.csv`` or
``.parquet``.

Every failure is a :class:`DataError` whose message names the file or flag.
"""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._image_decode import decode_image
from ._image_folder import IMG_EXTENSIONS, load_image_folder

__all__ = [
    "DataError",
    "Dataset",
    "augmentation_names",
    "check_features_path",
    "load_dataset",
    "load_unlabelled",
    "load_unlabelled_images",
    "save_features",
]

PARQUET_INSTALL = 'pip install "skmeta[parquet]"'
FEATURE_SUFFIXES = (".npy", ".npz", ".csv", ".parquet")


class DataError(ValueError):
    """Bad input data or a bad data flag; the command exits with status 2."""


@dataclass
class Dataset:
    """Rows, labels and where they came from.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,) or None
    input_shape : tuple of int
        ``(C, H, W)`` for images, ``(n_features,)`` for tables.
    names : ndarray of shape (n_samples,) of str
        File names of images, row numbers of tables.
    groups : ndarray of shape (n_samples,) or (n_samples, n_groups), or None
        The arrays or columns ``--groups`` names (``.npz`` and ``.csv``).
    """

    X: np.ndarray
    y: np.ndarray | None
    input_shape: tuple[int, ...]
    names: np.ndarray
    groups: np.ndarray | None = None


def augmentation_names(value: str) -> str | list[str]:
    """``--augmentation``'s value: one preset, or presets separated by commas
    (a list, applied in turn)."""
    names = [name.strip() for name in value.split(",")]
    return names if len(names) > 1 else names[0]


augmentation_names.help = " Presets separated by commas apply in turn: affine,elastic."


def load_dataset(
    path,
    image_size=(84, 84),
    color="rgb",
    label_column="label",
    mmap_path=None,
    on_empty="raise",
    groups=None,
) -> Dataset:
    """A labelled data set from `path`.

    Parameters
    ----------
    path : str or path-like
        A folder with one subfolder per class (images), an ``.npz`` file with
        arrays ``X`` (or ``data``) and ``y`` (or ``target``), and optionally
        ``input_shape``; or a ``.csv`` file with a header and a label column.
    image_size : tuple of int (height, width), default=(84, 84)
        For image folders.
    color : {"rgb", "grey", "gray"}, default="rgb"
        For image folders.
    label_column : str, default="label"
        For ``.csv`` files: the column holding the labels.
    mmap_path : str or path-like, optional
        For image folders: cache the rows in this memory-mapped ``.npy``.
    on_empty : {"raise", "warn"}, default="raise"
        For image folders: what a class subfolder without images does.
    groups : list of str, optional
        For ``.npz`` and ``.csv`` files: the arrays or columns to return as
        ``groups`` (one column each); a ``.csv`` file's are not features.

    Returns
    -------
    Dataset
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder.")
    if groups and (path.is_dir() or path.suffix.lower() not in (".npz", ".csv")):
        raise DataError(
            f"--groups {','.join(groups)}: groups are arrays of an .npz file or "
            f"columns of a .csv file; {path} is neither."
        )
    if path.is_dir():
        try:
            bunch = load_image_folder(
                path,
                image_size=image_size,
                color=color,
                mmap_path=mmap_path,
                on_empty=on_empty,
            )
        except (ValueError, OSError) as exc:
            raise DataError(str(exc)) from None
        return Dataset(
            bunch.data,
            bunch.target_names[bunch.target],
            tuple(bunch.input_shape),
            np.asarray(bunch.filenames),
        )
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path, groups=groups)
    if suffix == ".csv":
        return _load_csv(path, label_column, groups=groups)
    raise DataError(
        f"{path}: unknown kind of data; give a folder of class subfolders of "
        "images, an .npz file or a .csv file."
    )


def _load_npz(path: Path, labelled: bool = True, groups=None) -> Dataset:
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}).") from None
    with arrays:
        X = next((arrays[k] for k in ("X", "data") if k in arrays.files), None)
        y = next((arrays[k] for k in ("y", "target") if k in arrays.files), None)
        shape = arrays["input_shape"] if "input_shape" in arrays.files else None
        missing = [name for name in groups or () if name not in arrays.files]
        if missing:
            raise DataError(
                f"{path}: no array {missing[0]!r} (--groups); it has "
                f"{sorted(arrays.files)}."
            )
        columns = [np.asarray(arrays[name]) for name in groups or ()]
    if X is None or (y is None and labelled):
        raise DataError(
            f"{path}: an .npz data set holds arrays 'X' (or 'data') and 'y' (or "
            f"'target'); it has {sorted(arrays.files)}."
        )
    if X.ndim > 2:  # images as (n, C, H, W) or (n, H, W)
        shape = X.shape[1:] if X.ndim == 4 else (1, *X.shape[1:])
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2 or (y is not None and len(y) != len(X)):
        raise DataError(
            f"{path}: X has shape {X.shape} and y {np.shape(y)}; expected rows "
            "(n_samples, n_features) and one label per row."
        )
    shape = (X.shape[1],) if shape is None else tuple(int(s) for s in shape)
    names = np.array([str(i) for i in range(len(X))])
    if any(column.shape != (len(X),) for column in columns):
        raise DataError(
            f"{path}: each --groups array needs one value per row of X "
            f"({len(X)},); got shapes {[c.shape for c in columns]}."
        )
    found = _group_array(columns)
    return Dataset(X, None if y is None else np.asarray(y), shape, names, found)


def _group_array(columns: list) -> np.ndarray | None:
    """The --groups columns as one array: 1-D for one, (n, k) for k."""
    if not columns:
        return None
    if len(columns) == 1:
        return columns[0]
    return np.stack([np.asarray(c).astype(str) for c in columns], axis=1)


def _load_csv(
    path: Path, label_column: str, labelled: bool = True, groups=None
) -> Dataset:
    """The rows of a ``.csv`` file, read one record at a time into float32
    blocks: memory is the array's and one block's, never the text's. The
    `groups` columns are returned as groups, not features."""
    with contextlib.closing(_csv_records(path)) as records:  # closed on errors
        header = next(records, None)
        if header is None:
            raise DataError(f"{path}: empty file.")
        if label_column not in header and labelled:
            raise DataError(
                f"{path}: no column {label_column!r} (--label-column); the columns "
                f"are {header[:10]}{' ...' if len(header) > 10 else ''}."
            )
        at = header.index(label_column) if label_column in header else None
        missing = [name for name in groups or () if name not in header]
        if missing:
            raise DataError(
                f"{path}: no column {missing[0]!r} (--groups); the columns are "
                f"{header[:10]}{' ...' if len(header) > 10 else ''}."
            )
        grouped = [header.index(name) for name in groups or ()]
        skip = {at, *grouped}
        labels, blocks, block, group_rows = [], [], [], []
        for line, record in enumerate(records, start=2):
            if len(record) != len(header):
                raise DataError(
                    f"{path}, line {line}: {len(record)} fields, the header has "
                    f"{len(header)}."
                )
            labels.append(None if at is None else record[at])
            if grouped:
                group_rows.append([record[i] for i in grouped])
            try:
                block.append([float(v) for i, v in enumerate(record) if i not in skip])
            except ValueError:
                raise DataError(
                    f"{path}, line {line}: a feature is not a number."
                ) from None
            if len(block) == _CSV_BLOCK:
                blocks.append(np.asarray(block, dtype=np.float32))
                block = []
        if block:
            blocks.append(np.asarray(block, dtype=np.float32))
    if not blocks:
        raise DataError(f"{path}: no data rows.")
    X = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    y = np.asarray(labels) if labelled else None
    if y is not None and all(_is_int(v) for v in labels):
        y = y.astype(np.int64)
    found = _group_array([np.asarray(c) for c in zip(*group_rows, strict=True)])
    names = np.array([str(i) for i in range(len(X))])
    return Dataset(X, y, (X.shape[1],), names, found)


#: Rows parsed into one float32 block by :func:`_load_csv`.
_CSV_BLOCK = 4096


def _csv_records(path: Path):
    """The records of a ``.csv`` file, one at a time, errors as DataError."""
    try:  # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is no column name
        with open(path, newline="", encoding="utf-8-sig") as handle:
            yield from csv.reader(handle)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}).") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable .csv file ({exc}).") from None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def load_unlabelled(path, input_shape, label_column="label") -> Dataset:
    """Rows to label, for a model taking rows of `input_shape`: a folder of
    images (see :func:`load_unlabelled_images`), an ``.npz`` file (``X``; any
    ``y`` ignored) or a ``.csv`` file (any `label_column` ignored)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder.")
    if path.is_dir():
        return load_unlabelled_images(path, input_shape)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        data = _load_npz(path, labelled=False)
    elif suffix == ".csv":
        data = _load_csv(path, label_column, labelled=False)
    else:
        raise DataError(
            f"{path}: unknown kind of data; give a folder of images, an .npz "
            "file or a .csv file."
        )
    width = int(np.prod(input_shape))
    if data.X.shape[1] != width:
        raise DataError(
            f"{path}: rows of {data.X.shape[1]} values; the model takes rows of "
            f"{width} (shape {tuple(input_shape)})."
        )
    return Dataset(data.X, None, tuple(input_shape), data.names)


def load_unlabelled_images(path, input_shape) -> Dataset:
    """Every image file in folder `path` (recursively), decoded to the size and
    colour of `input_shape` ``(C, H, W)``; no labels."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a folder of images.")
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise DataError(
            f"{path}: the model takes rows of shape {tuple(input_shape)}, not "
            "grey or colour images; give its data as an .npz or .csv file."
        )
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMG_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise DataError(f"{path}: no image files.")
    mode = "L" if input_shape[0] == 1 else "RGB"
    try:
        rows = [decode_image(f, tuple(input_shape[1:]), mode, False) for f in files]
    except (ValueError, OSError) as exc:
        raise DataError(str(exc)) from None
    names = np.array([str(f.relative_to(path)) for f in files])
    return Dataset(np.stack(rows), None, tuple(input_shape), names)


def check_features_path(path) -> None:
    """Refuse, before any work, a features file name :func:`save_features`
    cannot write: an unknown suffix (:class:`DataError`), or ``.parquet``
    without pandas and pyarrow (``ImportError``, saying what to install)."""
    path = Path(path)
    if path.suffix.lower() not in FEATURE_SUFFIXES:
        raise DataError(f"--out {path}: use a .npy, .npz, .csv or .parquet file name.")
    if path.suffix.lower() == ".parquet":
        _parquet_frame()


def _parquet_frame():
    """pandas' DataFrame, once pyarrow is known to be there to write it."""
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"writing .parquet needs pandas and pyarrow ({exc}); install them "
            f"with {PARQUET_INSTALL}, or give --out a .npy, .npz or .csv name."
        ) from None
    return pd.DataFrame


def save_features(path, features: np.ndarray, data: Dataset) -> None:
    """Write embeddings by the file's suffix: ``.npy`` (the matrix), ``.npz``
    (``features``, ``y``, ``names``), ``.csv`` or ``.parquet`` (one row per
    sample: name, label, features)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, features)
        return
    if suffix == ".npz":
        extra = {} if data.y is None else {"y": data.y}
        np.savez(path, features=features, names=data.names, **extra)
        return
    check_features_path(path)
    columns = [f"f{i}" for i in range(features.shape[1])]
    if suffix == ".parquet":
        frame = _parquet_frame()(features, columns=columns)
        frame.insert(0, "name", data.names)
        if data.y is not None:
            frame.insert(1, "label", data.y)
        frame.to_parquet(path)
        return
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        head = ["name"] + (["label"] if data.y is not None else []) + columns
        writer.writerow(head)
        for i, row in enumerate(features):
            label = [] if data.y is None else [data.y[i]]
            writer.writerow([data.names[i], *label, *(f"{v:.7g}" for v in row)])
