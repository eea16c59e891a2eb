"""The estimators' shared parameters: their constraints, which are method
settings, and which only meta-training uses (``_base.py`` reads these)."""

import functools
import inspect
import os
from numbers import Integral, Real

import torch
from sklearn.base import BaseEstimator

from ._sklearn_compat import BackboneOptions, Interval, StrOptions
from .meta.algorithms import ALGORITHMS
from .meta.augment import AffineAugmentation, FeatureAugmentation, ImageAugmentation
from .meta.backbones import BUILTIN_BACKBONES
from .meta.elastic import ElasticAugmentation
from .meta.model import MetaModel
from .meta.precision import PRECISIONS
from .meta.transductive import TRANSDUCTIVE

__all__ = ["META_TRAINING_PARAMETERS", "PARAMETER_CONSTRAINTS", "TOP_LEVEL_SETTINGS"]

# Method settings with a parameter of their own (what GridSearchCV tunes); a
# method's other settings go in `method_params`. Which method takes which is
# the registry's `Algorithm.settings`.
TOP_LEVEL_SETTINGS = ("distance", "inner_lr", "inner_steps", "first_order")
# Which settings a pretrained model's method takes anew at adaptation is the
# registry's `Algorithm.adaptation_settings`; every other method setting is
# fixed by meta-training.
# Parameters only meta-training uses: with `pretrained=`, a value other than
# the default is ignored and warned about.
META_TRAINING_PARAMETERS = (
    "backbone",
    "backbone_params",
    "class_augmentation",
    "augmentation",
    "input_shape",
    "n_way",
    "k_shot",
    "n_query",
    "within_group_episodes",
    "meta_batch_size",
    "max_iter",
    "learning_rate",
    "max_grad_norm",
    "normalize_y",
    "early_stopping",
    "calibrate",
    "validation_fraction",
    "n_iter_no_change",
    "n_jobs",
    "precision",
    "warm_start",
    "checkpoint",
    "checkpoint_every",
)

PARAMETER_CONSTRAINTS = {
    "method": [StrOptions(set(ALGORITHMS)), None],  # per task: _tasks.py
    "backbone": [BackboneOptions({"auto", *BUILTIN_BACKBONES}), callable],
    "backbone_params": [dict, None],
    "class_augmentation": [StrOptions({"rot90", "dihedral"}), None],
    "augmentation": [
        StrOptions({"images", "affine", "elastic", "features"}),
        ImageAugmentation,
        AffineAugmentation,
        ElasticAugmentation,
        FeatureAugmentation,
        callable,
        list,  # of the above, applied in turn: make_augmentation checks them
        tuple,
        None,
    ],
    "input_shape": [tuple, list, None],
    "distance": [str, None],  # values: the method's own check
    "inner_lr": [Interval(Real, 0, None, closed="neither"), None],
    "inner_steps": [Interval(Integral, 1, None, closed="left"), None],
    "first_order": ["boolean", None],
    "method_params": [dict, None],
    "transductive": [StrOptions(set(TRANSDUCTIVE)), None],
    "transductive_params": [dict, None],
    "n_way": [Interval(Integral, 2, None, closed="left"), None],
    "k_shot": [Interval(Integral, 1, None, closed="left"), None],
    "n_query": [Interval(Integral, 1, None, closed="left"), None],
    "within_group_episodes": [Interval(Real, 0, 1, closed="both")],
    "meta_batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    # above ~1e37, Adam's float32 step overflows inside torch
    "learning_rate": [Interval(Real, 0, 1e30, closed="neither"), None],
    "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    "normalize_y": ["boolean"],
    "early_stopping": ["boolean"],
    "calibrate": [StrOptions({"auto"}), "boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "n_jobs": [  # negative as joblib counts: -1 all threads, -2 all but one
        Interval(Integral, 1, None, closed="left"),
        Interval(Integral, None, -1, closed="right"),
        None,
    ],
    "precision": [StrOptions(set(PRECISIONS))],
    "warm_start": ["boolean"],
    "replay_per_class": [Interval(Integral, 1, None, closed="left"), None],
    "test_time_shifts": "no_validation",  # checked with the model: _test_time.py
    "test_time_turns": ["boolean", StrOptions({"rot90", "dihedral"})],
    "checkpoint": [str, os.PathLike, None],
    "checkpoint_every": [Interval(Integral, 1, None, closed="left"), None],
    "unknown_label": "no_validation",  # any label; checked against classes_
    "rejection_rate": [Interval(Real, 0, 0.5, closed="both"), None],
    "pretrained": [MetaModel, str, os.PathLike, None],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


@functools.cache
def init_defaults(cls) -> dict:
    """``{name: default}`` of the parameters of ``cls.__init__``, in the order
    of scikit-learn's ``_get_param_names`` (and with its checks), which reads
    the signature anew at every ``get_params``: twice per ``fit``."""
    signature = inspect.signature(cls).parameters
    names = BaseEstimator._get_param_names.__func__(cls)
    return {name: signature[name].default for name in names}
