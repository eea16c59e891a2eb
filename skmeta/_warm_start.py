"""Which model a warm-started ``fit`` continues from.

``warm_start=True`` continues meta-training from the fitted ``meta_model_``.
A warm-started fit cut short (Ctrl-C, or SIGTERM handled in the process)
leaves the estimator holding the cut-short model; its checkpoint, though,
records the model the fit *started* from. So that the next ``fit`` with the
same checkpoint resumes that fit rather than being refused ("another
starting model"), the estimator remembers where the interrupted fit started,
for as long as it holds the cut-short model.
"""

from __future__ import annotations

import os

__all__ = ["remember_start", "starting_model"]

_ATTRIBUTE = "_interrupted_warm_start"  # (checkpoint path, starting model)


def starting_model(estimator, checkpoint: str | None):
    """The model a fit of `estimator` warm-starts from, or None (no warm start).

    The fitted ``meta_model_``; but the starting model of the interrupted
    warm-started fit that produced it, when this fit resumes that fit's
    checkpoint (the same path, the file still there).
    """
    if not (estimator.warm_start and hasattr(estimator, "meta_model_")):
        return None
    interrupted = getattr(estimator, _ATTRIBUTE, None)
    if (
        interrupted is not None
        and checkpoint is not None
        and interrupted[0] == os.path.abspath(checkpoint)
        and os.path.exists(checkpoint)
    ):
        return interrupted[1]
    return estimator.meta_model_


def remember_start(estimator, init, model, checkpoint: str | None) -> None:
    """Record where a warm-started fit that ended interrupted with a
    checkpoint started (else forget any earlier record): `init` is the model
    it started from, `model` the one it returned."""
    interrupted = model.config.get("training", {}).get("interrupted")
    if init is not None and interrupted and checkpoint is not None:
        setattr(estimator, _ATTRIBUTE, (os.path.abspath(checkpoint), init))
    else:
        estimator.__dict__.pop(_ATTRIBUTE, None)
