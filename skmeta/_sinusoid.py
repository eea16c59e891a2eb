"""Sine-wave regression tasks, the few-shot regression benchmark of MAML."""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["make_sinusoid_tasks"]


@overload
def make_sinusoid_tasks(
    n_tasks: int = ...,
    n_samples_per_task: int = ...,
    *,
    amplitude_range: tuple[float, float] = ...,
    phase_range: tuple[float, float] = ...,
    x_range: tuple[float, float] = ...,
    evenly_spaced: bool = ...,
    noise: float = ...,
    random_state: int | np.random.RandomState | None = ...,
    return_params: Literal[False] = ...,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def make_sinusoid_tasks(
    n_tasks: int = ...,
    n_samples_per_task: int = ...,
    *,
    amplitude_range: tuple[float, float] = ...,
    phase_range: tuple[float, float] = ...,
    x_range: tuple[float, float] = ...,
    evenly_spaced: bool = ...,
    noise: float = ...,
    random_state: int | np.random.RandomState | None = ...,
    return_params: Literal[True],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def make_sinusoid_tasks(
    n_tasks: int = ...,
    n_samples_per_task: int = ...,
    *,
    amplitude_range: tuple[float, float] = ...,
    phase_range: tuple[float, float] = ...,
    x_range: tuple[float, float] = ...,
    evenly_spaced: bool = ...,
    noise: float = ...,
    random_state: int | np.random.RandomState | None = ...,
    return_params: bool,
) -> (
    tuple[np.ndarray, np.ndarray, np.ndarray]
    | tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
): ...
def make_sinusoid_tasks(
    n_tasks: int = 100,
    n_samples_per_task: int = 10,
    *,
    amplitude_range: tuple[float, float] = (0.1, 5.0),
    phase_range: tuple[float, float] = (0.0, np.pi),
    x_range: tuple[float, float] = (-5.0, 5.0),
    evenly_spaced: bool = False,
    noise: float = 0.0,
    random_state: int | np.random.RandomState | None = None,
    return_params: bool = False,
) -> (
    tuple[np.ndarray, np.ndarray, np.ndarray]
    | tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
):
    """Rows of ``y = A sin(x - phase)`` drawn from many random sine waves.

    The protocol of Finn et al. (2017): each task is one sine wave with amplitude
    ``A ~ U[0.1, 5.0]`` and phase ``~ U[0, pi]``; its inputs are ``x ~ U[-5, 5]``.
    Tasks come the scikit-learn way, as a ``groups`` vector (as for
    ``GroupKFold``): rows that share a group value belong to one task.

    Parameters
    ----------
    n_tasks : int, default=100
        Number of sine waves.
    n_samples_per_task : int, default=10
        Rows per task (K shots plus any query rows).
    amplitude_range : tuple of float, default=(0.1, 5.0)
        Uniform range of the amplitudes.
    phase_range : tuple of float, default=(0.0, pi)
        Uniform range of the phases.
    x_range : tuple of float, default=(-5.0, 5.0)
        Uniform range of the inputs (MAML's sine-wave tasks).
    evenly_spaced : bool, default=False
        Inputs evenly spaced over `x_range` (for evaluation curves) instead of
        uniform draws.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to y.
    random_state : int, RandomState instance or None, default=None
    return_params : bool, default=False
        Also return the amplitude and phase of every task.

    Returns
    -------
    X : ndarray of shape (n_tasks * n_samples_per_task, 1)
    y : ndarray of shape (n_tasks * n_samples_per_task,)
    groups : ndarray of shape (n_tasks * n_samples_per_task,), int64
        Task of each row, grouped: ``n_samples_per_task`` rows per task in order.
    amplitude, phase : ndarray of shape (n_tasks,)
        Only with ``return_params=True``.

    Examples
    --------
    >>> from skmeta.datasets import make_sinusoid_tasks
    >>> X, y, groups = make_sinusoid_tasks(n_tasks=3, n_samples_per_task=5,
    ...                                    random_state=0)
    >>> X.shape, y.shape, groups.tolist()
    ((15, 1), (15,), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2])
    """
    for name, value in (
        ("n_tasks", n_tasks),
        ("n_samples_per_task", n_samples_per_task),
    ):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}.")
    rng = check_random_state(random_state)
    amplitude = rng.uniform(*amplitude_range, size=n_tasks)
    phase = rng.uniform(*phase_range, size=n_tasks)
    if evenly_spaced:
        x = np.tile(np.linspace(*x_range, n_samples_per_task), (n_tasks, 1))
    else:
        x = rng.uniform(*x_range, size=(n_tasks, n_samples_per_task))
    y = amplitude[:, None] * np.sin(x - phase[:, None])
    if noise:
        y = y + rng.normal(scale=noise, size=y.shape)
    groups = np.repeat(np.arange(n_tasks, dtype=np.int64), n_samples_per_task)
    out = (x.reshape(-1, 1), y.ravel(), groups)
    return (*out, amplitude, phase) if return_params else out
