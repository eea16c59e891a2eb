"""Learning curves of meta-training, from an estimator's ``history_``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import axes_for, label, merged

__all__ = ["MetaTrainingDisplay"]

# What every record holds besides the method's metric ("accuracy", "mse"):
# skmeta.meta.callbacks.History and GradientClipping write them.
_NOT_METRICS = {"iter", "loss", "learning_rate", "elapsed", "grad_norm"}


def _recorded_metric(history: Sequence[Mapping]) -> str | None:
    """The method's metric: the first key of the first record that is neither
    a bookkeeping entry nor a validation one."""
    for key in history[0] if history else ():
        if key not in _NOT_METRICS and not key.startswith("val_"):
            return key
    return None


class MetaTrainingDisplay:
    """Meta-training learning curves: loss, metric and validation.

    It is recommended to use :meth:`from_estimator` (or :meth:`from_model`,
    :meth:`from_history`) to create a display. All parameters are stored as
    attributes. Each quantity is drawn on its own Axes against the
    meta-training iteration: the training curve (the mean over the episodes
    since the previous record), the validation curve dashed in the same colour
    when early stopping recorded one, and a dotted vertical line at the
    iteration whose weights early stopping kept.

    .. versionadded:: 0.1

    Parameters
    ----------
    history : list of dict of length n_records
        The records of meta-training, as an estimator's ``history_``: each
        maps ``"iter"`` (the iteration) to ``"loss"``, the method's metric
        (``"accuracy"`` or ``"mse"``), ``"learning_rate"``, ``"elapsed"``,
        ``"grad_norm"`` (with ``max_grad_norm``) and, with early stopping,
        ``"val_loss"`` and ``"val_<metric>"``.
    metric : str, default=None
        The method's metric, drawn beside the loss; None reads it from the
        records.
    best_iter : int, default=None
        The iteration whose weights early stopping kept, marked on every
        Axes; None marks none.
    name : str, default=None
        Written before "training" and "validation" in the legends, to tell
        several models apart on the same Axes.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes of shape (n_curves,)
        One Axes per plotted quantity, in the order of ``curves``.
    ax_ : matplotlib Axes
        The first of them (``axes_[0]``), the loss by default.
    figure_ : matplotlib Figure
        The figure holding the Axes.
    lines_ : dict of str to matplotlib Line2D
        The curve of each plotted key of the records: ``"loss"``,
        ``"val_loss"``, the metric and its validation, ...
    best_lines_ : list of matplotlib Line2D of length n_curves, or None
        The vertical line at `best_iter` on each Axes; None without
        `best_iter`.

    See Also
    --------
    EpisodicScoreDisplay : Few-shot accuracy against shots or ways.
    sklearn.model_selection.LearningCurveDisplay : Score against training size.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import make_blobs
    >>> from skmeta import MetaFeatureExtractor, MetaTrainingDisplay
    >>> X, y = make_blobs(300, n_features=8, centers=12, random_state=0)
    >>> extractor = MetaFeatureExtractor(
    ...     n_way=5, max_iter=20, early_stopping=True, validation_fraction=0.25,
    ...     random_state=0).fit(X, y)
    >>> display = MetaTrainingDisplay.from_estimator(extractor)
    >>> sorted(display.lines_)
    ['accuracy', 'loss', 'val_accuracy', 'val_loss']
    >>> display.axes_.shape, display.best_iter <= extractor.n_iter_
    ((2,), True)
    """

    def __init__(self, *, history, metric=None, best_iter=None, name=None):
        self.history = history
        self.metric = metric
        self.best_iter = best_iter
        self.name = name

    def _columns(self, curves, validation) -> tuple[list[str], set[str]]:
        """The keys to plot and the keys the records hold, checked."""
        if not self.history:
            raise ValueError(
                "The history is empty: there is nothing to plot (a model made by "
                "MetaModel.from_module was never meta-trained)."
            )
        keys = set().union(*self.history)
        metric = self.metric or _recorded_metric(self.history)
        if curves is None:
            curves = ["loss"] if metric is None else ["loss", metric]
        curves = [curves] if isinstance(curves, str) else list(curves)
        missing = [key for key in [*curves, "iter"] if key not in keys]
        if missing:
            raise ValueError(
                f"The history has no {', '.join(map(repr, missing))}; its records "
                f"hold {', '.join(sorted(keys))}."
            )
        if validation not in (True, False, "auto"):
            raise ValueError(f"validation={validation!r}: use True, False or 'auto'.")
        if validation is True and not any(k.startswith("val_") for k in keys):
            raise ValueError(
                "The history has no validation records (val_loss, ...): "
                "meta-train with early_stopping=True to record them, or pass "
                "validation=False."
            )
        return curves, keys if validation else set()

    def _column(self, key: str) -> np.ndarray:
        """The values of `key` over the records, of shape (n_records,)."""
        return np.array([record.get(key, np.nan) for record in self.history], float)

    def plot(
        self,
        ax=None,
        *,
        curves=None,
        validation="auto",
        line_kw=None,
        val_line_kw=None,
        best_line_kw=None,
    ):
        """Plot the learning curves.

        Parameters
        ----------
        ax : matplotlib Axes or array-like of matplotlib Axes, default=None
            One Axes per curve (a single Axes for one curve); None creates a
            figure with one row of Axes. Pass the ``axes_`` of another display
            to draw two models on the same Axes.
        curves : str or list of str, default=None
            The keys of the records to plot, each on its own Axes:
            ``"loss"``, ``"accuracy"``, ``"mse"``, ``"learning_rate"``,
            ``"grad_norm"``... None plots the loss and the metric.
        validation : bool or "auto", default="auto"
            Whether to draw the validation curve (``"val_<key>"``) beside
            each training curve that has one. True raises a ``ValueError``
            when the history holds no validation records; "auto" draws them
            when it does.
        line_kw : dict, default=None
            Keyword arguments of ``Axes.plot`` for the training curves.
        val_line_kw : dict, default=None
            Keyword arguments of ``Axes.plot`` for the validation curves.
        best_line_kw : dict, default=None
            Keyword arguments of ``Axes.axvline`` for the best-iteration line.

        Returns
        -------
        self : MetaTrainingDisplay
            With ``axes_``, ``ax_``, ``figure_``, ``lines_`` and
            ``best_lines_`` set.
        """
        curves, keys = self._columns(curves, validation)
        if self.best_iter is not None and not isinstance(self.best_iter, Integral):
            raise TypeError(f"best_iter={self.best_iter!r} must be an int or None.")
        axes = axes_for(ax, len(curves))
        iters = self._column("iter")
        prefix = f"{self.name} " if self.name else ""
        self.lines_ = {}
        self.best_lines_ = None if self.best_iter is None else []
        for axis, key in zip(axes, curves, strict=True):
            (line,) = axis.plot(
                iters,
                self._column(key),
                **merged({"label": f"{prefix}training"}, line_kw),
            )
            self.lines_[key] = line
            if f"val_{key}" in keys:
                style = {
                    "label": f"{prefix}validation",
                    "color": line.get_color(),
                    "linestyle": "--",
                }
                (self.lines_[f"val_{key}"],) = axis.plot(
                    iters, self._column(f"val_{key}"), **merged(style, val_line_kw)
                )
            if self.best_iter is not None:
                style = {
                    "label": f"best iteration ({self.best_iter})",
                    "color": "0.3",
                    "linestyle": ":",
                }
                self.best_lines_.append(
                    axis.axvline(self.best_iter, **merged(style, best_line_kw))
                )
            axis.set(xlabel="Meta-training iteration", ylabel=label(key))
            axis.legend()
        self.axes_, self.ax_, self.figure_ = axes, axes[0], axes[0].figure
        return self

    @classmethod
    def from_history(
        cls, history, *, metric=None, best_iter=None, name=None, ax=None, **kwargs
    ):
        """Plot learning curves from a list of records.

        Parameters
        ----------
        history : list of dict of length n_records
            The records, as an estimator's ``history_`` or a
            :class:`~skmeta.MetaModel`'s ``history``.
        metric : str, default=None
            The method's metric; None reads it from the records.
        best_iter : int, default=None
            The iteration to mark as the one whose weights were kept.
        name : str, default=None
            Written before "training" and "validation" in the legends.
        ax : matplotlib Axes or array-like of matplotlib Axes, default=None
            Where to draw, as for :meth:`plot`.
        **kwargs : dict
            Keyword arguments of :meth:`plot`: ``curves``, ``validation``,
            ``line_kw``, ``val_line_kw``, ``best_line_kw``.

        Returns
        -------
        display : MetaTrainingDisplay
            The plotted display.
        """
        history = [dict(record) for record in history]
        display = cls(history=history, metric=metric, best_iter=best_iter, name=name)
        return display.plot(ax=ax, **kwargs)

    @classmethod
    def from_model(cls, model, *, name=None, ax=None, **kwargs):
        """Plot the learning curves of a meta-trained model.

        The best iteration is marked when the model was meta-trained with
        early stopping (``model.config["training"]["best_iter"]``).

        Parameters
        ----------
        model : MetaModel
            A meta-trained model, for instance an estimator's ``meta_model_``
            or one read by :meth:`MetaModel.load <skmeta.MetaModel.load>`.
        name : str, default=None
            Written before "training" and "validation" in the legends; None
            writes the model's method.
        ax : matplotlib Axes or array-like of matplotlib Axes, default=None
            Where to draw, as for :meth:`plot`.
        **kwargs : dict
            Keyword arguments of :meth:`plot`: ``curves``, ``validation``,
            ``line_kw``, ``val_line_kw``, ``best_line_kw``.

        Returns
        -------
        display : MetaTrainingDisplay
            The plotted display.
        """
        return cls._from_model_records(model, model.thawed_history(), name, ax, kwargs)

    @classmethod
    def from_estimator(cls, estimator, *, name=None, ax=None, **kwargs):
        """Plot the learning curves of a fitted estimator's ``history_``.

        Parameters
        ----------
        estimator : FewShotClassifier, MetaFeatureExtractor or FewShotRegressor
            A fitted estimator. With ``pretrained=``, its history is the
            pretrained model's.
        name : str, default=None
            Written before "training" and "validation" in the legends; None
            writes the meta-learning method.
        ax : matplotlib Axes or array-like of matplotlib Axes, default=None
            Where to draw, as for :meth:`plot`.
        **kwargs : dict
            Keyword arguments of :meth:`plot`: ``curves``, ``validation``,
            ``line_kw``, ``val_line_kw``, ``best_line_kw``.

        Returns
        -------
        display : MetaTrainingDisplay
            The plotted display.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            When `estimator` is not fitted.
        TypeError
            When `estimator` is not a skmeta estimator (a ``Pipeline``, for
            instance).
        """
        from .._base import MetaEstimator

        if not (isinstance(estimator, MetaEstimator) or hasattr(estimator, "history_")):
            raise TypeError(
                "from_estimator takes a FewShotClassifier, MetaFeatureExtractor or "
                f"FewShotRegressor, not a {type(estimator).__name__}; for a "
                "Pipeline, pass its skmeta step (pipe.named_steps[name])."
            )
        check_is_fitted(estimator, ["history_", "meta_model_"])
        return cls._from_model_records(
            estimator.meta_model_, estimator.history_, name, ax, kwargs
        )

    @classmethod
    def _from_model_records(cls, model, history, name, ax, kwargs):
        """Plot `history`, the records of `model`: the iteration early stopping
        kept is marked, and the method names the curves unless `name` does."""
        training = model.config.get("training", {})
        best = training.get("best_iter") if training.get("early_stopping") else None
        return cls.from_history(
            history,
            best_iter=None if best is None else int(best),
            name=model.method if name is None else name,
            ax=ax,
            **kwargs,
        )
