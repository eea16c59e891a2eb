"""The classes (a regressor's tasks) that ``early_stopping`` and ``calibrate``
hold out for validation: how many, and the errors and warnings they call
for. ``skmeta.meta.batches.split_classes`` draws them, counting as here."""

from __future__ import annotations

import warnings

from .meta.caller import user_stacklevel

__all__ = [
    "check_classes_left",
    "check_tasks_left",
    "held_out_classes",
    "held_out_note",
    "warn_if_calibrated_on_fewer_ways",
]


def held_out_classes(estimator, n_classes: int) -> int:
    """Classes (tasks) held out for validation: `validation_fraction` of
    them, at least 2 (a regressor: 1), or 0 without early stopping or
    calibration."""
    if not (estimator.early_stopping or estimator._calibrates()):
        return 0
    least = 1 if estimator._task.regression else 2  # a validation episode's
    return max(least, int(round(estimator.validation_fraction * n_classes)))


def held_out_note(estimator, held: int) -> str:
    """The clause an episode-size error adds when classes are held out."""
    if not held:
        return ""
    return (
        f", of which early_stopping or calibrate hold out {held} for validation "
        f"(validation_fraction={estimator.validation_fraction})"
    )


def check_classes_left(estimator, n_classes: int, held: int) -> None:
    """Refuse early stopping or calibration that leaves fewer than 2 classes
    to meta-train on (y has 2 or 3 classes: 2 are held out)."""
    if held and n_classes - held < 2:
        raise ValueError(
            f"early_stopping and calibrate hold out at least 2 of the classes "
            f"for validation and meta-train on at least 2 others; y has "
            f"{n_classes}. Turn early_stopping and calibrate off, or give y "
            "4 classes or more."
        )


def check_tasks_left(estimator, n_tasks: int, held: int) -> None:
    """Refuse a regressor's early stopping that leaves no task to train on."""
    if estimator.early_stopping and held >= n_tasks:
        raise ValueError(
            f"early_stopping holds out validation_fraction="
            f"{estimator.validation_fraction} of the {n_tasks} task(s) (groups): "
            f"{held}, at least one, and needs one left to meta-train on. Lower "
            "validation_fraction, give more tasks, or leave early_stopping off."
        )


def warn_if_calibrated_on_fewer_ways(estimator, held: int, n_way: int) -> None:
    """Calibration's temperature and open-set scores come from episodes of
    the held-out classes; fewer of them than meta-training's ways may
    miscalibrate wider tasks (also under ``calibrate="auto"``, which the
    floor of 2 held-out classes now lets run on 4 to 14 classes)."""
    if not estimator._calibrates() or not 1 < held < n_way:
        return
    warnings.warn(
        f"calibrate fits the temperature and the open-set scores on {held}-way "
        f"episodes of the {held} classes validation_fraction="
        f"{estimator.validation_fraction} holds out, fewer than the "
        f"n_way={n_way} of meta-training: probabilities of tasks with more "
        "ways may be miscalibrated. Raise validation_fraction to hold out "
        "as many classes as your tasks have.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
