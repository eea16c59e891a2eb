"""What the ``skmeta`` command reads a data set into, and its error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DataError", "Dataset"]


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
    columns : list of str or None
        A ``.csv`` file's feature columns, the names of X's columns.
    id_column : str or None
        The column (``.csv``) or array (``.npz``) `names` were read from
        (``--id-column``); None for file names and row numbers.
    """

    X: np.ndarray
    y: np.ndarray | None
    input_shape: tuple[int, ...]
    names: np.ndarray
    groups: np.ndarray | None = None
    columns: list[str] | None = None
    id_column: str | None = None
