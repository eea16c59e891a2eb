"""Few-shot scores against shots or ways, with 95% confidence bands."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from ..model_selection import EpisodicScore, episodic_score
from ._common import axes_for, label, merged

__all__ = ["EpisodicScoreDisplay"]


def _mean_ci95(score) -> tuple[float, float]:
    """(mean, 95% CI half-width) of an EpisodicScore or a pair."""
    if isinstance(score, EpisodicScore):
        return score.mean, score.ci95
    pair = np.asarray(score, dtype=float)
    if pair.shape != (2,):
        raise ValueError(
            f"Each score must be an EpisodicScore or a (mean, ci95) pair; got "
            f"{score!r}."
        )
    return float(pair[0]), float(pair[1])


def _check_episode_estimator(name, estimator) -> None:
    """Refuse a skmeta estimator without `pretrained`: each episode would
    meta-train a clone on its few support rows."""
    from .._base import MetaEstimator

    if isinstance(estimator, MetaEstimator) and estimator.pretrained is None:
        fitted = hasattr(estimator, "meta_model_")
        hint = (
            "pretrained=estimator.meta_model_"
            if fitted
            else "pretrained= (a model meta-trained on base classes)"
        )
        raise ValueError(
            f"estimator {name!r} has no pretrained model: each episode fits a "
            "clone of it on the support set, which would meta-train on a few "
            f"rows. Evaluate {type(estimator).__name__}({hint})."
        )


class EpisodicScoreDisplay:
    """Few-shot score against shots (or ways), one line per method.

    It is recommended to use :meth:`from_estimators` or :meth:`from_scores`
    to create a display. All parameters are stored as attributes. Each
    method is a line of mean scores over episodes, in a band of their 95%
    confidence intervals.

    .. versionadded:: 0.1

    Parameters
    ----------
    x : ndarray of shape (n_points,)
        The varied setting at each point: shots per class, classes per
        episode, or any other.
    means : ndarray of shape (n_methods, n_points)
        Mean score of each method at each point.
    ci95 : ndarray of shape (n_methods, n_points)
        Half-width of the 95% confidence interval of each mean (NaN draws no
        band).
    names : list of str of length n_methods
        The methods, as the legend writes them.
    x_name : str, default="k_shot"
        What `x` holds: ``"k_shot"``, ``"n_way"`` or another name; it labels
        the horizontal axis.
    score_name : str, default="Accuracy"
        Label of the vertical axis.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the lines.
    figure_ : matplotlib Figure
        Figure holding the Axes.
    lines_ : list of matplotlib Line2D of length n_methods
        The mean scores of each method.
    fill_between_ : list of matplotlib PolyCollection of length n_methods, \
or None
        The confidence bands; None when plotted with ``ci=False``.

    See Also
    --------
    skmeta.model_selection.episodic_score : Mean score and 95% CI over episodes.
    MetaTrainingDisplay : Learning curves of meta-training.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skmeta import EpisodicScoreDisplay
    >>> display = EpisodicScoreDisplay.from_scores(
    ...     {"protonet": [(0.62, 0.02), (0.81, 0.01)],
    ...      "maml": [(0.58, 0.02), (0.77, 0.02)]},
    ...     x=[1, 5])
    >>> len(display.lines_), display.means.shape
    (2, (2, 2))

    Meta-trained on base classes, compared with a nearest-neighbour baseline on
    new classes, the same episodes for both:

    >>> from sklearn.datasets import make_blobs
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from skmeta import FewShotClassifier, MetaFeatureExtractor
    >>> X, y = make_blobs(600, n_features=8, centers=40, random_state=0)
    >>> base = y < 20
    >>> model = MetaFeatureExtractor(max_iter=20, random_state=0).fit(
    ...     X[base], y[base]).meta_model_
    >>> display = EpisodicScoreDisplay.from_estimators(
    ...     {"protonet": FewShotClassifier(pretrained=model),
    ...      "1-NN": KNeighborsClassifier(n_neighbors=1)},
    ...     X[~base], y[~base], k_shot=[1, 5], n_way=5, n_query=5, n_episodes=20,
    ...     random_state=0)
    >>> display.x, display.means.shape, len(display.fill_between_)
    (array([1, 5]), (2, 2), 2)
    """

    def __init__(
        self, *, x, means, ci95, names, x_name="k_shot", score_name="Accuracy"
    ):
        self.x = x
        self.means = means
        self.ci95 = ci95
        self.names = names
        self.x_name = x_name
        self.score_name = score_name

    def plot(self, ax=None, *, ci=True, line_kw=None, fill_between_kw=None):
        """Plot the mean scores and their confidence bands.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a figure.
        ci : bool, default=True
            Whether to draw the 95% confidence bands.
        line_kw : dict, default=None
            Keyword arguments of ``Axes.plot`` for the mean scores.
        fill_between_kw : dict, default=None
            Keyword arguments of ``Axes.fill_between`` for the bands.

        Returns
        -------
        self : EpisodicScoreDisplay
            With ``ax_``, ``figure_``, ``lines_`` and ``fill_between_`` set.
        """
        x = np.asarray(self.x)
        means = np.atleast_2d(np.asarray(self.means, dtype=float))
        ci95 = np.atleast_2d(np.asarray(self.ci95, dtype=float))
        if x.ndim != 1 or means.shape != (len(self.names), x.size):
            raise ValueError(
                f"means has shape {means.shape}; {len(self.names)} names and "
                f"{x.size} points need ({len(self.names)}, {x.size})."
            )
        if ci95.shape != means.shape:
            raise ValueError(
                f"ci95 has shape {ci95.shape}, means {means.shape}: they must match."
            )
        (ax,) = axes_for(ax, 1)
        self.lines_, self.fill_between_ = [], [] if ci else None
        for name, mean, half in zip(self.names, means, ci95, strict=True):
            (line,) = ax.plot(
                x, mean, **merged({"marker": "o", "label": name}, line_kw)
            )
            self.lines_.append(line)
            if ci:
                style = {"alpha": 0.2, "color": line.get_color(), "linewidth": 0}
                self.fill_between_.append(
                    ax.fill_between(
                        x, mean - half, mean + half, **merged(style, fill_between_kw)
                    )
                )
        ax.set(xlabel=label(self.x_name), ylabel=self.score_name, xticks=x)
        ax.legend()
        self.ax_, self.figure_ = ax, ax.figure
        return self

    @classmethod
    def from_scores(
        cls, scores, *, x, x_name="k_shot", score_name="Accuracy", ax=None, **kwargs
    ):
        """Plot precomputed scores.

        Parameters
        ----------
        scores : dict of str to list of length n_points
            For each method, its score at each point of `x`: an
            :class:`~skmeta.model_selection.EpisodicScore` (what
            :func:`~skmeta.model_selection.episodic_score` returns) or a
            ``(mean, ci95)`` pair.
        x : array-like of shape (n_points,)
            The varied setting at each point.
        x_name : str, default="k_shot"
            What `x` holds; it labels the horizontal axis.
        score_name : str, default="Accuracy"
            Label of the vertical axis.
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a figure.
        **kwargs : dict
            Keyword arguments of :meth:`plot`: ``ci``, ``line_kw``,
            ``fill_between_kw``.

        Returns
        -------
        display : EpisodicScoreDisplay
            The plotted display.
        """
        if not isinstance(scores, Mapping):
            raise TypeError(
                "scores must map each method's name to its scores, e.g. "
                f"{{'protonet': [score_1_shot, score_5_shot]}}; got {type(scores)}."
            )
        x, names = np.asarray(x), list(scores)
        if not names or x.size == 0:
            raise ValueError(
                "from_scores needs at least one method and one point of x; got "
                f"{len(names)} method(s) and x={x.tolist()}."
            )
        for name in names:
            if len(scores[name]) != x.size:
                raise ValueError(
                    f"{name!r} has {len(scores[name])} scores for the {x.size} "
                    "points of x."
                )
        pairs = np.array(
            [[_mean_ci95(score) for score in scores[name]] for name in names],
            dtype=float,
        ).reshape(len(names), -1, 2)
        display = cls(
            x=x,
            means=pairs[..., 0],
            ci95=pairs[..., 1],
            names=names,
            x_name=x_name,
            score_name=score_name,
        )
        return display.plot(ax=ax, **kwargs)

    @classmethod
    def from_estimators(
        cls,
        estimators,
        X,
        y,
        *,
        k_shot=1,
        n_way=5,
        n_query=15,
        n_episodes=100,
        random_state=None,
        scoring=None,
        n_jobs=None,
        score_name=None,
        ax=None,
        groups=None,
        **kwargs,
    ):
        """Evaluate estimators episodically at several shots (or ways) and plot.

        Each point is :func:`~skmeta.model_selection.episodic_score`: every
        episode fits a clone of the estimator on its support set and scores the queries.
        All estimators see the same episodes.

        Parameters
        ----------
        estimators : dict of str to estimator
            The methods to compare, by name: usually
            ``FewShotClassifier(pretrained=model)``, or any scikit-learn
            classifier (a baseline such as ``KNeighborsClassifier``). A skmeta
            estimator without ``pretrained`` is refused.
        X : array-like of shape (n_samples, n_features)
            Rows of classes unseen in meta-training.
        y : array-like of shape (n_samples,)
            Their classes.
        k_shot : int or list of int, default=1
            Support samples per class; a list varies it along the horizontal
            axis.
        n_way : int or list of int, default=5
            Classes per episode; a list varies it instead (then `k_shot` must
            be an int).
        n_query : int, default=15
            Query samples per class.
        n_episodes : int, default=100
            Episodes per point.
        random_state : int, RandomState instance or None, default=None
            Seeds the episodes, the same for every estimator; an int gives
            the episodes ``episodic_score(random_state=...)`` draws.
        scoring : str or callable, default=None
            As for :func:`~skmeta.model_selection.episodic_score`; default: the
            estimator's ``score`` (accuracy).
        n_jobs : int, default=None
            Episodes evaluated in parallel (joblib).
        score_name : str, default=None
            Label of the vertical axis; None writes "Accuracy", or the name of
            `scoring`.
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a figure.
        groups : array-like of shape (n_samples,) or (n_samples, 2), default=None
            Episodes within a group (and, with a second column, the support
            from one source and the queries from another), as for
            :meth:`~skmeta.model_selection.EpisodicSplit.split`.

            .. versionadded:: 0.1
        **kwargs : dict
            Keyword arguments of :meth:`plot`: ``ci``, ``line_kw``,
            ``fill_between_kw``.

        Returns
        -------
        display : EpisodicScoreDisplay
            The plotted display.
        """
        if not isinstance(estimators, Mapping):
            raise TypeError(
                "estimators must map names to estimators, e.g. "
                "{'protonet': FewShotClassifier(pretrained=model)}; got "
                f"{type(estimators)}."
            )
        if np.ndim(k_shot) and np.ndim(n_way):
            raise ValueError(
                "Vary k_shot or n_way, not both: give a list for one and an int "
                "for the other."
            )
        x_name = "n_way" if np.ndim(n_way) else "k_shot"
        x = np.atleast_1d(n_way if np.ndim(n_way) else k_shot)
        if x.size == 0 or not all(
            isinstance(v, Integral) and v >= 1 for v in x.tolist()
        ):
            raise ValueError(
                f"{x_name} must be a positive int or a non-empty list of them; "
                f"got {x.tolist()}."
            )
        for name, estimator in estimators.items():
            _check_episode_estimator(name, estimator)
        if not isinstance(random_state, Integral):
            random_state = check_random_state(random_state).randint(2**31 - 1)
        episodes = {"n_way": n_way, "k_shot": k_shot, "n_query": n_query}
        scores = {
            name: [
                episodic_score(
                    estimator,
                    X,
                    y,
                    **{**episodes, x_name: int(value)},
                    n_episodes=n_episodes,
                    random_state=random_state,
                    scoring=scoring,
                    n_jobs=n_jobs,
                    groups=groups,
                )
                for value in x
            ]
            for name, estimator in estimators.items()
        }
        if score_name is None:
            score_name = "Score" if callable(scoring) else label(scoring or "accuracy")
        return cls.from_scores(
            scores, x=x, x_name=x_name, score_name=score_name, ax=ax, **kwargs
        )
