"""FewShotRegressor: adapts to a new regression task from a few examples."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._base import (
    META_PARAMETER_CONSTRAINTS,
    MetaLearnerMixin,
    check_input_shape,
    load_pretrained,
    resolve_device,
)
from ._sklearn_compat import StrOptions

__all__ = ["FewShotRegressor"]

REGRESSION_METHODS = ("maml", "fomaml", "metasgd", "anil", "reptile")
DEFAULT_K_SHOT, DEFAULT_N_QUERY, DEFAULT_INNER_LR = 10, 10, 0.01


class FewShotRegressor(MetaLearnerMixin, RegressorMixin, BaseEstimator):
    """Few-shot regressor: follows a new function from a handful of points.

    Tasks are given the scikit-learn way, as ``groups`` (as for ``GroupKFold``):
    rows that share a group value form one task, e.g. one sine wave of
    :func:`skmeta.datasets.make_sinusoid_tasks`. Without ``pretrained``,
    :meth:`fit` meta-trains over those tasks (MAML-style: an initialisation from
    which a few gradient steps fit any one task), then adapts to all of
    ``(X, y)``; without ``groups`` all rows are one task, which makes it a plain
    regressor. With ``pretrained``, :meth:`fit` adapts to ``(X, y)`` as a new
    task -- a few gradient steps, milliseconds -- and :meth:`predict` follows it.

    .. versionadded:: 0.1

    Parameters
    ----------
    method : {"maml", "fomaml", "metasgd", "anil", "reptile"}, default=None
        None means ``"maml"``, or the method of `pretrained`.
    backbone : {"auto", "mlp"} or callable, default="auto"
        The network before the linear output; see ``FewShotClassifier``.
    backbone_params : dict, default=None
        E.g. ``{"hidden_sizes": (40, 40), "out_features": 40}`` (MAML's
        sinusoid network).
    input_shape : tuple of int, default=None
    inner_lr, inner_steps, first_order : float, int, bool, default=None
        The inner loop. None means 0.01, 1 and the method's own when
        meta-training, and the meta-training values with `pretrained`; with
        `pretrained` they change only the adaptation in ``fit``.
    k_shot, n_query : int, default=None
        Rows of a task used to adapt (support) and to score the adaptation
        (query) in meta-training. None: up to 10 and 10, fewer for small tasks.
    meta_batch_size : int, default=1
        Tasks per meta-update.
    max_iter, learning_rate, max_grad_norm, early_stopping, \\
validation_fraction, n_iter_no_change, pretrained, device, random_state, verbose
        As for ``FewShotClassifier``; `validation_fraction` holds out tasks.

    Attributes
    ----------
    meta_model_ : MetaModel
    adapted_ : dict
        The adapted weights of the last ``fit``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
    n_iter_ : int
    history_ : list of dict

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

    _parameter_constraints: dict = {
        **{
            name: constraint
            for name, constraint in META_PARAMETER_CONSTRAINTS.items()
            if name not in ("n_way", "distance", "class_augmentation")
        },
        "method": [StrOptions(set(REGRESSION_METHODS)), None],
        "backbone": [StrOptions({"auto", "mlp"}), callable],
    }

    def __init__(
        self,
        *,
        method=None,
        backbone="auto",
        backbone_params=None,
        input_shape=None,
        inner_lr=None,
        inner_steps=None,
        first_order=None,
        k_shot=None,
        n_query=None,
        meta_batch_size=1,
        max_iter=1000,
        learning_rate=1e-3,
        max_grad_norm=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        pretrained=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.method = method
        self.backbone = backbone
        self.backbone_params = backbone_params
        self.input_shape = input_shape
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.k_shot = k_shot
        self.n_query = n_query
        self.meta_batch_size = meta_batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.pretrained = pretrained
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y, groups=None):
        """Meta-train over the tasks in `groups`, or adapt `pretrained` to (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Real-valued targets.
        groups : array-like of shape (n_samples,), default=None
            Task of each row (meta-training only). None: one task.

        Returns
        -------
        self : FewShotRegressor
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True)
        y = y.astype(np.float32)
        if self.pretrained is not None:
            self.meta_model_ = self._check_pretrained(
                load_pretrained(self.pretrained), X.shape[1]
            )
            if not self.meta_model_.algorithm().regression:
                raise ValueError(
                    f"The pretrained model was meta-trained for classification "
                    f"(method={self.meta_model_.method!r}); FewShotRegressor needs "
                    "one meta-trained by a FewShotRegressor."
                )
            self.n_iter_ = 0
        else:
            self.meta_model_ = self._meta_train_regression(X, y, groups)
        self.history_ = [dict(record) for record in self.meta_model_.history]
        self.adapted_ = self.meta_model_.adapt(
            self._algorithm(), X, y, 1, resolve_device(self.device)
        )
        return self

    def _meta_train_regression(self, X, y, groups):
        if groups is None:
            codes = np.zeros(len(y), dtype=np.int64)
        else:
            groups = column_or_1d(groups)
            if len(groups) != len(y):
                raise ValueError(
                    f"groups has {len(groups)} values but X has {len(y)} rows."
                )
            codes = np.unique(groups, return_inverse=True)[1]
        smallest = int(np.bincount(codes).min())
        k_shot = self.k_shot or max(1, min(DEFAULT_K_SHOT, smallest // 2))
        n_query = self.n_query or max(1, min(DEFAULT_N_QUERY, smallest - k_shot))
        if k_shot + n_query > smallest:
            raise ValueError(
                f"Each task (group) needs k_shot + n_query = {k_shot + n_query} rows; "
                f"the smallest has {smallest} (n_samples={len(y)}). Lower k_shot or "
                "n_query, or give bigger tasks."
            )
        method = self.method or "maml"
        params = {
            name: getattr(self, name)
            for name in ("inner_lr", "inner_steps", "first_order")
            if getattr(self, name) is not None
        }
        params.setdefault("inner_lr", DEFAULT_INNER_LR)
        settings = self._train_settings(
            n_way=1,
            k_shot=k_shot,
            n_query=n_query,
            input_shape=check_input_shape(self.input_shape, X.shape[1]),
            method=method,
            method_params={**params, "regression": True},
        )
        return self._run_meta_training(X, codes, settings, targets=y)

    def predict(self, X):
        """Predictions of the adapted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), float32
            Like the network (see ``docs/design.md`` on float32 outputs).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        out = self.meta_model_.predict(
            self._algorithm(), self.adapted_, X, resolve_device(self.device)
        )
        return out[:, 0]
