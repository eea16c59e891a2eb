"""What a feature cell of a table may not hold: a missing value (an empty
cell, ``NA``, ``nan``, ...), an infinite number, a number beyond float32's
range (the rows are read as float32), or text.

Each is refused while the table is read, as a :class:`DataError` naming the
file, the line (or row) and the column, the same way for every spelling of a
missing value: scikit-learn's own message came later, naming no file.
"""

from __future__ import annotations

import numpy as np

from ._cli_columns import NOT_FEATURES
from ._cli_dataset import DataError

__all__ = ["check_finite_array", "check_finite_rows", "is_missing", "text_error"]

#: Spellings of a missing value (pandas' ``read_csv`` defaults), compared
#: without case and surrounding spaces; an empty cell is one too.
MISSING = frozenset(
    text.lower()
    for text in (
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "nan", "null",
    )
)  # fmt: skip

IMPUTE = "impute the table first (e.g. sklearn.impute.SimpleImputer)"
#: Rows of an .npz file's X checked at a time by :func:`check_finite_array`.
_CHECK_ROWS = 4096


def is_missing(text: str) -> bool:
    """Whether cell `text` spells a missing value."""
    return text.strip().lower() in MISSING


def text_error(where: str, column: str, text: str) -> DataError:
    """The error of a feature cell that :func:`float` refused: a missing
    value, or text (a column that is not a feature, unless named by a flag).

    Parameters
    ----------
    where : str
        ``"FILE, line N"``.
    column : str
        The column's name.
    text : str
        The cell.
    """
    if is_missing(text):
        return DataError(f"{where}: missing value in column {column!r}; {IMPUTE}.")
    return DataError(
        f"{where}: column {column!r} is not a number ({text!r}); {NOT_FEATURES}."
    )


def check_finite_rows(path, rows, columns: list[str], first_line: int) -> np.ndarray:
    """`rows` as float32, once every value is a finite float32.

    Parameters
    ----------
    path : path-like
        The ``.csv`` file, for the message.
    rows : list of list of float
        One block of parsed records.
    columns : list of str
        The names of the feature columns.
    first_line : int
        The file's line of the first row.

    Returns
    -------
    ndarray of shape (len(rows), len(columns)), float32

    Raises
    ------
    DataError
        Naming the line and column of the first missing, infinite or too
        large value.
    """
    wide = np.asarray(rows, dtype=np.float64)
    with np.errstate(over="ignore"):
        block = wide.astype(np.float32)
    bad = ~np.isfinite(block)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f"{path}, line {first_line + row}"
        raise _value_error(where, repr(columns[col]), wide[row, col])
    return block


def check_finite_array(path, X: np.ndarray, name: str = "X") -> None:
    """Refuse an array whose float values are not all finite, naming `path`,
    the row and the column of the first; `_CHECK_ROWS` rows at a time."""
    if X.dtype.kind != "f":
        return
    top = np.finfo(np.float32).max  # float64 rows are read as float32
    for start in range(0, len(X), _CHECK_ROWS):
        rows = X[start : start + _CHECK_ROWS]
        bad = ~np.isfinite(rows)
        if X.dtype.itemsize > 4:
            bad |= np.abs(rows) > top
        if bad.any():
            row, col = np.argwhere(bad)[0]
            where = f"{path}, row {start + row} of {name}"
            raise _value_error(where, str(col), X[start + row, col])


def _value_error(where: str, column: str, value) -> DataError:
    if np.isnan(value):
        return DataError(f"{where}: missing value in column {column}; {IMPUTE}.")
    if np.isinf(value):
        return DataError(
            f"{where}: infinite value ({value}) in column {column}; replace it "
            "by a number, or mark it missing and impute the table (e.g. "
            "sklearn.impute.SimpleImputer)."
        )
    return DataError(
        f"{where}: value {value:g} in column {column} is beyond float32's range "
        "(3.4e38), which the rows are read as; rescale the column first."
    )
