"""The named columns of ``.csv`` tables: every feature column named (pandas'
index refused), recorded in the model file by ``skmeta train``, and matched
by name when other commands read a table."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ._cli_dataset import DataError, Dataset

__all__ = [
    "check_id_flag",
    "check_ids",
    "check_names",
    "label_column",
    "match_columns",
    "warn_id_like",
    "with_columns",
]

#: pandas' name of a column without one, read back from a CSV file.
_UNNAMED = re.compile(r"Unnamed: \d+")


def check_names(path, header: list[str], features: list[int]) -> None:
    """Refuse a feature column without a name: pandas' index, which
    ``df.to_csv(path)`` writes under an empty name (``Unnamed: 0`` once read
    and written again), would be a feature, the row number.

    Parameters
    ----------
    path : path-like
        The ``.csv`` file, for the message.
    header : list of str
        Its first record.
    features : list of int
        The positions of the feature columns in `header`.

    Raises
    ------
    DataError
        Naming the file and the column, suggesting ``index=False``.
    """
    for i in features:
        name = header[i].strip()
        if not name or _UNNAMED.fullmatch(name):
            shown = (
                "has no name, as pandas writes its index (df.to_csv(path))"
                if not name
                else f"is {name!r}, pandas' name for a column without one (its "
                "index, read and written again)"
            )
            raise DataError(
                f"{path}: column {i + 1} of the header {shown}; it would be a "
                "feature (the row number). Write the table with "
                "df.to_csv(..., index=False), name the column, or give its "
                f"name to --id-column {header[i]!r} (the rows' names, not a feature)."
            )


def with_columns(model, data: Dataset):
    """`model` with `data`'s column names as its feature names (provenance),
    as a DataFrame's would be recorded, and the ``--id-column`` its rows were
    named by; `model` itself when there are neither."""
    if not data.columns and data.id_column is None:
        return model
    return model.with_feature_names(data.columns or None, id_column=data.id_column)


def match_columns(model, data: Dataset, source) -> Dataset:
    """`data` with its columns in the order of the names `model` recorded at
    meta-training, its rows as wide as the model takes them.

    Tables without names, or models without them, are taken as they are;
    a table with names is matched by name before its width is checked, so
    that an extra column is named (it was "rows of 201 values").

    Raises
    ------
    DataError
        Naming the columns missing or unknown, or the rows' width and the
        model's.
    """
    recorded = list((model.config.get("provenance") or {}).get("feature_names") or ())
    if recorded and data.columns and data.columns != recorded:
        missing = [name for name in recorded if name not in data.columns]
        unknown = [name for name in data.columns if name not in recorded]
        if missing or unknown:
            hint = "" if missing else f"; {NOT_FEATURES}"
            raise DataError(
                f"{source}: its columns differ from those the model meta-trained "
                f"on; missing: {missing[:5]}, unknown: {unknown[:5]}{hint}."
            )
        order = [data.columns.index(name) for name in recorded]
        data.X, data.columns = data.X[:, order], recorded
    width = int(np.prod(model.input_shape))
    if data.X.shape[1] != width:
        raise DataError(
            f"{source}: rows of {data.X.shape[1]} values; the model takes rows "
            f"of {width} (shape {tuple(model.input_shape)})."
        )
    return data


#: What to do with a column that is not a feature.
NOT_FEATURES = (
    "name a column that is not a feature with the flag of its role: "
    "--label-column, --id-column or --groups (evaluate)"
)


def label_column(given, data, query=None) -> str:
    """``--label-column``: ``"label"`` when left out; refused when given and
    no ``.csv`` file is read, where it did nothing.

    Parameters
    ----------
    given : str or None
        The flag's value.
    data : path-like
        DATA, or ``predict``'s ``--support``.
    query : path-like, optional
        ``predict``'s ``--query``, whose label column (if there) is no
        feature: the flag applies where either is a ``.csv`` file.

    Returns
    -------
    str

    Raises
    ------
    DataError
        Naming the flag and how the folder or ``.npz`` file is labelled; a
        path that does not exist is left to its loader.
    """
    if given is None:
        return "label"
    named = [("", data)] if query is None else [("--support ", data)]
    if query is not None:
        named.append(("--query ", query))
    found = [_labelled_otherwise(label, Path(path)) for label, path in named]
    if all(found):
        raise DataError(
            f"--label-column {given}: names a column of a .csv file; "
            f"{' and '.join(found)}; leave it out."
        )
    return given


def _labelled_otherwise(label: str, path: Path) -> str | None:
    """How `path` (``label``: its flag) is labelled if not by a column."""
    if path.is_dir():
        return f"{label}{path} is a folder of images, labelled by its subfolders"
    if path.is_file() and path.suffix.lower() == ".npz":
        return f"{label}{path} is an .npz file, labelled by its array y (or target)"
    return None


def check_id_flag(id_column, label_column, source, groups=None) -> None:
    """Refuse, before `source` is read, an ``--id-column`` that cannot name
    its rows: the label column, a ``--groups`` column, or any name for a
    folder of images.

    Parameters
    ----------
    id_column : str or None
        ``--id-column``; None checks nothing.
    label_column : str
        The column of labels, which cannot be the rows' names too.
    source : path-like
        The file or folder to read.
    groups : list of str, optional
        ``evaluate``'s ``--groups``: columns each shared by many rows.

    Raises
    ------
    DataError
    """
    if id_column is None:
        return
    if id_column == label_column:
        raise DataError(
            f"--id-column {id_column}: it is the label column (--label-column); "
            "name the column of the rows' names."
        )
    if id_column in (groups or ()):
        raise DataError(
            f"--id-column {id_column}: it is a column of groups (--groups), not "
            "a feature already; name the column of the rows' names, or leave "
            "--id-column out."
        )
    if Path(source).is_dir():
        raise DataError(
            f"--id-column {id_column}: a column of a .csv file or an array of "
            f"an .npz file; {source} is a folder of images, named by their files."
        )


def check_ids(data: Dataset, id_column, source) -> None:
    """Refuse a table without the ``--id-column`` `id_column` (None: no
    check), naming `source` and, for a ``.csv`` file, its columns."""
    if id_column is None or data.id_column == id_column:
        return
    kind, shown = "array", ""
    if data.columns is not None:
        more = " ..." if len(data.columns) > 10 else ""
        kind, shown = "column", f"; its feature columns are {data.columns[:10]}{more}"
    raise DataError(f"{source}: no {kind} {id_column!r} (--id-column){shown}.")


#: Column names that say "row id": id, ID, customer_id, row-index, idx, ...
_ID_NAME = re.compile(r"(^|[_\W])(id|idx|index)$", re.IGNORECASE)


def warn_id_like(data: Dataset, source) -> None:
    """Warn of a ``.csv`` feature column that looks like the rows' ids: its
    values distinct whole numbers, and its name an id's (``id``,
    ``customer_id``, ``index``, ...) or its values consecutive (a row
    number). ``skmeta train`` would meta-train on it as a feature, a number
    that says nothing of the class; ``--id-column`` keeps it out."""
    if data.columns is None or len(data.X) < 10:
        return
    for j, name in enumerate(data.columns):
        values = np.sort(data.X[:, j].astype(np.float64))
        whole = np.all(values == np.round(values))
        if not whole or np.any(np.diff(values) == 0):
            continue
        if _ID_NAME.search(name) or np.all(np.diff(values) == 1):
            warnings.warn(
                f"{source}: column {name!r} holds a distinct whole number in "
                "every row, as the rows' ids do; it is meta-trained on as a "
                f"feature. Give --id-column {name} to keep it out.",
                UserWarning,
                stacklevel=2,
            )
