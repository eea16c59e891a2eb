"""A ``.npy`` file of rows filled one at a time, reused while its manifest matches.

The manifest (a JSON-serialisable dict describing how the rows were made) is
kept beside the array, in ``<path>.json``. Both files are written atomically:
to a hidden temporary file in the same folder, then renamed with
``os.replace``. The manifest is removed before the array is replaced and
written after it, so an interrupted build never leaves a pair that matches.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

__all__ = ["cached_rows"]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _load_matching(
    path: Path, manifest: dict, shape: tuple[int, int], dtype: np.dtype
) -> np.memmap | None:
    """The array at `path` as a read-only memory map, if it and its manifest match."""
    try:
        with open(_sidecar(path), encoding="utf-8") as f:
            if json.load(f) != manifest:
                return None
        rows = np.load(path, mmap_mode="r")
    except (OSError, ValueError):  # missing, unreadable or truncated
        return None
    if rows.shape != shape or rows.dtype != dtype:
        return None
    return rows


@contextlib.contextmanager
def _atomic_path(path: Path):
    """A new hidden file beside `path`, renamed to `path` if the block succeeds.

    Created with the permissions of any new file (``0o666`` less the umask),
    unlike ``tempfile.mkstemp``'s ``0o600``.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fill(
    path: Path, shape: tuple[int, int], dtype: np.dtype, rows: Iterable[np.ndarray]
) -> None:
    out = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    n = 0
    for n, row in enumerate(rows, start=1):
        out[n - 1] = row
    if n != shape[0]:
        raise RuntimeError(f"expected {shape[0]} rows, got {n}")
    out.flush()


def cached_rows(
    path: str | os.PathLike,
    manifest: dict,
    shape: tuple[int, int],
    dtype: np.dtype,
    rows: Callable[[], Iterable[np.ndarray]],
) -> np.memmap:
    """Return rows stored in a ``.npy`` file, built only if the file does not match.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file; its manifest is ``<path>.json``. Missing parent
        folders are created.
    manifest : dict
        JSON-serialisable description of the rows (sources, settings); the file
        is reused only if the stored manifest is equal to it.
    shape : tuple of int (n_rows, n_columns)
        Shape of the array.
    dtype : numpy dtype
        Type of the array.
    rows : callable
        Called, only to build the file, with no argument; returns an iterable of
        `shape[0]` rows, each of shape (n_columns,), written one at a time so
        that the whole array never needs to fit in memory.

    Returns
    -------
    data : numpy.memmap of shape (n_rows, n_columns)
        The stored array, opened read-only.
    """
    path = Path(path).expanduser()
    manifest = json.loads(json.dumps(manifest))  # tuples become lists, as stored
    found = _load_matching(path, manifest, shape, np.dtype(dtype))
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    _sidecar(path).unlink(missing_ok=True)
    with _atomic_path(path) as tmp:
        _fill(tmp, shape, dtype, rows())
    with _atomic_path(_sidecar(path)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f)
    return np.load(path, mmap_mode="r")
