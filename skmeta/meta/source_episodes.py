"""Episodes whose support and queries come from two different sources.

Lake et al. (2015) scored one-shot learning on runs of 20 characters of one
alphabet, the support drawn by one person and the queries by another: a new
hand, not a new copy of the same drawing. Here a *source* is any such origin
of a row (a drawer, a camera, a catalogue against customers' photos), and a
*group* a set of classes that episodes stay within (an alphabet). NumPy and
SciPy only; no torch, no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = ["SourcePlan", "iter_source_episodes"]


@dataclass(frozen=True)
class SourcePlan:
    """Where each (class, source) cell's rows are, and which episodes exist.

    Built by :meth:`build`; :meth:`draw` then draws one episode.

    Attributes
    ----------
    cells : ndarray of shape (n_cells,), int64
        Sorted keys ``class * n_sources + source`` of the non-empty cells.
    starts, counts : ndarray of shape (n_cells,), int64
        Where each cell's rows begin in `order`, and how many there are.
    order : ndarray of shape (n_samples,), int64
        Row indices sorted by cell.
    n_sources : int
        Number of source codes.
    group_classes : list of ndarray of int64
        The classes of each usable group.
    group_pairs : list of ndarray of shape (n_pairs, 2), int64
        The ordered (support source, query source) pairs of each usable
        group that share at least `n_way` classes with enough rows.
    n_way, k_shot, n_query : int
        Episode size.
    """

    cells: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    order: np.ndarray
    n_sources: int
    group_classes: list
    group_pairs: list
    n_way: int
    k_shot: int
    n_query: int

    @classmethod
    def build(cls, codes, groups, sources, n_way, k_shot, n_query) -> SourcePlan:
        """Index the rows, and find the (group, support source, query source)
        triples with `n_way` classes of `k_shot` rows from the first source
        and `n_query` rows from the second.

        Parameters
        ----------
        codes : ndarray of shape (n_samples,), int
            Class code of each row, ``0..n_classes-1``.
        groups : ndarray of shape (n_classes,), int
            Group code of each class.
        sources : ndarray of shape (n_samples,), int
            Source code of each row, ``0..n_sources-1``.
        n_way, k_shot, n_query : int
            Episode size.

        Returns
        -------
        SourcePlan

        Raises
        ------
        ValueError
            If no group has two sources that share `n_way` such classes.
        """
        codes = np.asarray(codes, dtype=np.int64)
        sources = np.asarray(sources, dtype=np.int64)
        n_classes, n_sources = len(groups), int(sources.max(initial=-1)) + 1
        keys = codes * n_sources + sources
        order = np.argsort(keys, kind="stable")
        cells, starts, counts = np.unique(
            keys[order], return_index=True, return_counts=True
        )
        cell_class, cell_source = np.divmod(cells, n_sources)

        def enough(need):  # (n_classes, n_sources): the cells of `need` rows
            kept = counts >= need
            ones = np.ones(int(kept.sum()), dtype=np.int64)
            shape = (n_classes, n_sources)
            where = (cell_class[kept], cell_source[kept])
            return sparse.csr_matrix((ones, where), shape=shape)

        support_cells, query_cells = enough(k_shot), enough(n_query)
        group_classes, group_pairs, largest = [], [], 0
        for group in np.unique(groups):
            members = np.flatnonzero(groups == group)
            shared = (support_cells[members].T @ query_cells[members]).tocoo()
            other = shared.row != shared.col
            largest = max(largest, int(shared.data[other].max(initial=0)))
            usable = other & (shared.data >= n_way)
            if usable.any():
                group_classes.append(members)
                group_pairs.append(np.c_[shared.row[usable], shared.col[usable]])
        if not group_classes:
            raise ValueError(
                f"No group has {n_way} classes with {k_shot} rows (k_shot) from "
                f"one source and {n_query} (n_query) from another, to draw a "
                f"{n_way}-way episode whose support and queries come from "
                f"different sources; the most any two sources share is "
                f"{largest}. Lower n_way, k_shot or n_query."
            )
        return cls(
            cells, starts, counts, order, n_sources, group_classes, group_pairs,
            n_way, k_shot, n_query,
        )  # fmt: skip

    def _rows(self, classes, source, size, rng) -> np.ndarray:
        """`size` distinct random rows of each class of `classes` from
        `source`, class-major: ndarray of shape (len(classes) * size,)."""
        cell = np.searchsorted(self.cells, classes * self.n_sources + source)
        picked = [
            self.order[start + rng.permutation(count)[:size]]
            for start, count in zip(self.starts[cell], self.counts[cell], strict=True)
        ]
        return np.concatenate(picked)

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One episode: a usable group uniformly, one of its source pairs
        uniformly, `n_way` of the classes they share, then the rows.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of all randomness.

        Returns
        -------
        support : ndarray of shape (n_way * k_shot,), int64
            Rows from the first source, class-major.
        query : ndarray of shape (n_way * n_query,), int64
            Rows of the same classes from the second source, class-major.
        """
        which = rng.integers(len(self.group_classes))
        members, pairs = self.group_classes[which], self.group_pairs[which]
        first, second = pairs[rng.integers(len(pairs))]
        shared = members[
            (self._count(members, first) >= self.k_shot)
            & (self._count(members, second) >= self.n_query)
        ]
        classes = rng.choice(shared, self.n_way, replace=False)
        support = self._rows(classes, first, self.k_shot, rng)
        query = self._rows(classes, second, self.n_query, rng)
        return support, query

    def _count(self, classes, source) -> np.ndarray:
        """Rows of each class of `classes` from `source` (0 where none)."""
        keys = classes * self.n_sources + source
        cell = np.minimum(np.searchsorted(self.cells, keys), len(self.cells) - 1)
        return np.where(self.cells[cell] == keys, self.counts[cell], 0)


def iter_source_episodes(
    codes, groups, sources, n_way, k_shot, n_query, n_episodes, rng
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`n_episodes` episodes within a group, support and queries from two
    sources, drawn one at a time (memory does not grow with `n_episodes`).

    Parameters
    ----------
    codes, groups, sources, n_way, k_shot, n_query
        As for :meth:`SourcePlan.build`: class codes and source codes of the
        rows, group codes of the classes, the episode size.
    n_episodes : int
        Number of episodes.
    rng : numpy.random.Generator
        Source of all randomness.

    Yields
    ------
    support : ndarray of shape (n_way * k_shot,), int64
    query : ndarray of shape (n_way * n_query,), int64

    Raises
    ------
    ValueError
        At the call, if no episode can be drawn (see :meth:`SourcePlan.build`).

    Examples
    --------
    >>> import numpy as np
    >>> codes = np.repeat(np.arange(4), 3)          # 4 classes, 3 rows each
    >>> sources = np.tile(np.arange(3), 4)          # drawn by 3 people
    >>> groups = np.array([0, 0, 1, 1])             # 2 alphabets
    >>> episodes = iter_source_episodes(codes, groups, sources, 2, 1, 1, 5,
    ...                                 np.random.default_rng(0))
    >>> support, query = next(episodes)
    >>> bool(sources[support][0] == sources[support][1] != sources[query][0])
    True
    """
    plan = SourcePlan.build(codes, groups, sources, n_way, k_shot, n_query)
    return (plan.draw(rng) for _ in range(n_episodes))
