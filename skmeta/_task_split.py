"""Few-shot regression tasks as cross-validation folds (:class:`TaskSplit`),
re-exported by :mod:`skmeta.model_selection`."""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils.validation import check_scalar, column_or_1d

from ._episode_folds import n_rows, task_folds
from ._typing import ArrayLike

__all__ = ["TaskSplit"]


class TaskSplit(BaseCrossValidator):
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
        Number of tasks (folds), drawn at random without replacement: all
        distinct when there are at least `n_tasks` eligible tasks. With more
        folds than tasks, the tasks come in successive random permutations,
        each task once before any comes back (the same task then gives
        another draw of its rows).
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

    # groups reach split under scikit-learn's metadata routing too
    __metadata_request__split = {"groups": True}

    def __init__(
        self,
        k_shot: int = 5,
        n_query: int = 10,
        n_tasks: int = 100,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.k_shot = k_shot
        self.n_query = n_query
        self.n_tasks = n_tasks
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"TaskSplit(k_shot={self.k_shot}, n_query={self.n_query}, "
            f"n_tasks={self.n_tasks}, random_state={self.random_state!r})"
        )

    def split(
        self, X: ArrayLike, y: object = None, groups: ArrayLike | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
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
                "cross_val_score(..., groups=groups, cv=TaskSplit()), or "
                "params={'groups': groups} under metadata routing)."
            )
        shape = np.shape(groups)
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):  # not y's fault
            raise ValueError(
                "TaskSplit takes groups of one column, the task of each row; got "
                f"groups of shape {shape}. (Sources, a second column, "
                "are EpisodicSplit's.)"
            )
        groups = column_or_1d(groups)
        if len(groups) != n_rows(X):
            raise ValueError(f"X has {len(X)} samples but groups has {len(groups)}.")
        largest = np.unique(groups, return_counts=True)[1].max(initial=0)
        if largest < self.k_shot + self.n_query:
            raise ValueError(
                f"TaskSplit(k_shot={self.k_shot}, n_query={self.n_query}) needs a "
                f"task (group) of {self.k_shot + self.n_query} rows at least."
            )
        yield from task_folds(groups, self.k_shot, self.n_query, self.n_tasks, self)

    def get_n_splits(
        self, X: object = None, y: object = None, groups: object = None
    ) -> int:
        """Number of tasks: `n_tasks`, whatever the data.

        Parameters
        ----------
        X, y, groups : object, default=None
            Ignored; present for scikit-learn's splitter interface.

        Returns
        -------
        int
            The number of folds that :meth:`split` yields.
        """
        return self.n_tasks
