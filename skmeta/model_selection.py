"""Episodic evaluation through scikit-learn's model selection tools.

:class:`EpisodicSplit` is a cross-validation splitter whose folds are N-way
K-shot episodes (:class:`TaskSplit`: few-shot regression tasks), so
``cross_val_score``, ``cross_validate`` and ``GridSearchCV`` *are* the episodic
evaluation of the few-shot literature; :func:`episodic_score`
adds the mean and 95% confidence interval that papers report.
:func:`ship_once` sends the ``pretrained`` models of a search to each worker
process once rather than with every task.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from joblib.parallel import get_active_backend
from sklearn.metrics import check_scoring
from sklearn.model_selection import cross_val_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_scalar, column_or_1d
from tqdm.auto import tqdm

from ._ship_once import _is_local, ship_once, with_private_models
from ._transductive_episodes import TransductiveEpisode, transductive_of
from .meta.episodes import ClassIndex, iter_episode_blocks

__all__ = [
    "EpisodicScore",
    "EpisodicSplit",
    "TaskSplit",
    "episodic_score",
    "ship_once",
]


class EpisodicSplit:
    """N-way K-shot episodes as cross-validation folds.

    Each fold is one episode: `n_way` classes drawn among those with at least
    ``k_shot + n_query`` samples; the training indices are `k_shot` samples of
    each (the support set), the test indices `n_query` others of each (the
    queries). Fitting a :class:`~skmeta.FewShotClassifier` with ``pretrained=``
    on a fold and scoring it on the queries is one episode of few-shot
    evaluation.

    .. versionadded:: 0.1

    Parameters
    ----------
    n_way : int, default=5
        Classes per episode.
    k_shot : int, default=1
        Support samples per class.
    n_query : int, default=15
        Query samples per class.
    n_episodes : int, default=100
        Number of episodes (folds). They are drawn in blocks as ``split`` is
        consumed, so memory does not grow with `n_episodes` (``10**9`` is
        fine for the first few folds); the episodes of a seed do not depend
        on the blocks.
    random_state : int, RandomState instance or None, default=None
        Seeds the episodes; an int gives the same episodes at every ``split``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmeta import EpisodicSplit
    >>> y = np.repeat(["a", "b", "c", "d"], 5)
    >>> cv = EpisodicSplit(n_way=3, k_shot=1, n_query=2, n_episodes=4, random_state=0)
    >>> support, query = next(cv.split(np.zeros((20, 1)), y))
    >>> len(support), len(query), cv.get_n_splits()
    (3, 6, 4)
    """

    def __init__(
        self, n_way=5, k_shot=1, n_query=15, n_episodes=100, random_state=None
    ):
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.n_episodes = n_episodes
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"EpisodicSplit(n_way={self.n_way}, k_shot={self.k_shot}, "
            f"n_query={self.n_query}, n_episodes={self.n_episodes}, "
            f"random_state={self.random_state!r})"
        )

    def _check_params(self) -> None:
        check_scalar(self.n_way, "n_way", Integral, min_val=2)
        check_scalar(self.k_shot, "k_shot", Integral, min_val=1)
        check_scalar(self.n_query, "n_query", Integral, min_val=1)
        check_scalar(self.n_episodes, "n_episodes", Integral, min_val=1)

    def split(self, X, y, groups=None):
        """Yield (support indices, query indices), one pair per episode.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : ignored
            Present for API compatibility.

        Yields
        ------
        support : ndarray of shape (n_way * k_shot,)
        query : ndarray of shape (n_way * n_query,)
        """
        self._check_params()
        if y is None:
            raise ValueError("EpisodicSplit.split needs the class labels y.")
        y = column_or_1d(y)
        if len(y) != _n_rows(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}.")
        yield from _folds(
            y, self.n_way, self.k_shot, self.n_query, self.n_episodes, self, "y"
        )

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of episodes."""
        return self.n_episodes


class TaskSplit:
    """Few-shot regression tasks as cross-validation folds.

    Each fold is one task (one value of ``groups``) among those with at least
    ``k_shot + n_query`` rows: the training indices are `k_shot` of its rows
    (the support set), the test indices `n_query` others (the queries).
    Fitting a :class:`~skmeta.FewShotRegressor` with ``pretrained=`` on a fold
    and scoring it on the queries is one task of few-shot regression's
    evaluation, as :class:`EpisodicSplit` is for classification.

    .. versionadded:: 0.1

    Parameters
    ----------
    k_shot : int, default=5
        Support rows per task.
    n_query : int, default=10
        Query rows per task.
    n_tasks : int, default=100
        Number of tasks (folds), drawn at random (a task may come back).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws; an int gives the same folds at every ``split``.

    Examples
    --------
    >>> import numpy as np
    >>> from skmeta import TaskSplit
    >>> groups = np.repeat([0, 1, 2], 8)
    >>> cv = TaskSplit(k_shot=2, n_query=3, n_tasks=4, random_state=0)
    >>> support, query = next(cv.split(np.zeros((24, 1)), groups=groups))
    >>> len(support), len(query), len(set(groups[support]) | set(groups[query]))
    (2, 3, 1)
    """

    def __init__(self, k_shot=5, n_query=10, n_tasks=100, random_state=None):
        self.k_shot = k_shot
        self.n_query = n_query
        self.n_tasks = n_tasks
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"TaskSplit(k_shot={self.k_shot}, n_query={self.n_query}, "
            f"n_tasks={self.n_tasks}, random_state={self.random_state!r})"
        )

    def split(self, X, y=None, groups=None):
        """Yield (support indices, query indices), one pair per task.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used.
        y : ignored
            Present for API compatibility.
        groups : array-like of shape (n_samples,)
            The task of each row.

        Yields
        ------
        support : ndarray of shape (k_shot,)
        query : ndarray of shape (n_query,)
        """
        check_scalar(self.k_shot, "k_shot", Integral, min_val=1)
        check_scalar(self.n_query, "n_query", Integral, min_val=1)
        check_scalar(self.n_tasks, "n_tasks", Integral, min_val=1)
        if groups is None:
            raise ValueError(
                "TaskSplit.split needs groups, the task of each row (e.g. "
                "cross_val_score(..., groups=groups, cv=TaskSplit()))."
            )
        groups = column_or_1d(groups)
        if len(groups) != _n_rows(X):
            raise ValueError(f"X has {len(X)} samples but groups has {len(groups)}.")
        largest = np.unique(groups, return_counts=True)[1].max(initial=0)
        if largest < self.k_shot + self.n_query:
            raise ValueError(
                f"TaskSplit(k_shot={self.k_shot}, n_query={self.n_query}) needs a "
                f"task (group) of {self.k_shot + self.n_query} rows at least."
            )
        yield from _folds(
            groups, 1, self.k_shot, self.n_query, self.n_tasks, self, "groups"
        )

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of tasks."""
        return self.n_tasks


def _n_rows(X) -> int:  # only the length of X is used
    try:
        return len(X)
    except TypeError:
        raise TypeError(
            f"X must be array-like with one row per sample; got {type(X).__name__}."
        ) from None


def _folds(labels, n_way, k_shot, n_query, n_folds, splitter, name):
    """(support, query) index pairs of `n_folds` episodes over `labels` (the
    parameter `name`), seeded by ``splitter.random_state``.

    The episodes are drawn in blocks as the pairs are consumed
    (:func:`~skmeta.meta.episodes.iter_episode_blocks`): memory is one block's
    whatever `n_folds`, and the episodes are those of one draw of all of them.
    """
    try:
        _, codes = np.unique(labels, return_inverse=True)
    except TypeError:  # e.g. strings and numbers mixed: they do not sort
        kinds = sorted({type(label).__name__ for label in labels})
        raise TypeError(
            f"{name} mixes labels of types that cannot be compared "
            f"({', '.join(kinds)}); use labels of one type, e.g. all strings."
        ) from None
    seed = check_random_state(splitter.random_state).randint(np.iinfo(np.int32).max)
    blocks = iter_episode_blocks(
        ClassIndex.from_labels(codes),
        n_way,
        k_shot,
        n_query,
        n_folds,
        np.random.default_rng(seed),
    )
    for block in blocks:
        yield from zip(block.support, block.query, strict=True)


@dataclass(frozen=True)
class EpisodicScore:
    """Mean score over episodes with its 95% confidence interval.

    Attributes
    ----------
    mean : float
    ci95 : float
        Half-width of the normal 95% confidence interval of the mean,
        ``1.96 * std / sqrt(n_episodes)``.
    scores : ndarray of shape (n_episodes,)
    """

    mean: float
    ci95: float
    scores: np.ndarray

    def __str__(self) -> str:
        return f"{100 * self.mean:.2f}% ± {100 * self.ci95:.2f}%"


def episodic_score(
    estimator,
    X,
    y,
    *,
    n_way=5,
    k_shot=1,
    n_query=15,
    n_episodes=600,
    random_state=None,
    cv=None,
    scoring=None,
    n_jobs=None,
    verbose=0,
) -> EpisodicScore:
    """Few-shot accuracy as papers report it: mean and 95% CI over episodes.

    Each episode fits a clone of `estimator` on the support set and scores it
    on the queries (``cross_val_score`` with an :class:`EpisodicSplit`). For a
    classifier with ``transductive`` set (or a pipeline ending in one), each
    episode is transductive: the clone is fitted on the support set and the
    queries together, the queries labelled ``-1``, and its ``transduction_``
    of the queries is scored.

    Parameters
    ----------
    estimator : estimator
        Usually ``FewShotClassifier(pretrained=model)``, or a ``Pipeline`` whose
        last step is a classifier.
    X : array-like of shape (n_samples, n_features)
        Rows of the classes to evaluate on (usually classes unseen in
        meta-training).
    y : array-like of shape (n_samples,)
        Their class labels.
    n_way : int, default=5
        Classes per episode, as for :class:`EpisodicSplit`; ignored when `cv`
        is given (so are the next four).
    k_shot : int, default=1
        Support samples per class.
    n_query : int, default=15
        Query samples per class.
    n_episodes : int, default=600
        Number of episodes.
    random_state : int, RandomState instance or None, default=None
        Seeds the episodes.
    cv : EpisodicSplit, default=None
        Splitter to use instead.
    scoring : str or callable, default=None
        Default: the estimator's ``score`` (accuracy).
    n_jobs : int, default=None
        Episodes evaluated in parallel by joblib's active backend (loky
        processes by default; Dask or Ray through ``joblib.parallel_config``).
        The episodes come from the splitter alone, so the scores are the same
        for any `n_jobs` and backend. The estimator's ``pretrained`` models
        reach each worker once (:func:`ship_once`).
    verbose : int, default=0
        Show progress when positive: a progress bar over the episodes when
        they run in this process, joblib's progress lines when they run in
        parallel.

    Returns
    -------
    EpisodicScore
        Mean score, 95% confidence half-width and the score of each episode.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skmeta import episodic_score
    >>> X, y = make_blobs(200, centers=10, random_state=0)
    >>> result = episodic_score(KNeighborsClassifier(n_neighbors=1), X, y,
    ...                         n_episodes=50, random_state=0)
    >>> 0 <= result.mean <= 1 and result.scores.shape
    (50,)
    """
    if cv is None:
        cv = EpisodicSplit(n_way, k_shot, n_query, n_episodes, random_state)
    if transductive_of(estimator) is not None:  # queries labelled jointly
        estimator = TransductiveEpisode(estimator)
    backend, default_n_jobs = get_active_backend()
    sequential = (default_n_jobs if n_jobs is None else n_jobs) in (None, 1)
    local_and_sequential = sequential and _is_local(backend)
    bar = None
    if verbose and local_and_sequential:  # a bar moved by each episode's score
        total = cv.get_n_splits(X, y)
        bar = tqdm(total=total, desc="episodes", unit="ep", leave=False)
        scoring = _counted(check_scoring(estimator, scoring), bar)
    try:
        if not local_and_sequential:  # shipped: the caller's models stay whole
            estimator = with_private_models(estimator)
        with nullcontext() if local_and_sequential else ship_once(estimator):
            scores = cross_val_score(
                estimator,
                X,
                y,
                cv=cv,
                scoring=scoring,
                n_jobs=n_jobs,
                error_score="raise",
                verbose=0 if bar is not None else verbose,
            )
    finally:
        if bar is not None:
            bar.close()
    ci95 = (
        1.96 * scores.std(ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else np.nan
    )
    return EpisodicScore(float(scores.mean()), float(ci95), scores)


def _counted(scorer, bar):
    """`scorer`, advancing `bar` by one at each call (each episode)."""

    def score(estimator, X, y):
        value = scorer(estimator, X, y)
        bar.update()
        return value

    return score
