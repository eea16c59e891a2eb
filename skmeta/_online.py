"""``partial_fit``: online adaptation (FewShotClassifier) and online
meta-training (MetaFeatureExtractor), on the torch layer's
:mod:`skmeta.meta.online`.

- The classifier adds shots and classes without refitting. ProtoNet (and the
  methods that adapt as it does) keeps per-class sums and counts, so its state
  after any sequence of calls equals ``fit`` on all rows so far; the other
  methods (the gradient-based family, Matching Networks) keep the support rows
  and adapt anew on all of them, from the meta-learnt start, as ``fit`` would.
- The extractor follows the meta-leader (FTML): each call meta-trains
  ``max_iter`` iterations from the current model on episodes drawn from every
  class so far, the past ones through a bounded replay buffer.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils.validation import column_or_1d, validate_data

from ._checks import load_pretrained, resolve_device, same_value
from ._class_labels import check_class_labels, refuse_missing_labels
from ._input_scale import warn_if_off_scale
from ._meta_training import (
    kept_iteration,
    learning_rate,
    training_seed,
    warn_unused_n_jobs,
)
from ._replay import check_replay_fits_an_episode, replay_buffer, support_buffer
from ._tasks import FIT_DTYPES
from ._test_time import check_views_unchanged, test_time_views
from .meta.algorithms import ALGORITHMS
from .meta.caller import user_stacklevel
from .meta.online import network_settings, update_adaptation
from .meta.train import TrainSettings, meta_train

__all__ = [
    "adds_rows_online",
    "classifier_partial_fit",
    "declared_classes",
    "extractor_partial_fit",
    "mask_classes_without_rows",
    "record_support",
]


def _label_kind(labels: np.ndarray) -> str:
    return "strings" if labels.dtype.kind in "OUS" else "numbers"


def _check_same_kind(known: np.ndarray, new: np.ndarray, name: str) -> None:
    if _label_kind(known) != _label_kind(new):
        raise ValueError(
            f"{name} has labels that are {_label_kind(new)}, but the classes seen "
            f"before are {_label_kind(known)} ({known[:3].tolist()}...); use one "
            "kind of label in every call."
        )


def declared_classes(classes, labels: np.ndarray) -> np.ndarray:
    """``partial_fit``'s `classes`, sorted and unique; they must hold every
    label of y (`labels`, sorted)."""
    declared = np.unique(column_or_1d(np.asarray(classes), warn=True))
    _check_same_kind(declared, labels, "y")
    missing = labels[~np.isin(labels, declared)]
    if missing.size:
        raise ValueError(
            f"y has labels that classes= does not list: {missing[:5].tolist()}. "
            "classes= must list every label of y; leave it None to take y's "
            "labels (later calls may add classes)."
        )
    return declared


# -- FewShotClassifier ---------------------------------------------------------
def record_support(clf, X: np.ndarray, codes: np.ndarray) -> None:
    """After ``fit`` (or a first ``partial_fit``): the rows per class, and, for
    a method that adapts anew, its support rows: a bounded buffer with
    `replay_per_class`, else a reference to them (copied into a buffer only
    if ``partial_fit`` follows)."""
    labelled = codes >= 0  # with `transductive`, -1 marks unlabelled rows
    clf.class_count_ = np.bincount(codes[labelled], minlength=clf.classes_.size)
    # partial_fit continues the model and the deployment that fit chose
    clf._fitted_pretrained, clf._fitted_transductive = clf.pretrained, clf.transductive
    if clf.transductive is not None:  # partial_fit refuses it: nothing to keep
        clf._support = None
        return
    incremental = hasattr(clf._algorithm(), "update")
    if incremental and clf.replay_per_class is not None:
        warnings.warn(
            f"replay_per_class={clf.replay_per_class!r} is ignored: method="
            f"{clf.meta_model_.method!r} keeps no support rows for partial_fit "
            "(it updates per-class sums and counts).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    clf._support = None if incremental else (X, clf.classes_[codes])
    if clf._support is not None and clf.replay_per_class is not None:
        clf._support = support_buffer(clf)


def adds_rows_online(clf) -> bool:
    """Whether ``partial_fit`` applies (AttributeError, with the reason, if not):
    transductive methods label the unlabelled rows jointly with the support."""
    if clf.transductive is not None:
        raise AttributeError(
            f"partial_fit does not apply with transductive={clf.transductive!r}: "
            "the transductive methods label the unlabelled rows jointly with "
            "the support set. Call fit with all rows instead."
        )
    return True


def classifier_partial_fit(clf, X, y, classes=None):
    """``FewShotClassifier.partial_fit``: see its docstring. A call that
    raises leaves the estimator as it was (its attributes restored)."""
    before = dict(vars(clf))
    try:
        return _classifier_partial_fit(clf, X, y, classes)
    except BaseException:
        vars(clf).clear()
        vars(clf).update(before)
        raise


def _classifier_partial_fit(clf, X, y, classes=None):
    if not hasattr(clf, "adapted_"):  # the first call: fit, with `classes`
        X, codes = _first_fit(clf, X, y, classes)
        clf._adapt(X, codes)
        clf._set_open_set()
        record_support(clf, X, codes)
        return clf
    clf._validate_params()
    _check_same_pretrained(clf)
    # the adaptation settings as set now (e.g. inner_lr changed by set_params)
    overrides, _ = clf._adaptation_settings(clf.meta_model_)
    refuse_missing_labels(clf, y)
    X, y = validate_data(clf, X, y, reset=False, dtype=FIT_DTYPES)
    check_class_labels(y)
    labels = np.unique(y)
    _check_same_kind(clf.classes_, labels, "y")
    if classes is not None:
        labels = declared_classes(classes, labels)
    new_classes = np.union1d(clf.classes_, labels)
    positions = np.searchsorted(new_classes, clf.classes_)
    codes = np.searchsorted(new_classes, y)
    counts = np.zeros(new_classes.size, dtype=np.int64)
    counts[positions] = clf.class_count_
    counts += np.bincount(codes, minlength=new_classes.size)
    if clf._support is None:  # incremental: the new rows alone
        warn_if_off_scale(clf, X)
        views = test_time_views(clf)
        check_views_unchanged(clf, views)  # the sums are of the fit's views
        _check_same_adaptation(clf, overrides)  # and of its settings
        clf.adapted_ = update_adaptation(
            clf.meta_model_,
            clf.meta_model_.algorithm(**overrides),
            clf.adapted_,
            positions,
            np.asarray(X, dtype=np.float32),
            codes,
            new_classes.size,
            clf._device(),
            views,
        )
        clf.classes_, clf._overrides = new_classes, overrides
    else:  # adapt anew on the kept rows, from the meta-learnt start
        buffer = support_buffer(clf)  # a new one: the kept one is unchanged
        buffer.add(X, y)
        rows, row_labels = buffer.rows()
        known = clf.classes_, clf._overrides
        clf.classes_, clf._overrides = new_classes, overrides  # what _adapt reads
        try:
            clf._adapt(rows, np.searchsorted(new_classes, row_labels))
        except BaseException:
            clf.classes_, clf._overrides = known
            raise
        clf._support = buffer
    clf.class_count_ = counts
    clf._set_open_set()  # the temperature, and unknown_label among new classes
    return clf


def _first_fit(clf, X, y, classes):
    """The first call's :meth:`fit`: rows of one class are enough with
    `pretrained` if `classes` lists the others, which the error then says."""
    if classes is None and clf.pretrained is not None:
        labels = {str(label) for label in np.asarray(y, dtype=object).ravel()}
        if len(labels) == 1:
            raise ValueError(
                f"{type(clf).__name__} needs at least 2 classes in y; got 1 "
                f"class ({labels.pop()}). Give rows of 2 classes or more, or "
                "pass classes= listing the classes to expect: a class without "
                "rows yet is never predicted until rows of it arrive."
            )
    return clf._fit_meta_model(X, y, classes=classes)


def _check_same_pretrained(clf) -> None:
    """partial_fit continues the fitted model and its state: refuse another
    `pretrained`, or a fit that was transductive (it kept no sums)."""
    fitted = getattr(clf, "_fitted_pretrained", clf.pretrained)
    if not same_value(clf.pretrained, fitted):
        raise ValueError(
            "pretrained changed since fit (set_params): partial_fit continues "
            "the model fit adapted, and would ignore the new one. Call fit to "
            "adapt the new pretrained model."
        )
    transductive = getattr(clf, "_fitted_transductive", None)
    if transductive is not None:
        raise ValueError(
            f"fit was transductive ({transductive!r}): its state labels the rows "
            "jointly and has nothing partial_fit can add to. Call fit again with "
            "transductive=None."
        )


def _check_same_adaptation(clf, overrides: dict) -> None:
    """The per-class sums were adapted with fit's method settings: refuse
    others (a method that adapts anew honours them instead)."""
    recorded = clf.meta_model_.config["method_params"]
    before, now = {**recorded, **clf._overrides}, {**recorded, **overrides}
    changed = sorted(
        key
        for key in before.keys() | now.keys()
        if not same_value(before.get(key), now.get(key))
    )
    if changed:
        settings = ", ".join(
            f"{k}={before.get(k)!r} -> {now.get(k)!r}" for k in changed
        )
        raise ValueError(
            f"method_params changed since fit ({settings}): method="
            f"{clf.meta_model_.method!r} adds the new rows to per-class sums "
            "adapted with the earlier settings. Call fit again with all rows."
        )


def mask_classes_without_rows(clf, scores: np.ndarray) -> np.ndarray:
    """Scores of -inf for the classes `classes=` declared that have no rows
    yet, so they are never predicted (probability 0)."""
    counts = getattr(clf, "class_count_", None)
    if counts is not None and not counts.all():
        scores[:, counts == 0] = -np.inf
    return scores


# -- MetaFeatureExtractor ------------------------------------------------------
def _continued_model(ext, X: np.ndarray, y: np.ndarray):
    """The model to continue: the fitted one, or `pretrained` at the first
    call (checked against X and the parameters)."""
    if hasattr(ext, "meta_model_"):
        return ext.meta_model_
    model = ext._check_pretrained(load_pretrained(ext.pretrained), X.shape[1])
    recorded = model.config["method_params"]
    for name, value in ext._given_settings(model.method).items():
        if value != recorded.get(name):
            raise ValueError(
                f"{name}={value!r} differs from the pretrained model's "
                f"{recorded.get(name)!r}; partial_fit continues its meta-training "
                f"with its settings. Leave {name}=None."
            )
    ignored = [
        f"{name}={getattr(ext, name)!r}"
        for name, default in (("backbone", "auto"), ("backbone_params", None))
        if getattr(ext, name) != default
    ]
    if ignored:
        warnings.warn(
            f"partial_fit continues the pretrained model's network, so "
            f"{', '.join(ignored)} is ignored. Leave it at its default.",
            UserWarning,
            stacklevel=4,
        )
    return model


def _settings(ext, model, codes: np.ndarray) -> TrainSettings:
    """Meta-training settings of one call: the network and method of `model`,
    the episodes, length and optimiser of the estimator's parameters."""
    n_way, k_shot, n_query = ext._task.episode_sizes(ext, codes)
    return TrainSettings(
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        **network_settings(model),
        class_augmentation=ext.class_augmentation,
        augmentation=ext.augmentation,
        meta_batch_size=ext.meta_batch_size or 1,
        max_iter=ext.max_iter,
        learning_rate=learning_rate(ext, model.method),
        max_grad_norm=ext.max_grad_norm,
        early_stopping=ext.early_stopping,
        validation_fraction=ext.validation_fraction,
        n_iter_no_change=ext.n_iter_no_change,
        verbose=ext.verbose,
        n_jobs=ext.n_jobs,
        precision=ext.precision,
        device=str(resolve_device(ext.device)),
        seed=training_seed(ext, None)[0],
    )


def extractor_partial_fit(ext, X, y):
    """``MetaFeatureExtractor.partial_fit``: see its docstring."""
    ext._validate_params()
    if ext.checkpoint is not None:
        raise ValueError(
            "checkpoint= does not apply to partial_fit: each call is a meta-training "
            "run on other rows. Leave checkpoint=None (save meta_model_ between "
            "calls instead)."
        )
    if ext.within_group_episodes:
        raise ValueError(
            f"within_group_episodes={ext.within_group_episodes!r} does not apply "
            "to partial_fit, which takes no groups: its episodes are drawn among "
            "all of the replay buffer's classes. Set within_group_episodes=0, or "
            "use fit(X, y, groups=...)."
        )
    if y is None:
        raise ValueError(
            "partial_fit needs the labels y of X: it meta-trains on their classes."
        )
    check_replay_fits_an_episode(ext)  # episodes are drawn from the buffer
    if not hasattr(ext, "meta_model_") and ext.pretrained is None:
        _refuse_non_episodic(ext.method or ext._task.default_method)  # before fit
        X, codes = ext._fit_meta_model(X, y)  # the first call: fit
        ext._replay = None
        buffer = replay_buffer(ext)
        buffer.add(X, ext._seen_classes[codes])
        ext._replay = buffer
        return ext
    if hasattr(ext, "meta_model_") and getattr(ext, "_replay", None) is None:
        warnings.warn(
            "partial_fit continues a model made by fit, whose rows are not in the "
            "replay buffer (fit keeps none), so their classes may be forgotten. "
            "To keep them, start with partial_fit instead of fit.",
            UserWarning,
            stacklevel=3,
        )
    first = not hasattr(ext, "meta_model_")
    refuse_missing_labels(ext, y)
    X, y = validate_data(ext, X, y, reset=first, dtype=FIT_DTYPES)
    check_class_labels(y)
    model = _continued_model(ext, X, y)
    warn_if_off_scale(ext, X, model)  # it meta-trains on X with model's scaling
    _refuse_non_episodic(model.method)
    warn_unused_n_jobs(ext, model.method)
    buffer = replay_buffer(ext)  # a new one: the kept one is unchanged
    buffer.add(X, y)
    rows, labels = buffer.rows()
    ext._seen_classes, codes = np.unique(labels, return_inverse=True)
    ext.meta_model_ = meta_train(
        rows, codes, _settings(ext, model, codes), init=model, description=ext._seen()
    )
    ext._replay = buffer
    ext.n_iter_ = int(ext.meta_model_.config["training"]["n_iter"])
    ext.best_iter_ = kept_iteration(ext.meta_model_)
    ext.history_ = [dict(record) for record in ext.meta_model_.history]
    return ext


def _refuse_non_episodic(method: str) -> None:
    """partial_fit meta-trains on episodes of the replay buffer's classes."""
    if not ALGORITHMS[method].episodic:
        raise ValueError(
            f"method={method!r} learns a head over a fixed set of base "
            "classes, which partial_fit cannot grow; use an episodic method "
            "(e.g. 'protonet') to meta-train online."
        )
