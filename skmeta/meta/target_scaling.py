"""Regression targets standardised for meta-training, and predictions scaled
back: what ``normalize_y=True`` does.

The inner loop's step sizes and Adam's assume targets of about unit spread; a
sine-wave regressor meta-trained on targets shifted by 300 went from a test MSE
of 0.30 to 488. With ``normalize_y``, meta-training subtracts the mean of its
targets and divides by their standard deviation, and the model records both
(``config["target_scaling"]``): every adaptation then standardises its support
targets with those same two numbers, the same for every task, and
predictions are scaled back. Per-task statistics would be estimated from a
handful of support rows, and would hide a task's level and amplitude from the
network.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .setting_checks import finite_number

__all__ = [
    "check_target_scaling",
    "fit_target_scaling",
    "scale_targets",
    "unscale_outputs",
]


def fit_target_scaling(targets, normalize_y: bool, init=None) -> dict | None:
    """The scaling a meta-training run uses: ``{"mean", "std"}`` or None.

    Parameters
    ----------
    targets : ndarray of shape (n_samples,) or None
        The run's regression targets; None for classification.
    normalize_y : bool
        Whether the run standardises its targets.
    init : MetaModel, optional
        The model a warm start continues: its scaling is kept, since its
        network learnt on it.

    Returns
    -------
    dict or None
        ``{"mean": float, "std": float}`` (the standard deviation of constant
        targets counts as 1), or None when the run does not scale.

    Raises
    ------
    ValueError
        If `normalize_y` is set for classification, or differs from the
        warm-start model's.
    """
    if targets is None:
        if normalize_y:
            raise ValueError("normalize_y=True applies to regression targets only.")
        return None
    if init is not None:
        recorded = init.config.get("target_scaling")
        if bool(recorded) != bool(normalize_y):
            raise ValueError(
                f"warm_start=True continues a model meta-trained with "
                f"normalize_y={bool(recorded)}, not {bool(normalize_y)}: its "
                "network learnt targets on that scale. Keep the fitted model's "
                "normalize_y, or set warm_start=False."
            )
        return None if recorded is None else dict(recorded)
    if not normalize_y:
        return None
    values = np.asarray(targets, dtype=np.float64)
    std = float(values.std())
    return {"mean": float(values.mean()), "std": std if std > 0 else 1.0}


def scale_targets(scaling: Mapping | None, y: np.ndarray) -> np.ndarray:
    """`y` standardised by `scaling` (unchanged when it is None), float32."""
    if scaling is None:
        return y
    return ((np.asarray(y, np.float64) - scaling["mean"]) / scaling["std"]).astype(
        np.float32
    )


def unscale_outputs(scaling: Mapping | None, outputs: np.ndarray) -> np.ndarray:
    """Network outputs of shape (n_samples, 1) on the targets' own scale
    (unchanged when `scaling` is None), float32."""
    if scaling is None:
        return outputs
    return (outputs.astype(np.float64) * scaling["std"] + scaling["mean"]).astype(
        np.float32
    )


def check_target_scaling(record, fail) -> None:
    """What adaptation reads of a model file's ``config["target_scaling"]``:
    a finite mean and a positive finite standard deviation; `fail(message)`
    raises."""
    if not isinstance(record, Mapping) or set(record) != {"mean", "std"}:
        fail(f"config['target_scaling'] is {record!r}, not a dict of mean and std")
    mean, std = record["mean"], record["std"]
    if not (finite_number(mean) and finite_number(std)) or std <= 0:
        fail(
            f"config['target_scaling'] is {dict(record)!r}: it needs a finite mean "
            "and a positive finite std"
        )
