"""The bridge from an estimator's parameters to the torch layer's
:func:`~skmeta.meta.train.meta_train`: the run's settings, its seed and
learning rate, and the warnings about settings it cannot use."""

from __future__ import annotations

import os
import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_random_state

from ._checks import (
    check_input_shape,
    resolve_device,
    warn_inert_settings,
)
from ._ignored_features import warn_constant_features
from ._interrupted_fits import (
    after_meta_training,
    inside_model_selection,
    starting_model,
)
from ._loss_warnings import warn_about_the_loss
from ._targets import target_summary
from .meta.algorithms import ALGORITHMS
from .meta.caller import user_stacklevel
from .meta.checkpoint import recorded_seed
from .meta.model import MetaModel
from .meta.train import TrainSettings, meta_train

__all__ = ["kept_iteration", "learning_rate", "meta_train_estimator", "training_seed"]


def kept_iteration(model) -> int | None:
    """The iteration whose weights `model` kept: the one of the lowest
    validation loss under early stopping (counted as ``n_iter_`` counts),
    None for a model meta-trained without early stopping."""
    training = model.config["training"]
    if not training.get("early_stopping") or "best_iter" not in training:
        return None
    return int(training["best_iter"])


def learning_rate(estimator, method: str) -> float:
    """Adam's initial rate: `learning_rate`, or None's per-method default."""
    if estimator.learning_rate is not None:
        return float(estimator.learning_rate)
    return ALGORITHMS[method].default_learning_rate


def training_seed(estimator, checkpoint: str | None) -> tuple[int, int | None]:
    """Meta-training's seed, and the int `random_state` that repeats the run.

    Returns
    -------
    seed : int
        Drawn from `random_state`; when that is None and `checkpoint`
        exists, the seed of the run it holds, to resume it.
    random_state : int or None
        The given int; for None, one drawn from NumPy's global generator (so
        that ``np.random.seed`` repeats the run, as in scikit-learn) that the
        seed is then drawn from, recorded so that ``random_state=`` it
        repeats the run; None for a ``RandomState``, which each fit consumes,
        and for a resumed run.
    """
    state = estimator.random_state
    if checkpoint is not None and state is None:
        seed = recorded_seed(checkpoint)
        if seed is not None:
            return seed, None
    if state is None:
        state = int(check_random_state(None).randint(2**31 - 1))
    if isinstance(state, int | np.integer):
        state = int(state)
        return int(np.random.RandomState(state).randint(2**31 - 1)), state
    return int(check_random_state(state).randint(2**31 - 1)), None


def warn_unused_n_jobs(estimator, method: str) -> None:
    """`n_jobs` only spreads task-by-task meta-gradients over threads."""
    if estimator.n_jobs is None:
        return
    if not ALGORITHMS[method].parallel_tasks:
        takers = [m for m in estimator._task.methods() if ALGORITHMS[m].parallel_tasks]
        reason = (
            f"method={method!r} takes its meta-gradient in one batched pass "
            f"(n_jobs applies to {', '.join(takers)})"
        )
    elif estimator.precision != "float32":
        reason = (
            f"precision={estimator.precision!r} takes the reference meta-gradient "
            "in the calling thread"
        )
    else:
        return
    warnings.warn(
        f"n_jobs={estimator.n_jobs!r} is ignored: {reason}. torch's intra-op "
        "threads (torch.set_num_threads) still parallelise each pass.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def meta_train_estimator(
    estimator, X, labels, targets, method, settings, groups=None
) -> MetaModel:
    """Meta-train on X with episodes drawn from `labels` (class or task
    codes), those of `within_group_episodes` within the `groups` codes, as
    `estimator`'s parameters say; sets its ``n_iter_`` and ``best_iter_``."""
    input_shape = check_input_shape(estimator.input_shape, X.shape[1], X.dtype)
    warn_unused_n_jobs(estimator, method)
    warn_inert_settings(estimator)
    n_way, k_shot, n_query = estimator._task.episode_sizes(estimator, labels, groups)
    n_classes = np.unique(labels).size
    fixed_way = ALGORITHMS[method].fixed_way
    if fixed_way and is_classifier(estimator) and n_classes > n_way:
        raise ValueError(  # found before meta-training, not after it
            f"method={method!r} classifies at most the n_way={n_way} classes "
            f"it meta-trains on, and fit then adapts to all {n_classes} "
            "classes of y. Set n_way to the number of classes, or meta-train "
            "a MetaFeatureExtractor and adapt to fewer classes."
        )
    checkpoint = (
        None if estimator.checkpoint is None else os.fspath(estimator.checkpoint)
    )
    if checkpoint is not None and inside_model_selection():
        raise ValueError(  # before any work, not at the refit after it all
            f"checkpoint={checkpoint!r} inside a scikit-learn search or "
            "cross-validation: every clone shares the one file, so folds and "
            "candidates (other data, other parameters) overwrite or refuse "
            "each other's. Leave checkpoint=None there, and give it to the "
            "final fit of the chosen parameters."
        )
    seed, random_state = training_seed(estimator, checkpoint)
    train = TrainSettings(
        n_way=n_way,
        k_shot=k_shot,
        n_query=n_query,
        input_shape=input_shape,
        method=method,
        method_params=settings,
        backbone=estimator.backbone,
        backbone_params=estimator.backbone_params,
        class_augmentation=estimator.class_augmentation,
        augmentation=estimator.augmentation,
        meta_batch_size=estimator.meta_batch_size
        or estimator._task.default_meta_batch_size(labels),
        within_group_episodes=float(estimator.within_group_episodes),
        max_iter=estimator.max_iter,
        learning_rate=learning_rate(estimator, method),
        max_grad_norm=estimator.max_grad_norm,
        normalize_y=estimator.normalize_y,
        early_stopping=estimator.early_stopping,
        calibrate=estimator._calibrates(),
        validation_fraction=estimator.validation_fraction,
        n_iter_no_change=estimator.n_iter_no_change,
        verbose=estimator.verbose,
        n_jobs=estimator.n_jobs,
        precision=estimator.precision,
        device=str(resolve_device(estimator.device)),
        seed=seed,
        checkpoint=checkpoint,
        checkpoint_every=estimator.checkpoint_every,
    )
    init = starting_model(estimator, checkpoint)  # warm_start's, or None
    model = meta_train(
        X,
        labels,
        train,
        targets=targets,
        init=init,
        description={
            **estimator._seen(),
            "random_state": random_state,  # for None, the one drawn for it
            "random_state_drawn": (
                estimator.random_state is None and random_state is not None
            )
            or None,
            **target_summary(
                targets,
                estimator.normalize_y,
                None if init is None else init.config.get("target_scaling"),
            ),
        },
        groups=groups,
    )
    after_meta_training(estimator, init, model, checkpoint)  # resume, stop a search
    estimator.n_iter_ = int(model.config["training"]["n_iter"])
    estimator.best_iter_ = kept_iteration(model)
    warn_about_the_loss(model, estimator.max_iter)
    warn_constant_features(estimator, model)
    return model
