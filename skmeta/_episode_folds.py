"""The (support, query) index pairs behind
:class:`~skmeta.model_selection.EpisodicSplit` and
:class:`~skmeta.model_selection.TaskSplit`: random episodes, tasks drawn
without replacement, episodes within a group, and episodes whose support and
queries come from different sources."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from .meta.episodes import (
    BLOCK_KEYS,
    ClassIndex,
    _draw_rows,
    iter_episode_blocks,
    sample_group_episodes,
)
from .meta.source_episodes import iter_source_episodes
from .meta.within_group import class_groups


def n_rows(X) -> int:
    """The length of X, the only thing the splitters use of it."""
    try:
        return len(X)
    except TypeError:
        raise TypeError(
            f"X must be array-like with one row per sample; got {type(X).__name__}."
        ) from None


def codes_of(values, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(unique values, code of each value) of `values`, the parameter `name`;
    a TypeError names it when its values do not sort."""
    try:
        return np.unique(values, return_inverse=True)
    except TypeError:  # e.g. strings and numbers mixed: they do not sort
        kinds = sorted({type(value).__name__ for value in values})
        raise TypeError(
            f"{name} mixes labels of types that cannot be compared "
            f"({', '.join(kinds)}); use labels of one type, e.g. all strings."
        ) from None


def _seed(splitter) -> np.random.Generator:
    """The episodes' generator, seeded by ``splitter.random_state``."""
    seed = check_random_state(splitter.random_state).randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed)


def folds(labels, n_way, k_shot, n_query, n_folds, splitter, name):
    """(support, query) index pairs of `n_folds` episodes over `labels` (the
    parameter `name`), seeded by ``splitter.random_state``.

    The episodes are drawn in blocks as the pairs are consumed
    (:func:`~skmeta.meta.episodes.iter_episode_blocks`): memory is one block's
    whatever `n_folds`, and the episodes are those of one draw of all of them.
    """
    _, codes = codes_of(labels, name)
    blocks = iter_episode_blocks(
        ClassIndex.from_labels(codes), n_way, k_shot, n_query, n_folds, _seed(splitter)
    )
    for block in blocks:
        yield from zip(block.support, block.query, strict=True)


def task_folds(groups, k_shot, n_query, n_tasks, splitter):
    """(support, query) index pairs of `n_tasks` folds, one task (group) each,
    among the tasks with ``k_shot + n_query`` rows, seeded by
    ``splitter.random_state``.

    The tasks come in successive random permutations of them: all distinct
    while `n_tasks` is at most their number, and beyond it each task comes
    once before any comes again. The rows of each fold are drawn at random
    within its task. Tasks and rows come from two generators read in order,
    in blocks: memory is one block's whatever `n_tasks`, and the folds do not
    depend on the block size.
    """
    _, codes = codes_of(groups, "groups")
    index = ClassIndex.from_labels(codes)
    eligible = np.flatnonzero(index.counts >= k_shot + n_query)
    seeds = _seed(splitter).integers(np.iinfo(np.int64).max, size=2)
    task_rng, row_rng = (np.random.default_rng(seed) for seed in seeds)
    block = max(1, BLOCK_KEYS // max(1, index.rows.shape[1]))
    queue = eligible[:0]  # tasks drawn and not yet used
    for start in range(0, n_tasks, block):
        size = min(block, n_tasks - start)
        while queue.size < size:
            queue = np.concatenate([queue, task_rng.permutation(eligible)])
        tasks, queue = queue[:size], queue[size:]
        episodes = _draw_rows(index, tasks[:, None], k_shot, n_query, row_rng)
        yield from zip(episodes.support, episodes.query, strict=True)


def grouped_folds(y, groups, splitter):
    """(support, query) index pairs of ``splitter.n_episodes`` episodes whose
    classes share a group (``groups[:, 0]``, or `groups` when 1-D), and whose
    support and queries come from two different sources (``groups[:, 1]``)
    when `groups` has two columns.

    Raises
    ------
    ValueError
        If `groups` has the wrong shape, a class has rows in two groups, or
        no episode can be drawn.
    """
    groups = np.asarray(groups)
    if groups.ndim == 2 and groups.shape[1] == 1:
        groups = groups[:, 0]
    if groups.ndim not in (1, 2) or (groups.ndim == 2 and groups.shape[1] != 2):
        raise ValueError(
            "EpisodicSplit takes groups of shape (n_samples,), the group the "
            "classes of an episode share, or (n_samples, 2), the group and the "
            f"source of each row; got shape {groups.shape}."
        )
    if len(groups) != len(y):
        raise ValueError(f"y has {len(y)} samples but groups has {len(groups)}.")
    names, codes = codes_of(y, "y")
    first = groups[:, 0] if groups.ndim == 2 else groups
    _, group_codes = codes_of(first, "groups")
    owner = "EpisodicSplit (with groups, or their first column)"
    by_class = class_groups(group_codes, codes, 1, names, owner=owner)
    cv, rng = splitter, _seed(splitter)
    if groups.ndim == 2:
        _, sources = codes_of(groups[:, 1], "groups[:, 1] (the sources)")
        yield from iter_source_episodes(
            codes, by_class, sources, cv.n_way, cv.k_shot, cv.n_query,
            cv.n_episodes, rng,
        )  # fmt: skip
        return
    index = ClassIndex.from_labels(codes)  # keys per episode: classes', rows'
    keys = index.n_classes + cv.n_way * index.rows.shape[1]
    block = max(1, BLOCK_KEYS // max(1, keys))  # no rows: no keys at all
    for start in range(0, cv.n_episodes, block):
        try:
            episodes = sample_group_episodes(
                index, by_class, cv.n_way, cv.k_shot, cv.n_query,
                min(block, cv.n_episodes - start), rng,
            )  # fmt: skip
        except ValueError:
            raise ValueError(_too_small(index, by_class, cv)) from None
        yield from zip(episodes.support, episodes.query, strict=True)


def _too_small(index, by_class, cv) -> str:
    """The message when no group can give an episode of `cv`'s size."""
    need = cv.k_shot + cv.n_query
    largest = np.bincount(by_class[index.counts >= need], minlength=1).max()
    return (
        f"EpisodicSplit(n_way={cv.n_way}) with groups draws the classes of an "
        f"episode from one group, but no group has {cv.n_way} classes with "
        f"{need} samples (k_shot + n_query); the largest has {largest}. Lower "
        "n_way, k_shot or n_query."
    )


class GroupsBound:
    """A splitter with its ``groups`` given once: the episodes of
    :func:`~skmeta.model_selection.episodic_score` (``groups=``), whose groups
    only draw them.

    It requests no metadata, so under scikit-learn's metadata routing the
    groups reach neither the estimator's ``fit`` nor a second splitter: they
    are not routed, they are bound.
    """

    def __init__(self, cv, groups):
        self.cv, self.groups = cv, groups

    def split(self, X, y=None, groups=None):
        """The episodes of ``cv.split(X, y, self.groups)``."""
        return self.cv.split(X, y, self.groups)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """The number of episodes of ``cv`` with the bound groups."""
        return self.cv.get_n_splits(X, y, self.groups)
