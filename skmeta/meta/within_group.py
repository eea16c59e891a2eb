"""Within-group episodes: meta-training episodes whose classes share a group
(e.g. the characters of one Omniglot alphabet), mixed with random ones.

The groups are an array of codes per row, given beside the class codes; this
module maps them to classes (rotated classes keep their group), checks them,
and draws the mixed episodes of :func:`~.batches.task_batches`. NumPy only.
"""

from __future__ import annotations

import numpy as np

from .episodes import Episodes, sample_episodes, sample_group_episodes

__all__ = ["check_group_sizes", "check_within_group", "class_groups", "mixed_episodes"]


def check_within_group(settings, algorithm, groups, n_samples, regression) -> None:
    """Refuse `within_group_episodes` where it cannot apply.

    Parameters
    ----------
    settings : TrainSettings
        Its ``within_group_episodes`` (and ``method``, for the message).
    algorithm : Algorithm
        The method: within-group episodes need an episodic one.
    groups : ndarray of shape (n_samples,) or None
        Group code of each row.
    n_samples : int
        Rows of the training data.
    regression : bool
        Whether the run is regression (no classes to group).

    Raises
    ------
    ValueError
        If the share is outside [0, 1], or above 0 for regression, a
        non-episodic method, or without one group per row.
    """
    share = settings.within_group_episodes
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"within_group_episodes={share!r} must be in [0, 1].")
    if share == 0.0:
        return
    if regression or not algorithm.episodic:
        what = "regression" if regression else f"method={settings.method!r}"
        raise ValueError(
            f"within_group_episodes={share!r} applies to episodic classification "
            f"only; {what} draws no N-way episodes. Set it to 0."
        )
    if groups is None or len(groups) != n_samples:
        raise ValueError(
            f"within_group_episodes={share!r} needs the group of each row "
            f"(groups of shape ({n_samples},)); got "
            f"{None if groups is None else len(groups)}."
        )


def check_group_sizes(index, by_group: np.ndarray, settings) -> None:
    """Refuse groups too small for ``settings.n_way`` now, not in the loop.

    Parameters
    ----------
    index : ClassIndex
        Rows of each training class.
    by_group : ndarray of shape (n_classes,), int
        Group code of each class of `index` (:func:`class_groups`).
    settings : TrainSettings
        Its ``n_way``, ``k_shot`` and ``n_query``.

    Raises
    ------
    ValueError
        If no group has ``n_way`` classes of ``k_shot + n_query`` rows.
    """
    sample_group_episodes(
        index,
        by_group,
        settings.n_way,
        settings.k_shot,
        settings.n_query,
        0,
        np.random.default_rng(0),
    )


def class_groups(
    groups: np.ndarray,
    codes: np.ndarray,
    rotations: int,
    names=None,
    owner: str = "within_group_episodes",
) -> np.ndarray:
    """The group of each class of :func:`~.batches.training_index` (rotated too).

    Parameters
    ----------
    groups : ndarray of shape (n_train,), int
        Group code of each training row; every row of a class must share one.
    codes : ndarray of shape (n_train,)
        Class codes ``0..n_classes-1`` of the training rows.
    rotations : int
        1, or 4 with class augmentation: a rotated class (code
        ``k * n_classes + c``) stays in the group of class ``c``.
    names : array-like of shape (n_classes,), default=None
        The label of each class code, for the error message (the user's
        labels, where the caller knows them); None names the code.
    owner : str, default="within_group_episodes"
        What draws the episodes, for the error message.

    Returns
    -------
    ndarray of shape (rotations * n_classes,), int64

    Raises
    ------
    ValueError
        If a class has rows in two groups.

    Examples
    --------
    >>> import numpy as np
    >>> class_groups(np.array([5, 5, 5, 7]), np.array([0, 0, 1, 2]), 2).tolist()
    [5, 5, 7, 5, 5, 7]
    """
    codes, groups = np.asarray(codes), np.asarray(groups, dtype=np.int64)
    n_classes = int(codes.max()) + 1 if codes.size else 0
    per_class = np.full(n_classes, -1, dtype=np.int64)
    per_class[codes] = groups
    split = np.flatnonzero(per_class[codes] != groups)
    if split.size:
        code = int(codes[split[0]])
        if names is None:
            name = f"code {code}"
        else:
            label = names[code]  # a NumPy scalar shown as the plain value
            name = repr(label.item() if isinstance(label, np.generic) else label)
        raise ValueError(
            f"{owner} draws the classes of an episode from one group, but "
            f"class {name} has rows in several groups; give every row of a "
            "class the same group."
        )
    return np.tile(per_class, rotations)


def mixed_episodes(index, groups, within_group, n_way, k_shot, n_query, n, rng):
    """`n` episodes, each drawn within one group with probability `within_group`
    and among all classes otherwise (the episodes' order is random).

    Parameters
    ----------
    index : ClassIndex
        Rows of each class.
    groups : ndarray of shape (n_classes,), int
        Group code of each class of `index` (:func:`class_groups`).
    within_group : float in [0, 1]
        Probability of an episode being drawn within one group
        (:func:`~.episodes.sample_group_episodes`).
    n_way, k_shot, n_query : int
        Episode size.
    n : int
        Number of episodes.
    rng : numpy.random.Generator
        Source of all randomness.

    Returns
    -------
    Episodes
        ``support`` (n, n_way * k_shot), ``query`` (n, n_way * n_query) and
        ``classes`` (n, n_way), int64.
    """
    inside = rng.random(n) < within_group
    k = int(inside.sum())
    grouped = sample_group_episodes(index, groups, n_way, k_shot, n_query, k, rng)
    free = sample_episodes(index, n_way, k_shot, n_query, n - k, rng)
    parts = {}
    for name in ("support", "query", "classes"):
        out = np.empty((n, getattr(free, name).shape[1]), dtype=np.int64)
        out[inside], out[~inside] = getattr(grouped, name), getattr(free, name)
        parts[name] = out
    return Episodes(**parts)
