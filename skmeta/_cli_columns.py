"""The named columns of ``.csv`` tables: every feature column named (pandas'
index refused), recorded in the model file by ``skmeta train``, and matched
by name when other commands read a table."""

from __future__ import annotations

import re

from ._cli_dataset import DataError, Dataset

__all__ = ["check_names", "match_columns", "with_columns"]

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
                "df.to_csv(..., index=False), or name the column."
            )


def with_columns(model, data: Dataset):
    """`model` with `data`'s column names as its feature names (provenance),
    as a DataFrame's would be recorded; `model` itself when they are none."""
    return model.with_feature_names(data.columns) if data.columns else model


def match_columns(model, data: Dataset, source) -> Dataset:
    """`data` with its columns in the order of the names `model` recorded at
    meta-training; a :class:`DataError` names the columns missing or unknown.
    Tables without names, or models without them, are taken as they are."""
    recorded = list((model.config.get("provenance") or {}).get("feature_names") or ())
    if not recorded or not data.columns or data.columns == recorded:
        return data
    missing = [name for name in recorded if name not in data.columns]
    unknown = [name for name in data.columns if name not in recorded]
    if missing or unknown:
        raise DataError(
            f"{source}: its columns differ from those the model meta-trained on; "
            f"missing: {missing[:5]}, unknown: {unknown[:5]}."
        )
    order = [data.columns.index(name) for name in recorded]
    data.X, data.columns = data.X[:, order], recorded
    return data
