"""The flow every skmeta estimator shares: parameters, their checks, reusing a
``pretrained`` model or meta-training one, and the bridge to the torch layer.

What differs between classification and regression is a task object
(``_tasks.py``); what differs between the estimators is their public methods.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, is_classifier, is_regressor

from ._checks import (
    check_feature_names,
    load_pretrained,
    pretrained_file_version,
    refuse_bool_counts,
    resolve_device,
)
from ._fast_checks import checked_rows
from ._ignored_features import warn_if_ignored_features_vary
from ._input_scale import warn_if_off_scale, warn_if_queries_off_scale
from ._meta_training import meta_train_estimator
from ._method_settings import MethodSettings
from ._parameters import META_TRAINING_PARAMETERS, PARAMETER_CONSTRAINTS, init_defaults
from ._tasks import CLASSIFICATION
from ._test_time import check_views, check_views_unchanged, test_time_views
from ._transductive import (
    UNLABELLED,
    check_transductive,
    transduce,
    transductive_scores,
)
from .meta.algorithms import ALGORITHMS
from .meta.model import MetaModel

# the key of __getstate__'s model file version, dropped by __setstate__
_FILE_VERSION = "_pretrained_file_version"


class MetaEstimator(MethodSettings, BaseEstimator):
    """Base class of the skmeta estimators: one set of parameters, one fit flow.

    The parameters are documented in ``FewShotClassifier``. Subclasses set
    ``_task`` (classification or regression, ``_tasks.py``) and write their
    public methods on ``_fit_meta_model``, ``_adapt`` and ``_outputs``.
    """

    _task = CLASSIFICATION

    _get_param_names = classmethod(lambda cls: list(init_defaults(cls)))  # cached

    def __init__(
        self,
        *,
        method=None,
        backbone="auto",
        backbone_params=None,
        class_augmentation=None,
        augmentation=None,
        input_shape=None,
        distance=None,
        inner_lr=None,
        inner_steps=None,
        first_order=None,
        method_params=None,
        transductive=None,
        transductive_params=None,
        n_way=None,
        k_shot=None,
        n_query=None,
        within_group_episodes=0.0,
        meta_batch_size=None,
        max_iter=1000,
        learning_rate=None,
        max_grad_norm=None,
        normalize_y=False,
        early_stopping=False,
        calibrate="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        n_jobs=None,
        precision="float32",
        warm_start=False,
        checkpoint=None,
        checkpoint_every=None,
        unknown_label=None,
        rejection_rate=None,
        replay_per_class=None,
        test_time_shifts=None,
        test_time_turns=False,
        pretrained=None,
        device="auto",
        random_state=None,
        verbose=0,
    ) -> None:
        self.method = method
        self.backbone = backbone
        self.backbone_params = backbone_params
        self.class_augmentation = class_augmentation
        self.augmentation = augmentation
        self.input_shape = input_shape
        self.distance = distance
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.method_params = method_params
        self.transductive = transductive
        self.transductive_params = transductive_params
        self.n_way = n_way
        self.k_shot = k_shot
        self.n_query = n_query
        self.within_group_episodes = within_group_episodes
        self.meta_batch_size = meta_batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_grad_norm = max_grad_norm
        self.normalize_y = normalize_y
        self.early_stopping = early_stopping
        self.calibrate = calibrate
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_jobs = n_jobs
        self.precision = precision
        self.warm_start = warm_start
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.unknown_label = unknown_label
        self.rejection_rate = rejection_rate
        self.replay_per_class = replay_per_class
        self.test_time_shifts = test_time_shifts
        self.test_time_turns = test_time_turns
        self.pretrained = pretrained
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- pickling ---------------------------------------------------------------
    def __getstate__(self) -> dict:
        """scikit-learn's state, plus the version (mtime_ns, size) of the
        model file a `pretrained` path names, so that what joblib hashes
        (``Pipeline(memory=...)``) changes with the file: the path alone
        would keep a cached step of a replaced file."""
        state = super().__getstate__()
        version = pretrained_file_version(self.__dict__.get("pretrained"))
        if version is None:
            return state
        return {**state, _FILE_VERSION: version}  # a copy: never the __dict__

    def __setstate__(self, state: dict) -> None:
        state = {key: value for key, value in state.items() if key != _FILE_VERSION}
        super().__setstate__(state)

    @property
    def _parameter_constraints(self) -> dict:
        # read at each fit: the method options come from the registry
        return {**PARAMETER_CONSTRAINTS, **self._task.constraints()}

    @property
    def _adapts(self) -> bool:
        """Whether ``fit`` adapts to (X, y) (classifier, regressor) or not."""
        return is_classifier(self) or is_regressor(self)

    # -- fit ------------------------------------------------------------------
    def _fit_meta_model(self, X, y, groups=None, classes=None):
        """Check parameters and data, then reuse `pretrained` or meta-train.

        Sets ``meta_model_``, ``n_iter_``, ``best_iter_`` and ``history_``;
        returns X and y as adaptation takes them (y: class codes or float
        targets). `classes`: the labels ``partial_fit`` declares (a superset
        of y's). `groups`: the tasks of a regressor, the groups of
        `within_group_episodes` of a classifier or extractor.
        """
        self._validate_params()
        refuse_bool_counts(self)
        X, y, labels = self._task.validate(self, X, y, groups, classes)
        if self.pretrained is None:
            group_codes = self._task.episode_groups(self, groups, labels)
            method = self.method or self._task.default_method
            settings = self._training_settings(method)
            self._transducer = check_transductive(self, method)
            embeds_only = not self._adapts or self._transducer is not None
            method_class = None if embeds_only else ALGORITHMS[method]
            shifts, turns = self.test_time_shifts, self.test_time_turns
            check_views(shifts, turns, self.input_shape, method_class)
            targets = y if self._task.regression else None
            X_train, labels_train = X, labels
            if labels is not None and (labels == UNLABELLED).any():
                labelled = labels != UNLABELLED  # meta-training learns from these
                X_train, labels_train = X[labelled], labels[labelled]
                if group_codes is not None:
                    group_codes = group_codes[labelled]
            self.meta_model_ = self._meta_train(
                X_train, labels_train, targets, method, settings, group_codes
            )
            self._overrides = {}
        else:
            model = self._check_pretrained(
                load_pretrained(self.pretrained, self._custom_backbone()), X.shape[1]
            )
            self._transducer = check_transductive(self, model.method)
            self._overrides, ignored = self._adaptation_settings(model)
            self._warn_ignored([*ignored, *(["groups"] if groups is not None else [])])
            self.meta_model_ = model
            self.n_iter_, self.best_iter_ = 0, None
        self.history_ = [dict(record) for record in self.meta_model_.history]
        return X, y

    def _custom_backbone(self):
        """`backbone` when it rebuilds a custom-backbone model from a file
        (`pretrained` a path, `backbone` a module class, factory or instance)."""
        if isinstance(self.pretrained, MetaModel) or isinstance(self.backbone, str):
            return None
        return self.backbone

    def _check_pretrained(self, model: MetaModel, n_features: int) -> MetaModel:
        """Refuse a pretrained model that does not fit X or the parameters."""
        if model.n_features != n_features:
            raise ValueError(
                f"X has {n_features} features, but the pretrained model expects "
                f"{model.n_features} (input_shape={model.input_shape})."
            )
        if (
            self.input_shape is not None
            and tuple(self.input_shape) != model.input_shape
        ):
            raise ValueError(
                f"input_shape={tuple(self.input_shape)} differs from the "
                f"pretrained model's {model.input_shape}; leave input_shape=None."
            )
        if self.method is not None and self.method != model.method:
            raise ValueError(
                f"method={self.method!r} differs from the pretrained model's "
                f"{model.method!r}; leave method=None to use it."
            )
        if self._adapts:
            self._task.check_model(model, self)
        check_feature_names(self, model)
        return model

    def _warn_ignored(self, extra: list[str]) -> None:
        """One warning naming the meta-training settings `pretrained` overrides
        (those left at their defaults are not named)."""
        params = self.get_params(deep=False)
        defaults = init_defaults(type(self))
        used = {"backbone"} if self._custom_backbone() is not None else set()
        ignored = [
            f"{name}={params[name]!r}"
            for name in META_TRAINING_PARAMETERS
            if params[name] != defaults[name] and name not in used
        ] + extra
        if ignored:
            warnings.warn(
                f"{type(self).__name__} reuses the pretrained model, so these "
                f"meta-training settings are ignored: {', '.join(ignored)}. Leave "
                "them at their defaults, or drop pretrained= to meta-train.",
                UserWarning,
                stacklevel=4,
            )

    def _seen(self) -> dict:
        """Class and feature names, and an int random_state, for the provenance."""
        classes = getattr(self, "_seen_classes", None)
        features = getattr(self, "feature_names_in_", None)
        seeded = isinstance(self.random_state, int | np.integer)
        return {
            "random_state": int(self.random_state) if seeded else None,
            "class_names": None if classes is None else [str(c) for c in classes],
            "feature_names": None if features is None else [str(f) for f in features],
        }

    def _meta_train(
        self, X, labels, targets, method, settings, groups=None
    ) -> MetaModel:
        """Meta-train on X with episodes drawn from `labels` (class or task
        codes), those of `within_group_episodes` within the `groups` codes
        (``_meta_training.py``)."""
        return meta_train_estimator(self, X, labels, targets, method, settings, groups)

    def _calibrates(self) -> bool:
        """Whether meta-training calibrates on held-out classes: ``True``, or
        ``"auto"`` with `early_stopping` (never for regression)."""
        auto = self.calibrate == "auto" and bool(self.early_stopping)
        return not self._task.regression and (self.calibrate is True or auto)

    # -- adaptation and prediction ----------------------------------------------
    def _algorithm(self):
        """The meta-model's method with the adaptation settings of ``fit``."""
        return self.meta_model_.algorithm(**self._overrides)

    def _adapt(self, X: np.ndarray, y: np.ndarray) -> None:
        """Adapt the meta-model to (X, y), the checked output of ``fit``
        (transductively when `transductive` is set: y is -1 on unlabelled rows)."""
        # X as checked (float32, float64 or uint8): inference converts blocks
        warn_if_ignored_features_vary(self, X)
        warn_if_off_scale(self, X)
        self._fitted_views = views = test_time_views(self)
        if self._transducer is not None:
            transduce(self, X, y, views)
            return
        self.__dict__.pop("transduction_", None)  # from an earlier transductive fit
        self.adapted_ = self.meta_model_.adapt(
            self._algorithm(), X, y, self._task.n_outputs(self), self._device(), views
        )

    def _outputs(self, X) -> np.ndarray:
        """The adapted model's outputs (class scores, or predictions) for X."""
        # uint8 rows (images, a memory map) stay so: converted a block at a time
        X = checked_rows(self, X)
        warn_if_ignored_features_vary(self, X)
        warn_if_queries_off_scale(self, X)  # the first call's rows
        views = test_time_views(self)
        check_views_unchanged(self, views)
        if self._transducer is not None:
            return transductive_scores(self, X, views)
        return self.meta_model_.predict(
            self._algorithm(), self.adapted_, X, self._device(), views
        )

    def _device(self) -> torch.device:
        return resolve_device(self.device)
