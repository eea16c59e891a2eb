"""N-way K-shot Q-query episode sampling, vectorised and seeded.

One sampler serves meta-training, validation and
:class:`~skmeta.model_selection.EpisodicSplit`.
Everything here is NumPy; no torch, no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ClassIndex",
    "Episodes",
    "iter_episode_blocks",
    "sample_episodes",
    "sample_group_episodes",
]


@dataclass(frozen=True)
class ClassIndex:
    """Rows of each class, packed for vectorised sampling.

    Parameters
    ----------
    rows : ndarray of shape (n_classes, max_count), int64
        Row indices of each class, padded with -1 past ``counts[c]``.
    counts : ndarray of shape (n_classes,), int64
        Number of rows of each class.
    """

    rows: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_labels(cls, y: np.ndarray) -> ClassIndex:
        """Index the rows of `y` (integer codes ``0..n_classes-1``) by class.

        Parameters
        ----------
        y : ndarray of shape (n_samples,)
            Integer class codes, not necessarily contiguous.

        Examples
        --------
        >>> import numpy as np
        >>> index = ClassIndex.from_labels(np.array([0, 1, 0, 2, 1, 0]))
        >>> index.rows.tolist(), index.counts.tolist()
        ([[0, 2, 5], [1, 4, -1], [3, -1, -1]], [3, 2, 1])
        """
        y = np.asarray(y)
        order = np.argsort(y, kind="stable")
        _, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
        width = int(counts.max()) if counts.size else 0
        offsets = np.arange(width)
        valid = offsets[None, :] < counts[:, None]
        rows = np.full((counts.size, width), -1, dtype=np.int64)
        rows[valid] = order[(starts[:, None] + offsets[None, :])[valid]]
        return cls(rows=rows, counts=counts.astype(np.int64))

    @property
    def n_classes(self) -> int:
        return int(self.counts.size)


@dataclass(frozen=True)
class Episodes:
    """A batch of episodes as row indices.

    Attributes
    ----------
    support : ndarray of shape (n_episodes, n_way * k_shot), int64
        Support rows, class-major: the first `k_shot` belong to way 0, and so on.
    query : ndarray of shape (n_episodes, n_way * n_query), int64
        Query rows, class-major like `support`.
    classes : ndarray of shape (n_episodes, n_way), int64
        Position in the :class:`ClassIndex` of the class behind each way.
    """

    support: np.ndarray
    query: np.ndarray
    classes: np.ndarray


def sample_episodes(
    index: ClassIndex,
    n_way: int,
    k_shot: int,
    n_query: int,
    n_episodes: int,
    rng: np.random.Generator,
) -> Episodes:
    """Draw `n_episodes` N-way K-shot Q-query episodes at once.

    Each episode picks `n_way` distinct classes among those with at least
    ``k_shot + n_query`` rows, then ``k_shot + n_query`` distinct rows of each.
    No Python loop runs per episode or per row.

    Parameters
    ----------
    index : ClassIndex
        Rows of each class.
    n_way, k_shot, n_query : int
        Episode size; `n_query` may be 0.
    n_episodes : int
        Number of episodes to draw.
    rng : numpy.random.Generator
        Source of all randomness.

    Returns
    -------
    Episodes

    Raises
    ------
    ValueError
        If fewer than `n_way` classes have ``k_shot + n_query`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> index = ClassIndex.from_labels(np.repeat(np.arange(10), 6))
    >>> ep = sample_episodes(index, 5, 1, 2, n_episodes=3,
    ...                      rng=np.random.default_rng(0))
    >>> ep.support.shape, ep.query.shape
    ((3, 5), (3, 10))
    """
    eligible = _eligible(index, n_way, k_shot, n_query)
    return _draw(index, eligible, n_way, k_shot, n_query, n_episodes, rng, rng)


def _eligible(index: ClassIndex, n_way: int, k_shot: int, n_query: int):
    """Positions of the classes with ``k_shot + n_query`` rows; ValueError if
    fewer than `n_way`."""
    per_class = k_shot + n_query
    eligible = np.flatnonzero(index.counts >= per_class)
    if eligible.size < n_way:
        raise ValueError(
            f"Cannot draw {n_way}-way episodes with {k_shot} shots and {n_query} "
            f"queries: only {eligible.size} classes have at least {per_class} "
            f"samples. Lower n_way, k_shot or n_query, or add samples."
        )
    return eligible


def _draw(index, eligible, n_way, k_shot, n_query, size, class_rng, row_rng):
    """`size` episodes: the ways by ranking keys of `class_rng`, then the rows
    of each way by ranking keys of `row_rng` (the same generator for
    :func:`sample_episodes`: all class keys, then all row keys)."""
    keys = class_rng.random((size, eligible.size))
    classes = eligible[_smallest(keys, n_way)]  # (E, N)
    return _draw_rows(index, classes, k_shot, n_query, row_rng)


def _draw_rows(
    index: ClassIndex,
    classes: np.ndarray,
    k_shot: int,
    n_query: int,
    rng: np.random.Generator,
) -> Episodes:
    """``k_shot + n_query`` distinct random rows of each class of `classes`,
    an ndarray of shape (n_episodes, n_way) of positions in `index`."""
    n_episodes, n_way = classes.shape
    per_class = k_shot + n_query
    rows = index.rows[classes]  # (E, N, max_count), padded with -1
    keys = rng.random(rows.shape)
    keys[rows < 0] = np.inf  # padding is never picked
    chosen = np.take_along_axis(rows, _smallest(keys, per_class), axis=2)
    support = chosen[..., :k_shot].reshape(n_episodes, n_way * k_shot)
    query = chosen[..., k_shot:].reshape(n_episodes, n_way * n_query)
    return Episodes(support, query, classes)


#: Random keys (float64) drawn per block by :func:`iter_episode_blocks` when no
#: `block_size` is given: about 2 MB per array.
BLOCK_KEYS = 1 << 18


def iter_episode_blocks(
    index: ClassIndex,
    n_way: int,
    k_shot: int,
    n_query: int,
    n_episodes: int,
    rng: np.random.Generator,
    block_size: int | None = None,
) -> Iterator[Episodes]:
    """The episodes of :func:`sample_episodes`, drawn lazily in blocks.

    The blocks, concatenated, are exactly (bit for bit) the episodes that
    ``sample_episodes(index, n_way, k_shot, n_query, n_episodes, rng)`` draws,
    for any `block_size`, while memory stays that of one block: so a splitter
    with ``n_episodes=10**9`` costs nothing until its folds are consumed.
    :func:`sample_episodes` draws every episode's class keys, then every
    episode's row keys, from one stream; here two copies of the generator
    read the same stream at those two places (``bit_generator.advance``), so
    each block takes its keys from where the all-at-once draw would.

    Parameters
    ----------
    index : ClassIndex
        Rows of each class.
    n_way, k_shot, n_query : int
        Episode size; `n_query` may be 0.
    n_episodes : int
        Number of episodes in all.
    rng : numpy.random.Generator
        Source of all randomness, on a ``PCG64`` or ``PCG64DXSM`` bit
        generator (``numpy.random.default_rng``'s). Its state is read when
        this function is called; `rng` itself is not advanced.
    block_size : int, default=None
        Episodes per block; by default as many as keep each block's random
        keys near ``BLOCK_KEYS`` (about 2 MB).

    Yields
    ------
    Episodes
        ``min(block_size, episodes left)`` episodes at a time.

    Raises
    ------
    ValueError
        If fewer than `n_way` classes have ``k_shot + n_query`` rows (at the
        call, not at the first block).
    TypeError
        If `rng`'s bit generator cannot jump ahead (``advance``).

    Examples
    --------
    >>> import numpy as np
    >>> index = ClassIndex.from_labels(np.repeat(np.arange(10), 6))
    >>> blocks = iter_episode_blocks(index, 5, 1, 2, n_episodes=10**9,
    ...                              rng=np.random.default_rng(0), block_size=4)
    >>> next(blocks).support.shape
    (4, 5)
    """
    eligible = _eligible(index, n_way, k_shot, n_query)
    if not isinstance(rng.bit_generator, np.random.PCG64 | np.random.PCG64DXSM):
        raise TypeError(
            "iter_episode_blocks needs rng on a PCG64 or PCG64DXSM bit generator "
            f"(numpy.random.default_rng); got {type(rng.bit_generator).__name__}."
        )
    row_keys_per_episode = n_way * index.rows.shape[1]
    if block_size is None:
        keys_per_episode = eligible.size + row_keys_per_episode
        block_size = max(1, BLOCK_KEYS // keys_per_episode)
    # One float64 key is one 64-bit draw: the class keys of all episodes come
    # first in the stream, then their row keys.
    class_rng = _copy(rng)
    row_rng = _copy(rng)
    row_rng.bit_generator.advance(n_episodes * eligible.size)
    return _blocks(
        index,
        eligible,
        n_way,
        k_shot,
        n_query,
        n_episodes,
        block_size,
        class_rng,
        row_rng,
    )


def _copy(rng: np.random.Generator) -> np.random.Generator:
    """A generator with `rng`'s bit generator type and state, independent of it."""
    bit_generator = type(rng.bit_generator)()
    bit_generator.state = rng.bit_generator.state
    return np.random.Generator(bit_generator)


def _blocks(
    index, eligible, n_way, k_shot, n_query, n_episodes, block_size, class_rng, row_rng
):
    """The blocks of :func:`iter_episode_blocks` (its checks done)."""
    for start in range(0, n_episodes, block_size):
        size = min(block_size, n_episodes - start)
        yield _draw(index, eligible, n_way, k_shot, n_query, size, class_rng, row_rng)


def sample_group_episodes(
    index: ClassIndex,
    class_groups: np.ndarray,
    n_way: int,
    k_shot: int,
    n_query: int,
    n_episodes: int,
    rng: np.random.Generator,
) -> Episodes:
    """Draw `n_episodes` episodes whose `n_way` classes all share one group.

    Each episode picks a group uniformly among those with at least `n_way`
    classes of ``k_shot + n_query`` rows, then `n_way` distinct classes of it
    and ``k_shot + n_query`` distinct rows of each, as :func:`sample_episodes`
    does (vectorised, no loop per episode). Within-alphabet episodes of
    Omniglot, the groups being alphabets, contrast similar characters, as
    Lake et al.'s one-shot runs do.

    Parameters
    ----------
    index : ClassIndex
        Rows of each class.
    class_groups : ndarray of shape (n_classes,), int
        Group code of each class of `index`.
    n_way, k_shot, n_query : int
        Episode size; `n_query` may be 0.
    n_episodes : int
        Number of episodes to draw.
    rng : numpy.random.Generator
        Source of all randomness.

    Returns
    -------
    Episodes

    Raises
    ------
    ValueError
        If no group has `n_way` classes of ``k_shot + n_query`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> index = ClassIndex.from_labels(np.repeat(np.arange(12), 4))
    >>> groups = np.repeat([0, 1, 2], 4)  # classes 0-3, 4-7, 8-11
    >>> ep = sample_group_episodes(index, groups, 3, 1, 1, n_episodes=2,
    ...                            rng=np.random.default_rng(0))
    >>> [len(set(groups[c] for c in way)) for way in ep.classes]
    [1, 1]
    """
    per_class = k_shot + n_query
    class_groups = np.asarray(class_groups)
    if class_groups.shape != (index.n_classes,):
        raise ValueError(
            f"class_groups has shape {class_groups.shape}; expected one group "
            f"per class, ({index.n_classes},)."
        )
    eligible = np.flatnonzero(index.counts >= per_class)
    names, members = np.unique(class_groups[eligible], return_inverse=True)
    sizes = np.bincount(members, minlength=names.size)
    usable = np.flatnonzero(sizes >= n_way)
    if usable.size == 0:
        raise ValueError(
            f"within_group_episodes: no group has {n_way} classes with at least "
            f"{per_class} samples (k_shot + n_query) to draw a {n_way}-way "
            f"episode from; the largest has {int(sizes.max(initial=0))}. Lower "
            "n_way, give larger groups, or set within_group_episodes=0."
        )
    chosen = usable[rng.integers(usable.size, size=n_episodes)]  # (E,)
    keys = rng.random((n_episodes, eligible.size))
    keys[members[None, :] != chosen[:, None]] = np.inf  # other groups never
    classes = eligible[_smallest(keys, n_way)]  # (E, N)
    return _draw_rows(index, classes, k_shot, n_query, rng)


def _smallest(keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the `k` smallest keys along the last axis, in ascending order.

    With i.i.d. uniform keys this is a uniformly random ordered draw without
    replacement.
    """
    if k < keys.shape[-1]:
        part = np.argpartition(keys, k - 1, axis=-1)[..., :k]
    else:
        part = np.broadcast_to(np.arange(keys.shape[-1]), keys.shape)
    order = np.argsort(np.take_along_axis(keys, part, axis=-1), axis=-1)
    return np.take_along_axis(part, order, axis=-1)
