"""What meta-training draws: class-disjoint splits, class augmentation, and
endless streams of episodes (:class:`TaskBatch`) or labelled mini-batches."""

from __future__ import annotations

import numpy as np
import torch

from .algorithms import LabelledBatch, TaskBatch
from .episodes import ClassIndex, sample_episodes

__all__ = [
    "labelled_batches",
    "rotate_classes",
    "split_classes",
    "task_batches",
    "validation_batch",
]


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


def task_batches(X, index, settings, rng, n_way, n_query, n_tasks, targets=None):
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


def labelled_batches(X, y, batch_size, rng):
    """Yield LabelledBatch objects forever, one shuffled pass after another."""
    batch_size = min(batch_size, X.shape[0])
    while True:
        order = torch.from_numpy(rng.permutation(X.shape[0])).to(X.device)
        for start in range(0, X.shape[0] - batch_size + 1, batch_size):
            rows = order[start : start + batch_size]
            yield LabelledBatch(X[rows], y[rows])


def validation_batch(X, y, settings, rng, targets=None) -> TaskBatch:
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
            task_batches(
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
