"""The tables the ``skmeta`` command reads: ``.npz`` arrays and ``.csv``
columns, with the ``--groups`` arrays or columns beside them."""

from __future__ import annotations

import contextlib
import csv
import math
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ._cli_cells import check_finite_array, check_finite_rows, text_error
from ._cli_columns import check_names
from ._cli_dataset import DataError, Dataset

__all__ = ["is_number", "load_csv", "load_npz", "refuse_regression_target"]

#: The names of an .npz file's rows: scikit-learn's, a Bunch's, skmeta embed's.
X_NAMES = ("X", "data", "features")
#: Channel counts of images: grey, colour, colour with alpha.
CHANNELS = (1, 3, 4)


def is_channel_last(shape: tuple) -> bool:
    """Whether an ``X`` array of `shape` holds channel-last images
    ``(n, H, W, C)`` (PIL's and matplotlib's layout, which torch's is not)."""
    return len(shape) == 4 and shape[3] in CHANNELS and shape[1] not in CHANNELS


def image_row_shape(shape: tuple) -> tuple | None:
    """The ``(C, H, W)`` of one image of an ``X`` array of `shape`:
    ``(n, H, W)`` grey, ``(n, C, H, W)``, or channel-last ``(n, H, W, C)``
    moved first; None for other shapes (2-D rows among them)."""
    if len(shape) == 3:
        return (1, *shape[1:])
    if is_channel_last(shape):
        return (shape[3], shape[1], shape[2])
    return tuple(shape[1:]) if len(shape) == 4 else None


def load_npz(
    path: Path, labelled: bool | None = True, groups=None, id_column=None
) -> Dataset:
    """The rows of an ``.npz`` file (``X``, ``y``; images flattened, their
    shape kept), and its `groups` arrays. `labelled`: ``y`` is required
    (True), or returned when there is one (False or None). An array
    `id_column` there names the rows; their numbers otherwise."""
    try:  # EOFError: an empty file
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}).") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):  # an .npy file, renamed
        raise DataError(f"{path}: not an .npz file (one array, as .npy holds).")
    with arrays:

        def read(name: str) -> np.ndarray:
            return _array(path, arrays, name)

        X = next((read(k) for k in X_NAMES if k in arrays.files), None)
        y = next((read(k) for k in ("y", "target") if k in arrays.files), None)
        shape = read("input_shape") if "input_shape" in arrays.files else None
        missing = [name for name in groups or () if name not in arrays.files]
        if missing:
            raise DataError(
                f"{path}: no array {missing[0]!r} (--groups); it has "
                f"{sorted(arrays.files)}."
            )
        columns = [np.asarray(read(name)) for name in groups or ()]
        ids = read(id_column) if id_column in arrays.files else None
    if X is None or (y is None and labelled):
        raise DataError(
            f"{path}: an .npz data set holds arrays 'X' (or 'data', or 'features' "
            "as skmeta embed writes them) and 'y' (or "
            f"'target'); it has {sorted(arrays.files)}."
        )
    if is_channel_last(X.shape):
        warnings.warn(  # PIL's and matplotlib's layout, which torch's is not
            f"{path}: X of shape {X.shape} read as channel-last images "
            f"(n, height, width, channels) and moved to (n, channels, height, "
            "width); save channel-first arrays to silence this.",
            UserWarning,
            stacklevel=2,
        )
        X = X.transpose(0, 3, 1, 2)
    if X.ndim > 2:  # images as (n, C, H, W) or (n, H, W)
        shape = image_row_shape(X.shape) or (1, *X.shape[1:])
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2 or (y is not None and len(y) != len(X)):
        raise DataError(
            f"{path}: X has shape {X.shape} and y {np.shape(y)}; expected rows "
            "(n_samples, n_features) and one label per row."
        )
    shape = (X.shape[1],) if shape is None else tuple(int(s) for s in shape)
    check_finite_array(path, X)
    if any(column.shape != (len(X),) for column in columns):
        raise DataError(
            f"{path}: each --groups array needs one value per row of X "
            f"({len(X)},); got shapes {[c.shape for c in columns]}."
        )
    if ids is not None and ids.shape != (len(X),):
        raise DataError(
            f"{path}: the --id-column array {id_column!r} needs one value per "
            f"row of X ({len(X)},); it has shape {ids.shape}."
        )
    names = _numbers(len(X)) if ids is None else ids.astype(str)
    found = _group_array(columns)
    y = None if y is None else np.asarray(y)
    return Dataset(
        X, y, shape, names, found, id_column=None if ids is None else id_column
    )


def _array(path: Path, arrays, name: str) -> np.ndarray:
    """Array `name` of the open ``.npz`` file at `path`, read once its
    header's size is checked against the bytes the archive holds for it: a
    header declaring 10**12 rows made NumPy allocate 14.6 TiB first. A
    damaged member (a bad CRC, a cut file) or object arrays raise a
    DataError naming the file and the array."""
    member = f"{name}.npy" if f"{name}.npy" in arrays.zip.namelist() else name
    try:
        info = arrays.zip.getinfo(member)
        with arrays.zip.open(info) as handle:
            major, _ = np.lib.format.read_magic(handle)
            header = np.lib.format.read_array_header_1_0
            if major > 1:
                header = np.lib.format.read_array_header_2_0
            shape, _, dtype = header(handle)
        declared = math.prod(shape) * dtype.itemsize
        if declared > info.file_size and not dtype.hasobject:  # refused below
            raise DataError(
                f"{path}: its array {name!r} declares shape {shape} of {dtype} "
                f"({declared:,} bytes), more than the {info.file_size:,} bytes "
                "the file holds for it."
            )
        return arrays[name]
    except DataError:
        raise
    # ValueError: a bad header, object arrays, cut data
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: its array {name!r} cannot be read ({exc}).") from None


def _group_array(columns: list) -> np.ndarray | None:
    """The --groups columns as one array: 1-D for one, (n, k) for k."""
    if not columns:
        return None
    if len(columns) == 1:
        return columns[0]
    return np.stack([np.asarray(c).astype(str) for c in columns], axis=1)


def _refuse_other_separators(path: Path, header: list[str]) -> None:
    """A header of one field holding ``;``, a tab or ``|``: a file separated
    by another character (Excel writes ``;`` and decimal commas in many
    locales), which read as commas gives puzzling field counts."""
    if len(header) != 1:
        return
    found = [name for sep, name in _SEPARATORS.items() if sep in header[0]]
    if found:
        raise DataError(
            f"{path}: the header is one field, {header[0][:40]!r}: the file "
            f"looks separated by {found[0]}. The command line reads "
            "comma-separated files with '.' decimals: write it with "
            "df.to_csv(path, index=False), or re-save it from your spreadsheet "
            "as CSV with commas."
        )


_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "'|'"}


def load_csv(
    path: Path,
    label_column: str,
    labelled: bool | None = True,
    groups=None,
    id_column=None,
) -> Dataset:
    """The rows of a ``.csv`` file, read one record at a time into float32
    blocks: memory is the array's and one block's, never the text's. The
    `groups` columns are returned as groups, not features. `labelled`: the
    `label_column` is required (True), ignored if there (False), or read if
    there (None). An `id_column` there names the rows (any text), not a
    feature; the row numbers name them otherwise. A feature cell
    that is missing (empty, ``NA``, ``nan``, ...), infinite, beyond float32's
    range or text is refused, naming its line and column."""
    with contextlib.closing(_csv_records(path)) as records:  # closed on errors
        header = next(records, None)
        if header is None:
            raise DataError(f"{path}: empty file.")
        _refuse_other_separators(path, header)
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
        named = header.index(id_column) if id_column in header else None
        skip = {at, named, *grouped}
        check_names(path, header, [i for i in range(len(header)) if i not in skip])
        columns = [name for i, name in enumerate(header) if i not in skip]
        labels, blocks, block, group_rows, ids = [], [], [], [], []
        first = 2  # the line of the block's first row
        for line, record in enumerate(records, start=2):
            if len(record) != len(header):
                raise DataError(
                    f"{path}, line {line}: {len(record)} fields, the header has "
                    f"{len(header)}."
                )
            labels.append(None if at is None else record[at])
            if named is not None:
                ids.append(record[named])
            if grouped:
                group_rows.append([record[i] for i in grouped])
            try:
                block.append([float(v) for i, v in enumerate(record) if i not in skip])
            except ValueError:
                check_finite_rows(path, block, columns, first)  # earlier lines'
                cells = [(i, v) for i, v in enumerate(record) if i not in skip]
                i, text = next((i, v) for i, v in cells if not is_number(v))
                raise text_error(f"{path}, line {line}", header[i], text) from None
            if len(block) == _CSV_BLOCK:
                blocks.append(check_finite_rows(path, block, columns, first))
                block, first = [], line + 1
        if block:
            blocks.append(check_finite_rows(path, block, columns, first))
    if not blocks:
        raise DataError(f"{path}: no data rows.")
    X = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    y = np.asarray(labels) if at is not None and labelled is not False else None
    if y is not None and all(_is_int(v) for v in labels):
        y = y.astype(np.int64)
    found = _group_array([np.asarray(c) for c in zip(*group_rows, strict=True)])
    if named is None:
        return Dataset(X, y, (X.shape[1],), _numbers(len(X)), found, columns)
    names = np.array(ids, dtype=str)
    return Dataset(X, y, (X.shape[1],), names, found, columns, id_column)


def _numbers(n: int) -> np.ndarray:
    """The names of `n` rows without an identifier column: 0, 1, ..."""
    return np.array([str(i) for i in range(n)])


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


def refuse_regression_target(path: Path, y: np.ndarray) -> None:
    """Refuse labels that are real numbers, not all whole, most of them
    distinct (more than half the rows, at least 10 rows): a regression
    target, which ``train`` and ``evaluate`` (classification only) would read
    as one-row classes. ``"1.0"`` or ``2.0`` are whole: class codes."""
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):  # names of classes
        return
    finite = values[np.isfinite(values)]
    whole = finite.size == values.size and bool(np.all(finite == np.round(finite)))
    distinct = np.unique(values).size
    if not whole and len(y) >= 10 and distinct > len(y) / 2:
        raise DataError(
            f"{path}: the labels are real numbers, {distinct} distinct among "
            f"{len(y)} rows: a regression target. The skmeta command "
            "meta-trains and scores classifiers (one class per label value); "
            "for regression tasks use skmeta.FewShotRegressor in Python."
        )


def is_number(text: str) -> bool:
    """Whether `text` reads as a number (a float)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
