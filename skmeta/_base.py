"""What MetaFeatureExtractor and FewShotClassifier share: their meta-training
parameters, the checks on them, and the bridge to the torch layer."""

from __future__ import annotations

import functools
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from ._sklearn_compat import Interval, StrOptions
from .meta.algorithms import ALGORITHMS
from .meta.backbones import BUILTIN_BACKBONES
from .meta.model import MetaModel
from .meta.train import TrainSettings, meta_train

DEFAULT_N_WAY, DEFAULT_K_SHOT, DEFAULT_N_QUERY = 20, 5, 15
INNER_SETTINGS = ("inner_lr", "inner_steps", "first_order")

META_PARAMETER_CONSTRAINTS = {
    "method": [StrOptions(set(ALGORITHMS)), None],
    "backbone": [StrOptions({"auto", *BUILTIN_BACKBONES}), callable],
    "backbone_params": [dict, None],
    "class_augmentation": [StrOptions({"rot90"}), None],
    "input_shape": [tuple, list, None],
    "distance": [StrOptions({"euclidean", "cosine"})],
    "inner_lr": [Interval(Real, 0, None, closed="neither"), None],
    "inner_steps": [Interval(Integral, 1, None, closed="left"), None],
    "first_order": ["boolean", None],
    "n_way": [Interval(Integral, 2, None, closed="left"), None],
    "k_shot": [Interval(Integral, 1, None, closed="left"), None],
    "n_query": [Interval(Integral, 1, None, closed="left"), None],
    "meta_batch_size": [Interval(Integral, 1, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "pretrained": [MetaModel, str, os.PathLike, None],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}

META_PARAMETERS_DOC = """
    method : {"protonet", "pretrain", "maml", "fomaml", "metasgd", "anil", \
"protomaml", "reptile"}, default=None
        Meta-learning method. None means ``"protonet"`` when meta-training, and
        the method of `pretrained` otherwise. ``"pretrain"`` is the supervised
        baseline: a classifier of all training classes, then prototypes.
        ``"maml"`` (second order), ``"fomaml"`` (first order), ``"metasgd"``
        (learnt per-weight inner learning rates), ``"anil"`` (inner loop on the
        head only), ``"protomaml"`` (head started from prototypes) and
        ``"reptile"`` adapt by gradient steps on the support set.
    backbone : {"auto", "mlp", "conv4", "conv4_strided"} or callable, default="auto"
        The network that embeds rows. ``"auto"`` is ``"conv4"`` when
        `input_shape` describes images ``(C, H, W)`` and ``"mlp"`` otherwise. A
        ``torch.nn.Module`` class or factory is called with `backbone_params` as
        keyword arguments and must map ``(batch, *input_shape)`` to
        ``(batch, dim)``.
    backbone_params : dict, default=None
        Keyword arguments of the backbone, e.g. ``{"hidden_sizes": (128,)}`` for
        ``"mlp"`` or ``{"hidden_channels": 32}`` for ``"conv4"``.
    class_augmentation : {"rot90"}, default=None
        Class augmentation for square images during meta-training:
        ``"rot90"`` adds each class rotated by 90, 180 and 270 degrees as three
        new classes (as in the Omniglot experiments of Vinyals et al. 2016 and
        Snell et al. 2017). Adaptation in ``FewShotClassifier.fit`` is unchanged.
    input_shape : tuple of int, default=None
        Shape of one row, e.g. ``(1, 28, 28)`` for 28x28 grey images stored as
        784 columns. None means flat rows ``(n_features,)``.
    distance : {"euclidean", "cosine"}, default="euclidean"
        How queries are compared with prototypes: squared Euclidean distance, or
        cosine similarity times a learnt temperature.
    inner_lr, inner_steps, first_order : float, int, bool, default=None
        Inner loop of the gradient-based methods: step size, number of SGD
        steps on the support set, and whether to drop second derivatives. None
        means 0.4, 1 and the method's own (``fomaml``: True) when meta-training,
        and the meta-training values with `pretrained`. Set with `pretrained`,
        they change only the adaptation in ``fit`` -- what ``GridSearchCV``
        over them tunes, with no meta-training.
    n_way, k_shot, n_query : int, default=None
        Episode size in meta-training: classes per episode, labelled examples
        per class, and queries per class. None adapts to the data: up to
        20-way, 5-shot and 15 queries, fewer when the data have too few classes
        or samples per class. Values you set are honoured or refused with an
        error.
    meta_batch_size : int, default=1
        Episodes per meta-update.
    max_iter : int, default=1000
        Number of meta-updates.
    learning_rate : float, default=1e-3
        Initial learning rate of Adam; it follows a cosine schedule to 0 over
        `max_iter`.
    max_grad_norm : float, default=None
        Clip the meta-gradient to this total norm before each update (as
        ``torch.nn.utils.clip_grad_norm_``), a guard against the sudden
        collapses MAML-style meta-training can suffer. The history then records
        the mean norm before clipping (``grad_norm``). None: no clipping.
    early_stopping : bool, default=False
        Hold out a class-disjoint `validation_fraction` of the classes, evaluate
        on their episodes regularly, stop after `n_iter_no_change` evaluations
        without improvement and keep the best weights.
    validation_fraction : float, default=0.1
        Share of the classes held out for `early_stopping`.
    n_iter_no_change : int, default=10
        Evaluations without improvement before stopping (every ``max_iter // 20``
        iterations, at most 100).
    pretrained : MetaModel or path, default=None
        Reuse a meta-trained model (or a file written by ``MetaModel.save``)
        instead of meta-training; the meta-training parameters above are then
        ignored.
    device : str or torch.device, default="auto"
        Where torch runs: ``"auto"`` takes a GPU when there is one.
    random_state : int, RandomState instance or None, default=None
        Seeds episodes and initialisation without touching the global torch
        random state; an int gives identical refits.
    verbose : int, default=0
        Show a progress bar of meta-training when positive."""


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> MetaModel:
    return MetaModel.load(path)


def load_pretrained(pretrained) -> MetaModel:
    """The `pretrained` parameter as a MetaModel.

    A path is read once per file version: a MetaModel is immutable, so the
    1,000 fits of an episodic evaluation share one copy of the weights.
    """
    if isinstance(pretrained, MetaModel):
        return pretrained
    path = Path(pretrained).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"pretrained={str(pretrained)!r}: no such model file.")
    stat = path.stat()
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


def validated_rows(estimator, X) -> np.ndarray:
    """`X` as scikit-learn's ``validate_data(reset=False, dtype=float32)`` returns
    it for a fitted `estimator`, without its finite check (the caller's).

    A float32 C-contiguous matrix of the fitted width, for an estimator fitted
    without feature names, is returned as is without the call: ``validate_data``
    would return it unchanged, and its ~370 Python calls, run with caches cold
    after the forward passes, cost 5% of an MLP's ``transform`` of 2,000 rows
    here (0.35 ms). Anything else goes through ``validate_data``.
    """
    if (
        type(X) is np.ndarray
        and X.dtype == np.float32
        and X.ndim == 2
        and X.shape[0] > 0
        and X.shape[1] == getattr(estimator, "n_features_in_", None)
        and X.flags.c_contiguous
        and not hasattr(estimator, "feature_names_in_")
    ):
        return X
    return validate_data(
        estimator, X, reset=False, dtype=np.float32, ensure_all_finite=False
    )


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device: {exc}"
        ) from None


def episode_sizes(estimator, y: np.ndarray) -> tuple[int, int, int]:
    """Final (n_way, k_shot, n_query): the user's values, or defaults fitted to `y`.

    Parameters
    ----------
    estimator : object with n_way, k_shot, n_query attributes
    y : ndarray of shape (n_samples,), int class codes
    """
    counts = np.sort(np.bincount(y))[::-1]
    counts = counts[counts > 0]
    if estimator.n_way is not None and estimator.n_way > counts.size:
        raise ValueError(
            f"n_way={estimator.n_way} exceeds the number of classes in y "
            f"({counts.size}); lower n_way or leave it None."
        )
    need = (estimator.k_shot or 1) + (estimator.n_query or 1)
    if estimator.n_way is None:
        n_way = min(DEFAULT_N_WAY, int((counts >= need).sum()))
        if n_way < 2:
            raise ValueError(
                f"Meta-training needs at least 2 classes with {need} samples each "
                f"(k_shot + n_query); y has {int((counts >= need).sum())} "
                f"(n_samples={int(counts.sum())}). Add samples, lower "
                "k_shot/n_query, or pass pretrained=."
            )
    else:
        n_way = estimator.n_way
    budget = int(counts[n_way - 1])  # samples of the n_way-th largest class
    k_shot = estimator.k_shot or max(1, min(DEFAULT_K_SHOT, budget // 2))
    n_query = estimator.n_query or max(1, min(DEFAULT_N_QUERY, budget - k_shot))
    if k_shot + n_query > budget:
        raise ValueError(
            f"A {n_way}-way episode with k_shot={k_shot} and n_query={n_query} needs "
            f"{n_way} classes with {k_shot + n_query} samples each; y has only "
            f"{int((counts >= k_shot + n_query).sum())}. Lower n_way, k_shot or "
            "n_query, or add samples."
        )
    return n_way, k_shot, n_query


def check_input_shape(input_shape, n_features: int) -> tuple[int, ...]:
    """Validate the ``input_shape`` parameter against the width of X."""
    if input_shape is None:
        return (n_features,)
    shape = tuple(input_shape)
    if not shape or not all(isinstance(s, Integral) and s > 0 for s in shape):
        raise ValueError(
            f"input_shape must be a tuple of positive ints, got {input_shape!r}."
        )
    if int(np.prod(shape)) != n_features:
        raise ValueError(
            f"input_shape={shape} holds {int(np.prod(shape))} values per row but X "
            f"has {n_features} features; they must match (e.g. (1, 28, 28) for 784)."
        )
    return tuple(int(s) for s in shape)


class MetaLearnerMixin:
    """Meta-training and `pretrained` handling for skmeta estimators."""

    _parameter_constraints: dict = META_PARAMETER_CONSTRAINTS

    def _method_params(self, method: str, explicit_only: bool = False) -> dict:
        """The estimator's settings that `method` takes (``distance``,
        ``inner_lr``, ...), leaving out those left at None."""
        params = {
            name: getattr(self, name)
            for name in ALGORITHMS[method].settings
            if getattr(self, name) is not None
        }
        if explicit_only:  # adaptation: only what the user set overrides
            params.pop("distance", None)
        return params

    def _algorithm(self):
        """The meta-model's method with this estimator's adaptation settings."""
        model = self.meta_model_
        inner = {name: getattr(self, name) for name in INNER_SETTINGS}
        unused = [
            n
            for n, v in inner.items()
            if v is not None and n not in ALGORITHMS[model.method].settings
        ]
        if unused:
            raise ValueError(
                f"{', '.join(unused)} do not apply to method={model.method!r} "
                "(inner_lr and inner_steps: gradient-based methods; first_order: "
                "maml, fomaml, metasgd, anil, protomaml); this model's method is "
                f"{model.method!r}. Leave them None."
            )
        return model.algorithm(**self._method_params(model.method, explicit_only=True))

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
        return model

    def _get_meta_model(self, X: np.ndarray, y: np.ndarray | None) -> MetaModel:
        """Load and check `pretrained`, or meta-train on (X, y codes)."""
        n_features = X.shape[1]
        if self.pretrained is not None:
            self.n_iter_ = 0
            return self._check_pretrained(load_pretrained(self.pretrained), n_features)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} needs class labels y to meta-train; pass y, or "
                "a meta-trained model as pretrained=."
            )
        input_shape = check_input_shape(self.input_shape, n_features)
        n_way, k_shot, n_query = episode_sizes(self, y)
        method = self.method or "protonet"
        settings = self._train_settings(
            n_way=n_way,
            k_shot=k_shot,
            n_query=n_query,
            input_shape=input_shape,
            method=method,
            method_params=self._method_params(method),
            class_augmentation=self.class_augmentation,
        )
        return self._run_meta_training(X, y, settings)

    def _train_settings(self, **episode_and_method) -> TrainSettings:
        """TrainSettings from this estimator's shared parameters plus the given
        episode sizes, method and method settings."""
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        return TrainSettings(
            backbone=self.backbone,
            backbone_params=self.backbone_params,
            meta_batch_size=self.meta_batch_size,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_grad_norm=self.max_grad_norm,
            early_stopping=self.early_stopping,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            verbose=self.verbose,
            device=str(resolve_device(self.device)),
            seed=seed,
            **episode_and_method,
        )

    def _run_meta_training(self, X, y, settings, targets=None) -> MetaModel:
        model = meta_train(X, y, settings, targets=targets)
        self.n_iter_ = int(model.config["training"]["n_iter"])
        return model
