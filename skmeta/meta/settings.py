"""What a meta-training run is asked to do, besides its data:
:class:`TrainSettings`, which :func:`~skmeta.meta.train.meta_train` takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["TrainSettings"]


@dataclass(frozen=True)
class TrainSettings:
    """Everything meta-training needs besides the data.

    Episode sizes must already be final (the estimators adapt their defaults
    to the data before they get here). The estimators' parameters of the same
    names are documented at more length in :class:`skmeta.FewShotClassifier`.

    Parameters
    ----------
    n_way, k_shot, n_query : int
        Classes per episode, support rows per class, query rows per class
        (for regression: ``n_way=1``, the rows of one task).
    input_shape : tuple of int
        ``(C, H, W)`` for images, ``(n_features,)`` for tables.
    method : str, default="protonet"
        A name of :data:`skmeta.meta.algorithms.ALGORITHMS`.
    method_params : dict, default={}
        The method's settings (e.g. ``{"inner_steps": 5}``).
    backbone : str or callable, default="auto"
        A built-in backbone's name (``"conv4"``, ``"resnet12"``,
        ``"torchvision:resnet18"``, ...) or a factory of a torch module.
    backbone_params : dict or None, default=None
        Keyword arguments of the backbone.
    class_augmentation : {None, "rot90", "dihedral"}, default=None
        Each class's quarter turns (and mirror images) as new classes.
    augmentation : object, default=None
        Per-batch data augmentation: a preset's name, an augmentation, a
        callable or a list of them (:func:`skmeta.meta.augment.make_augmentation`).
    meta_batch_size : int, default=1
        Episodes per meta-update.
    within_group_episodes : float, default=0.0
        Share of training episodes whose classes come from one group.
    max_iter : int, default=1000
        Meta-updates.
    learning_rate : float, default=1e-3
        Adam's initial rate, on a cosine schedule. The estimators' default
        (None) is the method's own rate, 4e-3 for ``protonet``: pass that
        here to meta-train as they do.
    max_grad_norm : float or None, default=None
        Clip the meta-gradient to this total norm.
    early_stopping : bool, default=False
        Hold classes out, validate on them, keep the best weights.
    calibrate : bool, default=False
        Fit the temperature and open-set scores on held-out classes after the
        last step (:mod:`skmeta.meta.calibration`).
    validation_fraction : float, default=0.1
        Share of the classes held out by `early_stopping` and `calibrate`.
    n_iter_no_change : int, default=10
        Validations without improvement before early stopping.
    n_val_episodes : int, default=100
        Episodes of each validation.
    verbose : int, default=0
        A progress bar above 0.
    n_jobs : int or None, default=None
        Worker threads for the task-by-task meta-gradients; None: automatic.
    device : str, default="cpu"
        A torch device.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Autocast of the forward passes (:mod:`skmeta.meta.precision`).
    seed : int, default=0
        Seeds the episodes, the class split and the initial weights.
    checkpoint : str or None, default=None
        A file the run's state is written to, and resumed from if present
        (:mod:`skmeta.meta.checkpoint`).
    checkpoint_every : int or None, default=None
        Iterations between checkpoints; None: every :attr:`eval_interval`.
    normalize_y : bool, default=False
        Regression only: standardise the targets by their mean and standard
        deviation, recorded in the model, which every adaptation then applies
        and every prediction undoes (:mod:`skmeta.meta.target_scaling`).
    """

    n_way: int
    k_shot: int
    n_query: int
    input_shape: tuple[int, ...]
    method: str = "protonet"
    method_params: dict = field(default_factory=dict)
    backbone: str | Callable = "auto"
    backbone_params: dict | None = None
    class_augmentation: str | None = None
    augmentation: object = None
    meta_batch_size: int = 1
    within_group_episodes: float = 0.0
    max_iter: int = 1000
    learning_rate: float = 1e-3
    max_grad_norm: float | None = None
    early_stopping: bool = False
    calibrate: bool = False
    validation_fraction: float = 0.1
    n_iter_no_change: int = 10
    n_val_episodes: int = 100
    verbose: int = 0
    n_jobs: int | None = None
    device: str = "cpu"
    precision: str = "float32"
    seed: int = 0
    checkpoint: str | None = None
    checkpoint_every: int | None = None
    normalize_y: bool = False

    @property
    def eval_interval(self) -> int:
        """Iterations between two history records (and validations)."""
        return max(1, min(100, self.max_iter // 20))
