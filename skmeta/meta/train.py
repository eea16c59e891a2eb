"""The meta-training loop: episodes in, an immutable MetaModel out.

Kept apart from the methods (which only compute losses) and from the estimators
(which only validate input and hold fitted state). No scikit-learn here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ._malloc import training_malloc
from .algorithms import LabelledBatch, TaskBatch, make_algorithm
from .backbones import build_backbone, resolve_backbone
from .episodes import ClassIndex, sample_episodes
from .model import MetaModel
from .net import MetaNet
from .norm import use_task_norm
from .optim import CosineAdam

__all__ = ["TrainSettings", "meta_train", "split_classes"]


@dataclass(frozen=True)
class TrainSettings:
    """Everything meta-training needs besides the data.

    Episode sizes must already be final (the estimators adapt their defaults to
    the data before they get here).
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
    meta_batch_size: int = 1
    max_iter: int = 1000
    learning_rate: float = 1e-3
    max_grad_norm: float | None = None
    early_stopping: bool = False
    validation_fraction: float = 0.1
    n_iter_no_change: int = 10
    n_val_episodes: int = 100
    verbose: int = 0
    n_jobs: int | None = None  # worker threads for meta-gradients; None: automatic
    device: str = "cpu"
    seed: int = 0

    @property
    def eval_interval(self) -> int:
        """Iterations between two history records (and validations)."""
        return max(1, min(100, self.max_iter // 20))


def split_classes(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into two class-disjoint sets, about `fraction` of classes second.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class codes.
    fraction : float in (0, 1)
        Share of the classes held out.
    rng : numpy.random.Generator

    Returns
    -------
    train_rows, held_out_rows : ndarrays of int64
    """
    classes = np.unique(y)
    n_held = int(round(fraction * classes.size))
    held = rng.choice(classes, size=n_held, replace=False)
    mask = np.isin(y, held)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def rotate_classes(
    X: torch.Tensor, codes: np.ndarray, input_shape: tuple[int, ...]
) -> tuple[torch.Tensor, np.ndarray]:
    """Class augmentation: each rotation by 0, 90, 180, 270 degrees is a new class.

    Parameters
    ----------
    X : Tensor of shape (n, C * H * W)
        Image rows with ``input_shape == (C, H, W)`` and ``H == W``.
    codes : ndarray of shape (n,)
        Class codes ``0..n_classes-1``.
    input_shape : tuple of int

    Returns
    -------
    X_rotated : Tensor of shape (4 * n, C * H * W)
        The rows, then the rows rotated by 90, 180 and 270 degrees.
    codes_rotated : ndarray of shape (4 * n,)
        Class ``c`` rotated by ``k * 90`` degrees gets code ``k * n_classes + c``.
    """
    if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
        raise ValueError(
            "class_augmentation='rot90' needs square images: input_shape=(C, H, H); "
            f"got input_shape={tuple(input_shape)}."
        )
    images = X.view(-1, *input_shape)
    rotated = [images.rot90(k, dims=(2, 3)).reshape(X.shape) for k in range(4)]
    n_classes = int(codes.max()) + 1
    return torch.cat(rotated), np.concatenate([codes + k * n_classes for k in range(4)])


def _task_batches(X, index, settings, rng, n_way, n_query, n_tasks, targets=None):
    """Yield TaskBatch objects forever, sampling 64 iterations' episodes at once.

    Classification: labels are the ways. Regression (`targets` given, one group
    per task, ``n_way == 1``): labels are the rows' targets, per task.
    """
    support_y = torch.arange(n_way, device=X.device).repeat_interleave(settings.k_shot)
    query_y = torch.arange(n_way, device=X.device).repeat_interleave(n_query)
    while True:
        episodes = sample_episodes(
            index, n_way, settings.k_shot, n_query, 64 * n_tasks, rng
        )
        support = torch.from_numpy(episodes.support).to(X.device)
        query = torch.from_numpy(episodes.query).to(X.device)
        for start in range(0, 64 * n_tasks, n_tasks):
            s, q = support[start : start + n_tasks], query[start : start + n_tasks]
            if targets is not None:
                support_y, query_y = targets[s], targets[q]
            yield TaskBatch(X[s], support_y, X[q], query_y, n_way)


def _labelled_batches(X, y, batch_size, rng):
    """Yield LabelledBatch objects forever, one shuffled pass after another."""
    batch_size = min(batch_size, X.shape[0])
    while True:
        order = torch.from_numpy(rng.permutation(X.shape[0])).to(X.device)
        for start in range(0, X.shape[0] - batch_size + 1, batch_size):
            rows = order[start : start + batch_size]
            yield LabelledBatch(X[rows], y[rows])


def _validation_batch(X, y, settings, rng, targets=None) -> TaskBatch:
    index = ClassIndex.from_labels(y)
    n_way = min(settings.n_way, index.n_classes)
    n_query = settings.n_query
    if targets is None and n_way < 2:
        raise ValueError(
            f"early_stopping holds out {index.n_classes} class(es) "
            f"(validation_fraction={settings.validation_fraction}); at least 2 are "
            "needed. Raise validation_fraction or turn early_stopping off."
        )
    try:
        return next(
            _task_batches(
                X,
                index,
                settings,
                rng,
                n_way,
                n_query,
                settings.n_val_episodes,
                targets,
            )
        )
    except ValueError as exc:
        raise ValueError(f"Validation classes (early_stopping=True): {exc}") from None


def _config(settings: TrainSettings, algorithm, backbone, embedding_dim, n_classes):
    custom = not isinstance(backbone, str)
    return {
        "method": settings.method,
        # resolved values, defaults included, so the file says what was used
        "method_params": algorithm.method_params(),
        "backbone": "custom" if custom else backbone,
        "backbone_name": (
            f"{getattr(backbone, '__module__', '?')}."
            f"{getattr(backbone, '__qualname__', type(backbone).__name__)}"
            if custom
            else backbone
        ),
        "backbone_params": dict(settings.backbone_params or {}),
        "input_shape": list(settings.input_shape),
        "per_feature_scaling": len(settings.input_shape) != 3,
        "task_norm": algorithm.task_norm,
        "embedding_dim": embedding_dim,
        "training": {
            **{
                k: v
                for k, v in asdict(settings).items()
                if k not in ("backbone", "backbone_params", "method_params")
            },
            "n_classes": n_classes,
        },
    }


def _zero_sums(metric: str) -> dict:
    """Running sums of what a history record averages."""
    return {"loss": 0.0, metric: 0.0, "grad_norm": 0.0, "n": 0}


def meta_train(
    X: np.ndarray,
    y: np.ndarray,
    settings: TrainSettings,
    targets: np.ndarray | None = None,
) -> MetaModel:
    """Meta-train a network on rows `X` with class codes `y`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), int
        Class codes (any integers); for regression, the task (group) of each row.
    settings : TrainSettings
    targets : ndarray of shape (n_samples,), optional
        Regression targets; episodes are then one task each (``n_way=1``) and the
        method must be a regression one (``method_params["regression"]``).

    Returns
    -------
    MetaModel
        Its ``history`` holds one record per ``settings.eval_interval``
        iterations; ``config["training"]`` the settings, ``n_iter`` and
        ``best_iter``.
    """
    device = torch.device(settings.device)
    rng = np.random.default_rng(settings.seed)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), training_malloc():
        torch.manual_seed(int(rng.integers(2**63 - 1)))
        return _meta_train(X, y, settings, device, rng, targets)


def _meta_train(X, y, settings, device, rng, targets) -> MetaModel:
    algorithm = make_algorithm(settings.method, **settings.method_params)
    if (targets is not None) != algorithm.regression:
        raise ValueError(
            f"method={settings.method!r} with regression={algorithm.regression} "
            f"does not fit {'regression' if targets is not None else 'class'} data."
        )
    backbone = resolve_backbone(settings.backbone, settings.input_shape)
    X_all = torch.tensor(X, dtype=torch.float32, device=device)
    T_all = (
        None
        if targets is None
        else torch.tensor(targets, dtype=torch.float32, device=device)
    )
    y = np.asarray(y)
    if settings.early_stopping:
        train_rows, val_rows = split_classes(y, settings.validation_fraction, rng)
        val_index = torch.from_numpy(val_rows).to(device)
        val_batch = _validation_batch(
            X_all[val_index],
            y[val_rows],
            settings,
            rng,
            None if T_all is None else T_all[val_index],
        )
    else:
        train_rows, val_batch = np.arange(y.size), None
    train_index = torch.from_numpy(train_rows).to(device)
    X_train = X_all[train_index]
    T_train = None if T_all is None else T_all[train_index]
    classes, codes = np.unique(y[train_rows], return_inverse=True)
    if settings.class_augmentation == "rot90":
        X_train, codes = rotate_classes(X_train, codes, settings.input_shape)
        classes = np.arange(codes.max() + 1)
    elif settings.class_augmentation is not None:
        raise ValueError(
            f"class_augmentation={settings.class_augmentation!r} is unknown; use "
            "None or 'rot90'."
        )

    backbone_module = build_backbone(
        backbone, settings.input_shape, settings.backbone_params
    )
    if algorithm.task_norm:
        use_task_norm(backbone_module)
    net = MetaNet(
        backbone_module,
        settings.input_shape,
        per_feature_scaling=len(settings.input_shape) != 3,
    )
    net.set_input_statistics(X_train)
    embedding_dim = net.embedding_dim()
    for name, value in algorithm.meta_parameters(
        net, embedding_dim, classes.size
    ).items():
        net.extra[name] = torch.nn.Parameter(value.clone().float())
    net.to(device)

    if algorithm.episodic:
        index = ClassIndex.from_labels(codes)
        batches = _task_batches(
            X_train,
            index,
            settings,
            rng,
            settings.n_way,
            settings.n_query,
            settings.meta_batch_size,
            T_train,
        )
    else:
        rows_per_step = (
            settings.n_way
            * (settings.k_shot + settings.n_query)
            * settings.meta_batch_size
        )
        batches = _labelled_batches(
            X_train, torch.from_numpy(codes).to(device), rows_per_step, rng
        )

    optimizer = CosineAdam(net.parameters(), settings.learning_rate, settings.max_iter)
    history: list[dict] = []
    best = {"loss": math.inf, "iter": 0, "state": None}
    stale, n_iter, start = 0, 0, time.perf_counter()
    metric = algorithm.metric  # "accuracy", or "mse" for regression
    sums = _zero_sums(metric)
    bar = tqdm(
        total=settings.max_iter,
        disable=not settings.verbose,
        desc=f"meta-training {settings.method}",
        unit="it",
        leave=False,
    )
    for n_iter in range(1, settings.max_iter + 1):
        net.train()
        optimizer.zero_grad()
        loss, metrics = algorithm.meta_gradient(net, next(batches))
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"The meta-training loss became {loss} at iteration {n_iter}; "
                "lower learning_rate."
            )
        if settings.max_grad_norm is not None:
            sums["grad_norm"] += float(
                torch.nn.utils.clip_grad_norm_(net.parameters(), settings.max_grad_norm)
            )
        optimizer.step()
        sums["loss"] += loss
        sums[metric] += metrics[metric]
        sums["n"] += 1
        bar.update()
        if n_iter % settings.eval_interval and n_iter != settings.max_iter:
            continue
        record = {
            "iter": n_iter,
            "loss": sums["loss"] / sums["n"],
            metric: sums[metric] / sums["n"],
            "learning_rate": optimizer.lr,  # that of the next step
            "elapsed": time.perf_counter() - start,
        }
        if settings.max_grad_norm is not None:  # mean norm before clipping
            record["grad_norm"] = sums["grad_norm"] / sums["n"]
        sums = _zero_sums(metric)
        if val_batch is not None:
            net.eval()
            record["val_loss"], record[f"val_{metric}"] = algorithm.episode_metrics(
                net, val_batch
            )
            if record["val_loss"] < best["loss"] - 1e-4:
                best = {
                    "loss": record["val_loss"],
                    "iter": n_iter,
                    "state": {k: v.clone() for k, v in net.state_dict().items()},
                }
                stale = 0
            else:
                stale += 1
        history.append(record)
        bar.set_postfix(
            {
                k: f"{v:.3g}"
                for k, v in record.items()
                if k in ("loss", metric, f"val_{metric}")
            }
        )
        if val_batch is not None and stale >= settings.n_iter_no_change:
            break
    bar.close()
    if best["state"] is not None:
        net.load_state_dict(best["state"])
    config = _config(settings, algorithm, backbone, embedding_dim, int(classes.size))
    config["training"].update(
        n_iter=n_iter,
        best_iter=best["iter"] or n_iter,
        elapsed=time.perf_counter() - start,
    )
    return MetaModel(
        net.state_dict(),
        config,
        history,
        backbone=None if isinstance(backbone, str) else backbone,
    )
