"""FewShotRegressor: adapts to a new regression task from a few examples."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin

from ._base import MetaEstimator
from ._fast_checks import check_fitted
from ._targets import warn_on_target_scale
from ._tasks import REGRESSION
from ._typing import ArrayLike, Self

__all__ = ["FewShotRegressor"]


class FewShotRegressor(RegressorMixin, MetaEstimator):
    """Few-shot regressor: follows a new function from a handful of points.

    Tasks are given the scikit-learn way, as ``groups`` (as for ``GroupKFold``):
    rows that share a group value form one task, e.g. one sine wave of
    :func:`skmeta.datasets.make_sinusoid_tasks`. Without ``pretrained``,
    :meth:`fit` meta-trains over those tasks (MAML-style: an initialisation from
    which a few gradient steps fit any one task), then adapts to all of
    ``(X, y)``; without ``groups`` all rows are one task, which makes it a plain
    regressor. With ``pretrained``, :meth:`fit` adapts to ``(X, y)`` as a new
    task -- a few gradient steps, milliseconds -- and :meth:`predict` follows it.

    The parameters are those of :class:`FewShotClassifier`, with the same
    rules: no setting is silently ignored.

    .. versionadded:: 0.1

    Parameters
    ----------
    method : str, default=None
        A method that does regression: a name from
        ``skmeta.available_methods("regression")``. None means ``"maml"``, or
        the method of `pretrained`.
    backbone : {"auto", "mlp"} or callable, default="auto"
        The network before the linear output (``"auto"``: ``"mlp"``); see
        :class:`FewShotClassifier`.
    backbone_params : dict, default=None
        E.g. ``{"hidden_sizes": (40, 40), "out_features": 40}``: MAML's two
        hidden ReLU layers of 40 units, then a linear 40-unit embedding
        before the output (one linear layer more than MAML's 1-40-40-1), on
        inputs the network standardises.
    class_augmentation : None
        Classification only, refused unless None: there are no classes to
        rotate.
    augmentation : {"features"}, FeatureAugmentation, callable or list, default=None
        Data augmentation during meta-training, as for
        :class:`FewShotClassifier`.
    input_shape, distance : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    inner_lr, inner_steps : float, int, default=None
        The inner loop, as for :class:`FewShotClassifier`; None means an inner
        learning rate of 0.01 (MAML's sinusoid setting) and, when
        meta-training, 1 inner step (MAML's sinusoid setting; 5 for Reptile),
        and the meta-training values with `pretrained`.
    first_order, method_params : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    transductive, transductive_params : None
        Classification only, refused unless None.
    n_way : None
        Classification only, refused unless None: an episode is one task.
    k_shot, n_query : int, default=None
        Rows of a task used to adapt (support) and to score the adaptation
        (query) in meta-training. None: up to 10 and 10, fewer for small tasks.
    within_group_episodes : 0, default=0.0
        Classification only, refused unless 0: a regressor's groups are its
        tasks, and an episode is one of them.
    meta_batch_size, max_iter, learning_rate : see FewShotClassifier
        As for :class:`FewShotClassifier`; `meta_batch_size` counts tasks,
        and None means 25 when `groups` holds several tasks, else 1. On sine
        waves, one task per meta-update left the defaults at a 5-shot MSE of
        1.33, against 0.56 with 25 (``benchmarks/results/defaults.md``).
    max_grad_norm : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    normalize_y : bool, default=False
        Standardise the targets for meta-training: subtract their mean and
        divide by their standard deviation (over all tasks), which the model
        records. Every adaptation (``fit`` with `pretrained`, and the end of
        meta-training's ``fit``) then standardises its targets by those same
        two numbers, and :meth:`predict` scales back, so `y` and the
        predictions stay in the user's units. Set it when `y` is far from
        mean 0 and deviation 1 (``fit`` warns then): the inner loop's step
        sizes and Adam's assume about unit scale. With `pretrained`, the
        model's recorded choice applies. The meta-training history's losses
        are then in standardised units.
    early_stopping : see FewShotClassifier
        As for :class:`FewShotClassifier`, on held-out tasks: the weights
        kept are those of the lowest validation loss, the mean squared error
        on the held-out tasks' queries (``val_loss``, as ``val_mse``).
    calibrate : {"auto", False}, default="auto"
        Classification only: a regressor never calibrates, and ``True`` is
        refused.
    validation_fraction : see FewShotClassifier
        As for :class:`FewShotClassifier`; it holds out tasks.
    n_iter_no_change, n_jobs, precision : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    warm_start, checkpoint, checkpoint_every : see FewShotClassifier
        Continuing meta-training from the fitted model, and checkpoints to
        resume an interrupted run from, as for :class:`FewShotClassifier`.
    unknown_label, rejection_rate : None
        Classification only, refused unless None.
    replay_per_class : None
        For ``partial_fit``, which the regressor does not have: refused unless
        None.
    test_time_shifts, test_time_turns : None, False
        Refused unless None and False: the regression methods adapt the
        network's layers themselves, which test-time augmentation of
        embeddings cannot serve.
    pretrained : see FewShotClassifier
        As for :class:`FewShotClassifier`.
    device, random_state, verbose : see FewShotClassifier
        As for :class:`FewShotClassifier`.

    Attributes
    ----------
    meta_model_ : MetaModel
        The meta-trained model (``pretrained`` itself when given; never modified).
    adapted_ : dict
        The adapted weights of the last ``fit``.
    n_iter_, best_iter_, history_, n_features_in_, feature_names_in_ : \
see FewShotClassifier
        Meta-training iterations behind ``meta_model_`` (0 with
        ``pretrained``; counted on with `warm_start`), the iteration whose
        weights `early_stopping` kept (None without it), the meta-training
        log, and the number and names of the features.

    See Also
    --------
    FewShotClassifier : The same for classes.

    Examples
    --------
    >>> from skmeta import FewShotRegressor
    >>> from skmeta.datasets import make_sinusoid_tasks
    >>> X, y, groups = make_sinusoid_tasks(200, 20, random_state=0)
    >>> meta = FewShotRegressor(k_shot=5, max_iter=50, random_state=0)
    >>> meta = meta.fit(X, y, groups=groups)
    >>> X_new, y_new, _ = make_sinusoid_tasks(1, 5, random_state=1)
    >>> reg = FewShotRegressor(pretrained=meta.meta_model_).fit(X_new, y_new)
    >>> reg.predict(X_new).shape
    (5,)
    """

    _task = REGRESSION

    def fit(self, X: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None) -> Self:
        """Meta-train over the tasks in `groups`, or adapt `pretrained` to (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of the tasks (meta-training), or of the one new task.
        y : array-like of shape (n_samples,)
            Real-valued targets, one per row (a 2-D `y` is refused: for
            several targets, wrap the regressor in scikit-learn's
            ``MultiOutputRegressor``, which passes `groups` on to each).
        groups : array-like of shape (n_samples,), default=None
            Task of each row, for meta-training (with `pretrained`, all rows
            are the one new task and ``fit`` warns). None: one task. Inside
            ``cross_validate`` or ``GridSearchCV``, `groups` reach ``fit`` only
            through scikit-learn's metadata routing
            (``sklearn.set_config(enable_metadata_routing=True)`` and
            ``reg.set_fit_request(groups=True)``); without it they reach only
            the splitter, and each fold meta-trains on one task. To score a
            pretrained regressor task by task, use
            :class:`~skmeta.model_selection.TaskSplit` as `cv`.

        Returns
        -------
        self : FewShotRegressor
            The fitted regressor.
        """
        X, y = self._fit_meta_model(X, y, groups)
        if self.pretrained is not None:
            warn_on_target_scale(self.meta_model_, y)
        self._adapt(X, y)
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predict with the model adapted in ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows of the task.

        Returns
        -------
        ndarray of shape (n_samples,)
            Float32 like the network (see ``docs/design.md`` on float32 outputs).
        """
        check_fitted(self)
        return self._outputs(X)[:, 0]
