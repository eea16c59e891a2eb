"""What both displays share: Axes to draw on, and axis labels."""

from __future__ import annotations

import numpy as np

# Axis labels of the quantities skmeta records or varies; others are written
# from their key ("grad_norm" -> "Grad norm").
_LABELS = {
    "loss": "Loss",
    "accuracy": "Accuracy",
    "mse": "MSE",
    "learning_rate": "Learning rate",
    "grad_norm": "Gradient norm (before clipping)",
    "elapsed": "Elapsed time (s)",
    "k_shot": "Shots per class (k_shot)",
    "n_way": "Classes per episode (n_way)",
}


def label(key: str) -> str:
    """The axis label of `key`."""
    return _LABELS.get(key, key.replace("_", " ").capitalize())


def axes_for(ax, n: int) -> np.ndarray:
    """`n` Axes to draw on, as an object array of shape (n,).

    `ax` is None (a new figure with one row of `n` Axes), one Axes (when
    ``n == 1``), or an array-like of `n` Axes (any shape).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, axes = plt.subplots(
            1, n, figsize=(4.8 * n, 3.6), squeeze=False, layout="constrained"
        )
        return axes.ravel()
    axes = np.asarray(ax, dtype=object).ravel()
    if axes.size != n:
        raise ValueError(
            f"ax holds {axes.size} Axes, but {n} plots are drawn: pass {n} Axes "
            "(one per plot), or ax=None for a new figure."
        )
    return axes


def merged(defaults: dict, given: dict | None) -> dict:
    """Keyword arguments for a matplotlib call: `given` over `defaults`."""
    return {**defaults, **(given or {})}
