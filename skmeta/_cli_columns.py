"""The named columns of ``.csv`` tables: recorded in the model file by
``skmeta train``, and matched by name when other commands read a table."""

from __future__ import annotations

from ._cli_dataset import DataError, Dataset

__all__ = ["match_columns", "with_columns"]


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
