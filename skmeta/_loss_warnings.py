"""The warnings a meta-training run's loss curve calls for: a loss that did
not fall (nothing learnt), and a run that reached ``max_iter`` while its loss
was still falling (``ConvergenceWarning``)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .meta.caller import user_stacklevel

__all__ = ["warn_about_the_loss", "warn_if_not_learning", "warn_if_still_improving"]

# Share of its value the loss must still be falling by, between the last two
# fifths of the records, for meta-training to count as unfinished; and the
# least fall that counts (a loss of 1e-9 reaching 0 has levelled off).
STILL_IMPROVING = 0.02
LEAST_FALL = 1e-4


def warn_about_the_loss(model, max_iter: int) -> None:
    """The warnings meta-training's loss curve calls for:
    :func:`warn_if_not_learning`, else :func:`warn_if_still_improving`
    (under torchrun, by the main process only)."""
    from .meta.distributed import is_main_process

    world = model.config["training"].get("world_size", 1)
    if (world == 1 or is_main_process()) and not warn_if_not_learning(model):
        warn_if_still_improving(model, max_iter)  # once per distributed run


# A first loss this low (or negative) is not judged: nothing left to learn.
LOSS_FLOOR = 1e-3


def warn_if_not_learning(model) -> bool:
    """A ``UserWarning`` when a fresh meta-training run's loss did not fall:
    the mean of the last fifth of the records is not 2% below that of the
    first fifth (e.g. MANN on data it cannot learn, its loss flat at
    ln(n_way)). Warm starts, interrupted runs, distillation and runs with
    fewer than 10 records are not judged. Returns whether it warned."""
    training, history = model.config["training"], model.history
    if (
        training.get("interrupted")
        or training.get("n_iter_before", 0)
        or len(history) < 10
        or "generation" in history[-1]
    ):
        return False
    values = np.array([record["loss"] for record in history], dtype=float)
    k = len(values) // 5
    first, last = values[:k].mean(), values[-k:].mean()
    if not (np.isfinite(first) and first > LOSS_FLOOR):  # nothing left to learn
        return False
    if last < first - STILL_IMPROVING * abs(first):
        return False
    warnings.warn(
        f"Meta-training's loss did not fall ({first:.4g} -> {last:.4g} from "
        f"the first to the last fifth of {training['n_iter']} iterations): "
        f"method={model.method!r} learnt nothing from this data. Try another "
        "learning_rate, standardised features, or another method.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return True


# A run whose training records end here has fitted its meta-training episodes:
# a training loss still falling says nothing about new classes then (longer
# runs on a small table scored worse on held-out classes while training
# accuracy reached 0.98, a reviewer), so it is not told to train longer.
FITTED_ACCURACY = 0.95
FITTED_LOSS = 0.01


def fitted_training_episodes(history) -> bool:
    """Whether the last fifth of `history`'s training records averages an
    accuracy of at least ``FITTED_ACCURACY`` (0.95; classification), or a
    loss below ``FITTED_LOSS`` (0.01; any method)."""
    tail = history[-max(len(history) // 5, 1) :]
    accuracy = [r["accuracy"] for r in tail if "accuracy" in r]
    if accuracy and np.mean(accuracy) >= FITTED_ACCURACY:
        return True
    return bool(np.mean([r["loss"] for r in tail]) < FITTED_LOSS)


def warn_if_still_improving(model, max_iter: int) -> None:
    """A ``ConvergenceWarning`` when meta-training ran all `max_iter`
    iterations while its loss was still falling (as scikit-learn's MLP warns).

    The loss is the validation loss when early stopping recorded one, else the
    training loss; "still falling" means the mean of the last fifth of the
    records is more than 2% (and 1e-4) below the mean of the fifth before.
    Runs stopped early, interrupted, or with fewer than 10 records are not
    judged. Of a distillation method (records with a ``generation``), the
    last generation is judged. Judged on the training loss, a run that has
    fitted its episodes (:func:`fitted_training_episodes`: training accuracy
    at least 0.95, or loss below 0.01, over the last fifth) does not warn,
    and the warning says to check held-out classes before raising
    `max_iter`: a falling training loss can also be meta-overfitting.
    """
    training = model.config["training"]
    history = model.history
    if history and "generation" in history[-1]:  # distillation: the last one's
        last = history[-1]["generation"]
        history = [r for r in history if r.get("generation") == last]
    if (
        training.get("interrupted")
        or training["n_iter"] < training.get("n_iter_before", 0) + max_iter
        or len(history) < 10
    ):
        return
    key = "val_loss" if "val_loss" in history[-1] else "loss"
    if key == "loss" and fitted_training_episodes(history):
        return
    values = np.array([record[key] for record in history], dtype=float)
    k = len(values) // 5
    before, last = values[-2 * k : -k].mean(), values[-k:].mean()
    fall = max(STILL_IMPROVING * abs(before), LEAST_FALL)
    if not (np.isfinite(before) and last < before - fall):
        return
    if key == "val_loss":
        what, advice = (
            "validation loss",
            "the model may be undertrained. Raise max_iter.",
        )
    else:
        held_out = "classes" if "accuracy" in history[-1] else "tasks"
        what, advice = (
            "meta-training loss",
            f"more iterations may help, but check on held-out {held_out} first "
            "(early_stopping=True, or episodic_score of the model on "
            f"{held_out} kept out of meta-training): a falling training loss "
            "can also be meta-overfitting, which longer meta-training makes "
            f"worse on new {held_out}.",
        )
    warnings.warn(
        f"Meta-training reached max_iter={max_iter} while its {what} was "
        f"still falling ({before:.4g} -> {last:.4g} over the last "
        f"{2 * k} records); {advice}",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )
