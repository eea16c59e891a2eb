"""The ``mmap_path`` cache of load_image_folder, with unreadable files left out.

The rows are cached by :func:`skmeta._npy_cache.cached_rows`, whose manifest
records, under ``"skipped"``, the files that could not be read. Their number is
known only once every file is decoded, and the ``.npy`` file's row count must
be known before it is written: with ``on_error="warn"`` the rows are therefore
decoded into a temporary ``.npy`` file beside the cache with room for every
file, the readable files' rows one after the other; its header is then
rewritten to their number, the unused end cut off, and the file renamed into
place. Each row is written once.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from ._npy_cache import FileInUseError, cached_rows, install_rows, shrink_rows

__all__ = ["mmap_rows"]


class _Stale(Exception):
    """The stored rows do not match: they must be decoded again."""


def _refuse() -> Iterator[np.ndarray]:
    raise _Stale


def _stored_skips(path: Path, manifest: dict, files: list[str]) -> list[int] | None:
    """The indices of the files skipped by a cache built for `manifest`."""
    try:
        with open(path.with_name(path.name + ".json"), encoding="utf-8") as f:
            stored = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("skipped"), list):
        return None
    if {**stored, "skipped": []} != manifest:
        return None
    index = {name: i for i, name in enumerate(files)}
    if not all(name in index for name in stored["skipped"]):
        return None
    return sorted({index[name] for name in stored["skipped"]})


def mmap_rows(path: str | os.PathLike, *args, **kwargs):
    """:func:`_mmap_rows`; a cache that cannot be replaced (Windows: an array
    read from it earlier still alive) raises a ``PermissionError`` naming
    ``mmap_path``."""
    try:
        return _mmap_rows(path, *args, **kwargs)
    except FileInUseError as exc:
        raise PermissionError(f"mmap_path={os.fspath(path)!r}: {exc}") from exc


def _mmap_rows(
    path: str | os.PathLike,
    manifest: dict,
    files: list[str],
    width: int,
    dtype: np.dtype,
    rows: Callable[[list | None], Iterator[np.ndarray]],
    skip: bool,
) -> tuple[np.ndarray, list[tuple[int, str | None]]]:
    """The rows of the readable files as a read-only memory map of `path`.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` cache; its manifest is ``<path>.json``.
    manifest : dict
        JSON-serialisable description of the rows, without ``"skipped"``.
    files : list of str of length n_files
        The names of the files, as the manifest's ``"skipped"`` lists them.
    width : int
        Number of columns of a row.
    dtype : numpy dtype
        Type of the rows.
    rows : callable
        ``rows(skipped)`` decodes the files in order, yielding rows of shape
        (width,). With ``skipped=None`` an unreadable file raises a
        ``ValueError``; with a list, its index and error message are appended
        to the list and it yields no row.
    skip : bool
        Leave unreadable files out (True) or raise (False).

    Returns
    -------
    data : numpy.memmap of shape (n_files - n_skipped, width)
        The rows of the readable files, in order (an empty ndarray, not a
        memory map, when none is readable).
    skipped : list of (int, str or None)
        The index of each unreadable file, and its error if it was decoded
        now (None if the cache was reused).
    """
    path = Path(os.path.expanduser(path))
    manifest = json.loads(json.dumps({**manifest, "skipped": []}))
    n = len(files)
    if not skip:
        return cached_rows(path, manifest, (n, width), dtype, lambda: rows(None)), []
    stored = _stored_skips(path, manifest, files)
    if stored is not None:
        found = {**manifest, "skipped": [files[i] for i in stored]}
        try:
            data = cached_rows(path, found, (n - len(stored), width), dtype, _refuse)
            return data, [(i, None) for i in stored]
        except _Stale:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.partial.npy")
    every = None
    try:
        every = open_memmap(partial, mode="w+", dtype=dtype, shape=(n, width))
        skipped = []
        kept = 0
        for kept, row in enumerate(rows(skipped), start=1):
            every[kept - 1] = row
        every.flush()
        every = None  # closes the map before the file is cut and renamed
        if not kept:
            return np.empty((0, width), dtype), skipped
        shrink_rows(partial, kept)
        manifest["skipped"] = [files[i] for i, _ in skipped]
        data = install_rows(partial, path, manifest)
    finally:
        every = None
        partial.unlink(missing_ok=True)
    return data, skipped
