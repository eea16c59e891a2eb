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
import operator
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

__all__ = ["FileInUseError", "cached_rows", "install_rows", "shrink_rows"]


class FileInUseError(PermissionError):
    """The array file could not be replaced: in use, most likely, where that
    forbids it (Windows: mapped by an array read from it earlier)."""


#: Whether a refused replacement is explained as a file in use (Windows).
_WINDOWS = os.name == "nt"


def _replace(src: Path, dst: Path) -> None:
    """``os.replace``, a refusal explained: on Windows, a file in use; else
    the permissions of the file or its folder."""
    try:
        os.replace(src, dst)
    except PermissionError as exc:
        why = (
            "the file may be in use: Windows replaces no file mapped by an "
            "array read from it earlier (in this process or another). Delete "
            "those arrays first (del data), or give another path."
            if _WINDOWS
            else "check the permissions of the file and its folder (another "
            "user's file in a shared folder such as /tmp cannot be replaced), "
            "or give another path."
        )
        raise FileInUseError(
            f"it cannot be replaced ({exc.strerror or exc}); {why}"
        ) from exc


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
    except (OSError, ValueError, EOFError):  # missing, unreadable, cut or empty
        return None
    if not isinstance(rows, np.ndarray):  # another kind of file: an .npz
        rows.close()
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
        _replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _fill(
    path: Path, shape: tuple[int, int], dtype: np.dtype, rows: Iterable[np.ndarray]
) -> None:
    out = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    try:
        n = 0
        for n, row in enumerate(rows, start=1):
            out[n - 1] = row
        if n != shape[0]:
            raise RuntimeError(f"expected {shape[0]} rows, got {n}")
        out.flush()
    finally:  # the map closed now, not when the traceback goes: on Windows a
        del out  # mapped file cannot be removed, nor replaced


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
    path = Path(os.path.expanduser(path))
    manifest = json.loads(json.dumps(manifest))  # tuples become lists, as stored
    found = _load_matching(path, manifest, shape, np.dtype(dtype))
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    _sidecar(path).unlink(missing_ok=True)
    with _atomic_path(path) as tmp:
        _fill(tmp, shape, dtype, rows())
    _write_manifest(path, manifest)
    return np.load(path, mmap_mode="r")


def _write_manifest(path: Path, manifest: dict) -> None:
    with _atomic_path(_sidecar(path)) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f)


def install_rows(built: Path, path: Path, manifest: dict) -> np.memmap:
    """Make the finished ``.npy`` file `built` the cache at `path`.

    `built` must be in `path`'s folder (it is renamed, not copied). As in
    :func:`cached_rows`, the old manifest goes first and the new one is
    written last.

    Returns
    -------
    data : numpy.memmap
        The rows, opened read-only.
    """
    _sidecar(path).unlink(missing_ok=True)
    _replace(built, path)
    _write_manifest(path, json.loads(json.dumps(manifest)))
    return np.load(path, mmap_mode="r")


def shrink_rows(path: Path, n_rows: int) -> None:
    """Keep the first `n_rows` rows of the ``.npy`` file at `path`, in place.

    The header is rewritten with the new shape, padded to its old length so
    that the rows stay where they are, and the file is truncated after row
    `n_rows`: no row is copied.

    Raises
    ------
    ValueError
        If `n_rows` exceeds the rows the file holds, or the file is not a
        C-ordered array of one or more dimensions in a version 1.0 or 2.0
        ``.npy`` file (what :func:`numpy.lib.format.open_memmap` writes).
    """
    with open(path, "r+b") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        n_rows = operator.index(n_rows)  # an int (a NumPy one's repr would
        # break the header; a float is refused)
        if fortran or not shape or version > (2, 0):  # never the cache's own
            raise ValueError(
                "shrink_rows takes a C-ordered array of one or more dimensions "
                f"in a version 1.0 or 2.0 file; got {shape}, "
                f"fortran_order={fortran}, version {version}"
            )
        if not 0 <= n_rows <= shape[0]:
            raise ValueError(f"cannot keep {n_rows} of {shape[0]} rows")
        offset = f.tell()
        header = {
            "descr": np.lib.format.dtype_to_descr(dtype),
            "fortran_order": fortran,
            "shape": (n_rows, *shape[1:]),
        }
        start = 6 + 2 + (2 if version == (1, 0) else 4)  # magic, version, length
        text = repr(header).ljust(offset - start - 1) + "\n"
        if len(text) != offset - start:  # cannot happen: the shape only shrinks
            raise ValueError("the new header does not fit the old one's room")
        f.seek(start)
        f.write(text.encode("latin1"))
        row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
        f.truncate(offset + n_rows * row_bytes)
