"""Regression targets: their summary in a model's provenance, and the
warnings when their scale would hurt meta-training or adaptation."""

from __future__ import annotations

import warnings

import numpy as np

from .meta.caller import user_stacklevel
from .meta.model import MetaModel

__all__ = ["target_summary", "warn_if_unscaled", "warn_on_target_scale"]

# Meta-training's targets as given count as unscaled beyond these: a mean
# more than UNSCALED_SHIFT standard deviations from 0, or a standard deviation
# outside UNSCALED_SPREAD (the inner loop's and Adam's steps assume about 1:
# Reptile at its defaults diverged on targets of deviation 42, a reviewer).
UNSCALED_SHIFT = 3.0
UNSCALED_SPREAD = (0.1, 10.0)

# How far a new task's targets may lie from the meta-training targets before
# adaptation is warned about: a spread over TARGET_SPREAD_FACTOR times theirs,
# or a mean more than TARGET_SHIFT_FACTOR of their standard deviations away
# (as far as meta-training's own check, UNSCALED_SHIFT). A sine-wave model
# (targets of mean 0.3, deviation 2) went from MSE 1.1 to 7.2 with 5 added
# to a task's y, and to 1,046 with 10, unwarned at the earlier factor of 10.
TARGET_SPREAD_FACTOR = 10.0
TARGET_SHIFT_FACTOR = 3.0


def target_summary(targets, normalize_y: bool = False, scaling=None) -> dict:
    """``{"targets": {"mean", "std"}}`` of regression targets, for the model's
    provenance; ``{}`` for classification (`targets` None). Warns when they
    are far from standardised (:func:`warn_if_unscaled`) and `normalize_y`
    does not standardise them, or when `scaling` (a warm start's recorded
    ``target_scaling``, which the run keeps) leaves them far from it."""
    if targets is None:
        return {}
    values = np.asarray(targets, dtype=np.float64)
    summary = {"mean": float(values.mean()), "std": float(values.std())}
    if not normalize_y:
        warn_if_unscaled(**summary)
    elif scaling:
        mean = (summary["mean"] - scaling["mean"]) / scaling["std"]
        std = summary["std"] / scaling["std"]
        low, high = UNSCALED_SPREAD
        if abs(mean) > UNSCALED_SHIFT * max(std, 1.0) or not low <= std <= high:
            warnings.warn(
                f"warm_start keeps the first run's target scaling (mean "
                f"{scaling['mean']:.4g}, std {scaling['std']:.4g}), and y (mean "
                f"{summary['mean']:.4g}, std {summary['std']:.4g}) is far from "
                "it: give y in the units of the first run, or set "
                "warm_start=False to standardise these targets anew.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    return {"targets": summary}


def warn_if_unscaled(mean: float, std: float) -> None:
    """Warn before meta-training on targets far from standardised: the
    network and its inner loop see them as given, and a shift (kelvins) or a
    scale (dollars) left a sine-wave regressor 1,600 times worse."""
    low, high = UNSCALED_SPREAD
    if abs(mean) <= UNSCALED_SHIFT * std and low <= std <= high:
        return
    warnings.warn(
        f"y has mean {mean:.4g} and standard deviation {std:.4g}: meta-training "
        "fits the targets as given, and far from mean 0 and deviation 1 it "
        "learns poorly or diverges (a sine-wave regressor's test MSE went from "
        "0.30 to 488 with 300 added to y). Set normalize_y=True: the model "
        "then standardises y by the meta-training targets' mean and standard "
        "deviation, the same for every new task, and scales its predictions "
        "back.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def warn_on_target_scale(model: MetaModel, y) -> None:
    """Warn when a new task's targets `y` lie far from those `model`
    meta-trained on: a standard deviation over 10 times theirs, or a mean
    more than 3 of their standard deviations away (a smaller spread is
    not judged: one task may vary less than all tasks together).

    The network sees standardised rows, and the targets as given or (with
    ``normalize_y``) standardised by the meta-training targets' statistics,
    the same for every task: either way a task on another scale (e.g. cents
    for dollars) adapts poorly or diverges. Models written before the
    targets were recorded are not checked.
    """
    recorded = (model.config.get("provenance") or {}).get("targets")
    if not recorded or recorded["std"] <= 0 or len(y) < 2:
        return
    # float64: the squares of float32 targets of 1e20 overflow float32
    mean = float(np.mean(y, dtype=np.float64))
    std = float(np.std(y, dtype=np.float64))
    ratio = std / recorded["std"]
    shift = abs(mean - recorded["mean"]) / recorded["std"]
    # one task may vary far less than all of meta-training's together: only a
    # spread or a shift beyond theirs is judged
    if ratio <= TARGET_SPREAD_FACTOR and shift <= TARGET_SHIFT_FACTOR:
        return
    scaling = (
        "the model standardises every task's targets by those two numbers"
        if model.config.get("target_scaling")
        else "the model does not rescale targets"
    )
    warnings.warn(
        f"y (mean {mean:.4g}, std {std:.4g}) lies far from the targets the "
        f"model meta-trained on (mean {recorded['mean']:.4g}, std "
        f"{recorded['std']:.4g}); {scaling}, so adaptation fits poorly or "
        "diverges. Give y in the units of the meta-training targets.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
