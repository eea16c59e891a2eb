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

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from joblib.parallel import get_active_backend
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import BaseCrossValidator, cross_val_score
from sklearn.utils.validation import check_scalar, column_or_1d
from tqdm.auto import tqdm

from ._episode_folds import GroupsBound, folds, grouped_folds, n_rows
from ._ship_once import _is_local, ship_once, with_private_models
from ._task_split import TaskSplit
from ._tqdm_streams import tqdm_options
from ._transductive_episodes import TransductiveEpisode, transductive_of
from ._typing import ArrayLike

__all__ = [
    "EpisodicScore",
    "EpisodicSplit",
    "TaskSplit",
    "episodic_score",
    "ship_once",
]


class EpisodicSplit(BaseCrossValidator):
    """N-way K-shot episodes as cross-validation folds.

    Each fold is one episode: `n_way` classes drawn among those with at least
    ``k_shot + n_query`` samples; the training indices are `k_shot` samples of
    each (the support set), the test indices `n_query` others of each (the
    queries). Fitting a :class:`~skmeta.FewShotClassifier` with ``pretrained=``
    on a fold and scoring it on the queries is one episode of few-shot
    evaluation.

    With ``groups`` (passed to ``split``, ``cross_val_score`` or a search's
    ``fit``), the classes of each episode share a group: a group with
    `n_way` such classes is drawn uniformly, then its classes. Episodes within
    one alphabet, one product family or one species' genus contrast similar
    classes, and are harder than random ones. A second column of ``groups``
    names the *source* of each row (who drew it, which camera took it): the
    support then comes from one source and the queries from another, drawn
    as an ordered pair among the group's sources that share `n_way` classes
    with `k_shot` and `n_query` rows. Lake et al.'s one-shot runs on Omniglot
    are ``groups=np.c_[alphabet, drawer]`` with ``n_way=20, k_shot=1,
    n_query=1``.

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
        fine for the first few folds); for a seed, the episodes are the same
        however the folds are consumed. Unlike ``ShuffleSplit``'s splits,
        they depend on `n_episodes`: the first 100 of ``n_episodes=600`` are
        not those of ``n_episodes=100`` with the same seed.
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

    Within groups, the support from one source and the queries from another:

    >>> y = np.repeat(np.arange(8), 3)            # 8 classes of 3 rows
    >>> family = np.repeat([0, 1], 12)            # classes 0-3, then 4-7
    >>> source = np.tile([0, 1, 2], 8)            # 3 sources for each class
    >>> groups = np.c_[family, source]
    >>> cv = EpisodicSplit(n_way=3, n_query=1, n_episodes=4, random_state=0)
    >>> support, query = next(cv.split(np.zeros((24, 1)), y, groups))
    >>> len(set(family[support])), len(set(source[support])), len(set(source[query]))
    (1, 1, 1)
    >>> bool(source[support][0] != source[query][0])
    True
    """

    # groups reach split under scikit-learn's metadata routing too
    __metadata_request__split = {"groups": True}

    def __init__(
        self,
        n_way: int = 5,
        k_shot: int = 1,
        n_query: int = 15,
        n_episodes: int = 100,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
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

    def split(
        self, X: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (support indices, query indices), one pair per episode.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,) or (n_samples, 2), default=None
            The group of each row: the classes of an episode share one (every
            row of a class must have the same). A second column is the source
            of each row: the support from one source, the queries from
            another. None draws the classes among all.

        Yields
        ------
        support : ndarray of shape (n_way * k_shot,)
        query : ndarray of shape (n_way * n_query,)
        """
        self._check_params()
        if y is None:
            raise ValueError("EpisodicSplit.split needs the class labels y.")
        y = column_or_1d(y)
        if len(y) != n_rows(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}.")
        if groups is not None:
            yield from grouped_folds(y, groups, self)
            return
        yield from folds(
            y, self.n_way, self.k_shot, self.n_query, self.n_episodes, self, "y"
        )

    def get_n_splits(
        self, X: object = None, y: object = None, groups: object = None
    ) -> int:
        """Number of episodes: `n_episodes`, whatever the data.

        Parameters
        ----------
        X, y, groups : object, default=None
            Ignored; present for scikit-learn's splitter interface.

        Returns
        -------
        int
            The number of folds that :meth:`split` yields.
        """
        return self.n_episodes


@dataclass(frozen=True)
class EpisodicScore:
    """Mean score over episodes with its 95% confidence interval.

    Attributes
    ----------
    mean : float
        Mean of the episodes' scores (accuracy, a share in [0, 1], for a
        classifier).
    ci95 : float
        Half-width of the normal 95% confidence interval of the mean,
        ``1.96 * std / sqrt(n_episodes)``.
    scores : ndarray of shape (n_episodes,)
        Each episode's score, in the order of the episodes.
    percent : bool
        Whether the scores are shares (accuracy), shown as percentages;
        others (a regressor's scores, e.g. negative MSE) are shown as they are.
    """

    mean: float
    ci95: float
    scores: np.ndarray
    percent: bool = True

    def __str__(self) -> str:
        if self.percent:
            return f"{100 * self.mean:.2f}% ± {100 * self.ci95:.2f}%"
        return f"{self.mean:.4g} ± {self.ci95:.2g}"


def episodic_score(
    estimator: Any,
    X: ArrayLike,
    y: ArrayLike,
    *,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 15,
    n_episodes: int = 600,
    random_state: int | np.random.RandomState | None = None,
    cv: BaseCrossValidator | None = None,
    scoring: str | Callable[..., float] | None = None,
    n_jobs: int | None = None,
    verbose: int = 0,
    groups: ArrayLike | None = None,
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
    cv : EpisodicSplit or TaskSplit, default=None
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
    groups : array-like of shape (n_samples,) or (n_samples, 2), default=None
        Episodes within a group, the support and queries from two sources
        when there is a second column, as for :meth:`EpisodicSplit.split`
        (or the tasks of a :class:`TaskSplit` `cv`). They only draw the
        episodes: under scikit-learn's metadata routing too, they reach no
        estimator's ``fit``.

        .. versionadded:: 0.1

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
    # accuracy is a share, shown as a percentage; other scores as they are
    shares = is_classifier(estimator) and scoring in (None, "accuracy")
    if groups is not None:  # they draw the episodes, whether routing is on or off
        if not hasattr(cv, "split"):
            raise ValueError(
                "groups draw the episodes of a splitter (EpisodicSplit or "
                f"TaskSplit); cv={type(cv).__name__} has none to draw."
            )
        cv = GroupsBound(cv, groups)
    if transductive_of(estimator) is not None:  # queries labelled jointly
        estimator = TransductiveEpisode(estimator)
    backend, default_n_jobs = get_active_backend()
    sequential = (default_n_jobs if n_jobs is None else n_jobs) in (None, 1)
    local_and_sequential = sequential and _is_local(backend)
    bar = None
    if verbose and local_and_sequential:  # a bar moved by each episode's score
        total = cv.get_n_splits(X, y)
        bar = tqdm(
            total=total, desc="episodes", unit="ep", leave=False, **tqdm_options()
        )
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
                params={},  # scikit-learn 1.6.0 fails on None under routing
            )
    finally:
        if bar is not None:
            bar.close()
    ci95 = (
        1.96 * scores.std(ddof=1) / np.sqrt(len(scores)) if len(scores) > 1 else np.nan
    )
    return EpisodicScore(float(scores.mean()), float(ci95), scores, shares)


def _counted(scorer, bar):
    """`scorer`, advancing `bar` by one at each call (each episode)."""

    def score(estimator, X, y):
        value = scorer(estimator, X, y)
        bar.update()
        return value

    return score
