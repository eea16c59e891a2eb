"""What the ``skmeta`` command reads and writes: data sets from image folders,
``.npz`` and ``.csv`` files, and features to ``.npy``, ``.npz``, ``.csv`` or
``.parquet``.

Every failure is a :class:`DataError` whose message names the file or flag.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from ._cli_dataset import DataError, Dataset
from ._cli_tables import load_csv, load_npz, refuse_regression_target
from ._image_folder import IMG_EXTENSIONS, decoded_rows, load_image_folder

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
    on_error="raise",
    verbose=False,
    classes=False,
    labelled=True,
    id_column=None,
    model_shape=None,
) -> Dataset:
    """A labelled data set from `path`.

    Parameters
    ----------
    path : str or path-like
        A folder with one subfolder per class (images), an ``.npz`` file with
        arrays ``X`` (or ``data``, or ``features``) and ``y`` (or ``target``),
        images unflattened or channel-last moved first, and optionally
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
    on_error : {"raise", "warn"}, default="raise"
        For image folders: what an unreadable image file does.
    verbose : bool, default=False
        For image folders: a progress bar while the images are decoded.
    classes : bool, default=False
        The labels are the classes episodes are drawn from (``train``,
        ``evaluate``): a table's regression target is refused.
    labelled : bool or None, default=True
        For ``.npz`` and ``.csv`` files: labels are required (True), or read
        when the file has them (None: ``embed``, which writes no label column
        for a table without one).
    id_column : str, optional
        For ``.npz`` and ``.csv`` files: the array or column, if there, of
        the rows' names (``--id-column``); not a feature.
    model_shape : tuple of int, optional
        The input shape of the model the rows are for: a folder of images is
        refused, before it is decoded, for a model of table rows.

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
    if path.is_dir() and model_shape is not None and len(model_shape) != 3:
        raise DataError(  # it was decoded, then refused by its width
            f"{path}: the model takes rows of shape {tuple(model_shape)}, not "
            "images; give its data as an .npz or .csv file."
        )
    if path.is_dir():
        try:
            bunch = load_image_folder(
                path,
                image_size=image_size,
                color=color,
                mmap_path=mmap_path,
                on_empty=on_empty,
                on_error=on_error,
                verbose=verbose,
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
    if suffix not in (".npz", ".csv"):
        raise DataError(
            f"{path}: unknown kind of data; give a folder of class subfolders "
            "of images, an .npz file or a .csv file."
        )
    if suffix == ".npz":
        data = load_npz(path, labelled, groups, id_column)
    else:
        data = load_csv(path, label_column, labelled, groups, id_column)
    if classes:
        refuse_regression_target(path, data.y)
    return data


def load_unlabelled(
    path, input_shape, label_column="label", on_error="raise", id_column=None
) -> Dataset:
    """Rows to label, for a model taking rows of `input_shape`: a folder of
    images (see :func:`load_unlabelled_images`; `on_error` as
    there), an ``.npz`` file (``X``; any ``y`` ignored) or a ``.csv`` file
    (any `label_column` ignored); a table's `id_column`, if there, names the
    rows. Their width is :func:`~skmeta._cli_columns.match_columns`' to check,
    once named columns are matched."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder.")
    if path.is_dir():
        return load_unlabelled_images(path, input_shape, on_error)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        data = load_npz(path, False, id_column=id_column)
    elif suffix == ".csv":
        data = load_csv(path, label_column, False, id_column=id_column)
    else:
        raise DataError(
            f"{path}: unknown kind of data; give a folder of images, an .npz "
            "file or a .csv file."
        )
    data.y = None
    return data


def load_unlabelled_images(path, input_shape, on_error="raise") -> Dataset:
    """Every image file in folder `path` (recursively), decoded to the size and
    colour of `input_shape` ``(C, H, W)`` as ``uint8`` rows (0-255); no
    labels. An unreadable file is an error
    (`on_error` ``"raise"``) or left out with one warning (``"warn"``)."""
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
    skipped = [] if on_error == "warn" else None  # (index, error) of each
    paths = [str(f) for f in files]
    try:
        rows = list(
            decoded_rows(
                paths, tuple(input_shape[1:]), mode, False, "uint8", False, skipped
            )
        )
    except (ValueError, OSError) as exc:
        raise DataError(str(exc)) from None
    bad = {i for i, _ in skipped or ()}
    names = [str(f.relative_to(path)) for i, f in enumerate(files) if i not in bad]
    if bad:
        if not rows:
            raise DataError(
                f"{path}: none of its {len(files)} image files can be read."
            )
        unreadable = [str(files[i].relative_to(path)) for i in sorted(bad)]
        shown = ", ".join(repr(name) for name in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        warnings.warn(
            f"{path}: skipped {len(unreadable)} unreadable image file(s): "
            f"{shown}{more}.",
            UserWarning,
            stacklevel=2,
        )
    return Dataset(np.stack(rows), None, tuple(input_shape), np.array(names))


def check_features_path(path, id_column=None) -> None:
    """Refuse, before any work, a features file name :func:`save_features`
    cannot write: an unknown suffix (:class:`DataError`), a ``.npy`` file
    (the matrix alone) for the names of an `id_column` (``--id-column``), or
    ``.parquet`` without pandas and pyarrow (``ImportError``, saying what to
    install)."""
    path = Path(path)
    if path.suffix.lower() not in FEATURE_SUFFIXES:
        raise DataError(f"--out {path}: use a .npy, .npz, .csv or .parquet file name.")
    if id_column is not None and path.suffix.lower() == ".npy":
        raise DataError(
            f"--out {path}: a .npy file holds the features alone, not the rows' "
            f"names (--id-column {id_column}); use a .npz, .csv or .parquet "
            "file name to keep them."
        )
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


def save_features(path, features: np.ndarray, data: Dataset, columns) -> None:
    """Write embeddings by the file's suffix: ``.npy`` (the matrix), ``.npz``
    (``features``, ``y``, ``names``), ``.csv`` or ``.parquet`` (one row per
    sample: name, label, features named `columns`, the extractor's
    ``get_feature_names_out()``; the name column is the ``--id-column`` the
    names were read from, under its name)."""
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
    columns = [str(name) for name in columns]
    if suffix == ".parquet":
        frame = _parquet_frame()(features, columns=columns)
        frame.insert(0, data.id_column or "name", data.names)
        if data.y is not None:
            frame.insert(1, "label", data.y)
        frame.to_parquet(path)
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        head = (
            [data.id_column or "name"]
            + (["label"] if data.y is not None else [])
            + columns
        )
        writer.writerow(head)
        for i, row in enumerate(features):
            label = [] if data.y is None else [data.y[i]]
            writer.writerow([data.names[i], *label, *(f"{v:.7g}" for v in row)])
