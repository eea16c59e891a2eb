"""The user's rows as meta-training reads them: by index, one batch at a time.

Meta-training never copies the data set. :class:`Rows` keeps the user's array
as it is (``uint8`` or float, in memory or a ``numpy.memmap``) and turns only the
rows of the current batch into float32 tensors on the training device. Class
augmentation by rotation adds *virtual* rows (row ``r`` rotated by ``k * 90``
degrees is row ``k * n + r``), so four rotations cost an index, not four copies;
other augmentations also run per batch (:mod:`.augment`).
"""

from __future__ import annotations

import mmap
import os
import weakref

import numpy as np
import torch

__all__ = ["CLASS_AUGMENTATIONS", "Rows", "input_statistics"]

# ``class_augmentation`` -> the number of virtual copies of each class: the
# row itself and its quarter turns ("rot90"), and their mirror images too
# ("dihedral", the 8 symmetries of a square).
CLASS_AUGMENTATIONS = {None: 1, "rot90": 4, "dihedral": 8}

# Rows per chunk when a statistic is computed over the whole array: a few MB of
# float64 at a time, whatever the data's size.
_STATISTICS_CHUNK_VALUES = 1 << 20
# Values past which the statistics come from a random sample of rows.
_SAMPLE_VALUES = 1 << 26


class Rows:
    """Read access to the rows of `X`, as float32 tensors on `device`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Any real or integer dtype, C-contiguous rows; a ``numpy.memmap`` is read
        row by row and never loaded whole.
    input_shape : tuple of int
        Shape of one row, ``(n_features,)`` or ``(C, H, W)``.
    device : torch.device
    rotations : int, default=1
        1; 4 for class augmentation by rotation: virtual row ``k * n + r`` is
        row ``r`` rotated by ``k * 90`` degrees; or 8 for the dihedral group:
        ``k`` in 4..7 mirrors the row left to right, then rotates it by
        ``(k - 4) * 90`` degrees (square images only).
    augment : callable, optional
        ``augment(batch) -> batch`` on tensors of shape ``(n, *input_shape)`` in
        the data's dtype, applied to every gathered batch (see :mod:`.augment`).
    """

    def __init__(
        self,
        X: np.ndarray,
        input_shape: tuple[int, ...],
        device: torch.device,
        rotations: int = 1,
        augment=None,
    ) -> None:
        if rotations not in (1, 4, 8):
            raise ValueError(f"rotations must be 1, 4 or 8, got {rotations}.")
        if rotations > 1 and (
            len(input_shape) != 3 or input_shape[1] != input_shape[2]
        ):
            raise ValueError(
                "class_augmentation 'rot90' and 'dihedral' need square images: "
                f"input_shape=(C, H, H); got input_shape={tuple(input_shape)}."
            )
        self.X = X
        self.input_shape = tuple(int(s) for s in input_shape)
        self.device = torch.device(device)
        self.rotations = rotations
        self.augment = augment
        self._file = _FileRows.of(X)

    @property
    def n_rows(self) -> int:
        """Number of rows, virtual rotated rows included."""
        return self.X.shape[0] * self.rotations

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Real rows `rows` (increasing) as they are stored, in a new array.

        A memory-mapped ``.npy`` is read with ``preadv`` from its file rather
        than through the mapping: pages touched through a mapping count in
        the process's RSS (whole large folios of them), pages read from the
        file stay in the kernel's cache only. Where ``os.preadv`` is missing
        (Windows) rows are read through the mapping.

        Parameters
        ----------
        rows : ndarray of int, shape (n,), increasing

        Returns
        -------
        ndarray of shape (n, n_features), the data's dtype
        """
        if self._file is None:
            return np.asarray(self.X[rows])
        return self._file.read(rows)

    def gather(self, index, augment: bool = True) -> torch.Tensor:
        """Rows `index` as float32 on the device, rotated and augmented.

        Parameters
        ----------
        index : ndarray or Tensor of int, any shape ``S``
            Virtual row numbers in ``0..n_rows-1``.
        augment : bool, default=True
            Apply the augmentation (never for validation).

        Returns
        -------
        Tensor of shape ``S + (n_features,)``, float32
        """
        index = np.asarray(index.cpu() if torch.is_tensor(index) else index)
        shape = index.shape
        flat = index.reshape(-1)
        n = self.X.shape[0]
        # The real rows, read in increasing order (sequential on a memory map)
        # and put back in the order asked for.
        real = flat % n
        order = np.argsort(real, kind="stable")
        values = np.empty((flat.size, self.X.shape[1]), dtype=self.X.dtype)
        values[order] = self.read(real[order])
        batch = torch.from_numpy(values).to(self.device)
        if self.rotations > 1 or (augment and self.augment is not None):
            images = batch.view(-1, *self.input_shape)
            if self.rotations > 1:
                images = _rotate(images, torch.from_numpy(flat // n).to(self.device))
            if augment and self.augment is not None:
                images = self.augment(images)
            batch = images.reshape(flat.size, -1)
        return batch.to(torch.float32).view(*shape, -1)


def _rotate(images: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Each image rotated by its number of quarter turns, (n, C, H, H).

    Turns 0-3 rotate; 4-7 mirror left to right, then rotate by ``turns - 4``.
    """
    out = images.clone()
    for k in range(1, 8):
        which = torch.nonzero(turns == k).flatten()
        if which.numel():
            chosen = images[which]
            if k >= 4:
                chosen = chosen.flip(3)
            out[which] = chosen.rot90(k % 4, dims=(2, 3))
    return out


def input_statistics(
    rows: Rows,
    per_feature: bool,
    subset: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (unbiased) of the rows' values, in chunks.

    Two passes in float64 (the mean, then squared deviations from it), a few
    MB of rows at a time, so a memory-mapped array is never loaded whole. Past
    ``2**26`` values (64 MB of uint8), a random sample of rows of that size
    stands for the whole (drawn from `rng`): a few thousand images estimate a
    mean and a deviation to far better than the precision they need, and
    reading them all would cost a pass over the whole data set.

    Parameters
    ----------
    rows : Rows
        The data (its real rows; rotation does not change these statistics).
    per_feature : bool
        One statistic per feature (shape ``(n_features,)``), or one over all
        values (shape ``(1,)``).
    subset : ndarray of int, optional
        Only these real rows (default: all).
    rng : numpy.random.Generator, optional
        Draws the sample of a large data set; required only then.

    Returns
    -------
    mean, std : Tensor, float32
    """
    n_all, width = rows.X.shape
    pool = np.arange(n_all) if subset is None else np.asarray(subset)
    limit = max(2, _SAMPLE_VALUES // max(width, 1))
    if pool.size > limit:
        if rng is None:
            raise ValueError("input_statistics needs rng to sample a large X.")
        pool = rng.choice(pool, size=limit, replace=False)
    pool = np.sort(pool)
    step = max(1, _STATISTICS_CHUNK_VALUES // max(width, 1))
    axis = 0 if per_feature else None

    def total(fn):
        acc = 0.0
        for start in range(0, pool.size, step):
            chunk = rows.read(pool[start : start + step])
            acc = acc + fn(chunk.astype(np.float64))
        return acc

    count = pool.size if per_feature else pool.size * width
    mean = total(lambda c: c.sum(axis)) / max(count, 1)
    var = total(lambda c: ((c - mean) ** 2).sum(axis)) / max(count - 1, 1)
    shape = (width,) if per_feature else (1,)
    return (
        torch.tensor(np.broadcast_to(mean, shape), dtype=torch.float32),
        torch.tensor(np.broadcast_to(np.sqrt(var), shape), dtype=torch.float32),
    )


class _FileRows:
    """The rows of a C-contiguous view of a file-backed ``numpy.memmap``, read
    with ``os.preadv`` (one call per run of consecutive rows)."""

    def __init__(self, path: str, offset: int, row_bytes: int, dtype, width: int):
        self.file = open(path, "rb", buffering=0)  # noqa: SIM115 - lives with Rows
        weakref.finalize(self, self.file.close)
        self.offset, self.row_bytes = offset, row_bytes
        self.dtype, self.width = dtype, width

    @classmethod
    def of(cls, X: np.ndarray) -> _FileRows | None:
        """A reader for `X` if it views a file mapped by ``numpy.memmap``,
        else None (then rows are read by indexing)."""
        if not hasattr(os, "preadv"):  # Windows: rows read through the map
            return None
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.flags.c_contiguous):
            return None
        mapped = X
        # np.memmap's own array is the one whose base is the mmap object; its
        # first byte is at file offset `.offset` (views copy .offset unchanged).
        while mapped is not None and not isinstance(mapped.base, mmap.mmap):
            mapped = mapped.base if isinstance(mapped.base, np.ndarray) else None
        if mapped is None or getattr(mapped, "filename", None) is None:
            return None
        start = mapped.offset + (X.ctypes.data - mapped.ctypes.data)
        return cls(mapped.filename, start, X.strides[0], X.dtype, X.shape[1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((rows.size, self.width), dtype=self.dtype)
        if not rows.size:
            return out
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for first, last in zip(np.r_[0, breaks], np.r_[breaks, rows.size], strict=True):
            target = memoryview(out[first:last]).cast("B")
            position = self.offset + int(rows[first]) * self.row_bytes
            while target.nbytes:
                got = os.preadv(self.file.fileno(), [target], position)
                if got <= 0:
                    raise OSError(
                        f"{self.file.name}: file shorter than its header says"
                    )
                target, position = target[got:], position + got
        return out
