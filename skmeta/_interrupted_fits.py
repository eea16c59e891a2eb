"""What a meta-training cut short means to the estimator that ran it.

**Warm starts.** ``warm_start=True`` continues meta-training from the fitted
``meta_model_``. A warm-started fit cut short (Ctrl-C, or SIGTERM handled in
the process) leaves the estimator holding the cut-short model; its checkpoint,
though, records the model the fit *started* from. So that the next ``fit``
with the same checkpoint resumes that fit rather than being refused ("another
starting model"), the estimator remembers where the interrupted fit started,
for as long as it holds the cut-short model.

**Searches.** Ctrl-C during meta-training ends ``fit`` with the model so far.
Inside ``GridSearchCV``, ``cross_validate`` and the other tools built on
scikit-learn's ``_fit_and_score`` (run in this process), that would score a
cut-short candidate and go on with the next, and a search's refit would keep
a cut-short best estimator: the interrupt is raised again instead, so the
search stops, as the user asked.
"""

from __future__ import annotations

import os
import sys

__all__ = ["after_meta_training", "inside_model_selection", "starting_model"]

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
        and interrupted[0] == _where(checkpoint)
        and os.path.exists(_where(checkpoint))
    ):
        return interrupted[1]
    return estimator.meta_model_


def _where(checkpoint) -> str:
    """The checkpoint's file, as :class:`~.meta.checkpoint.Checkpoint` reads it."""
    return os.path.abspath(os.path.expanduser(os.fspath(checkpoint)))


def after_meta_training(estimator, init, model, checkpoint: str | None) -> None:
    """Record where a warm-started fit that ended interrupted with a
    checkpoint started (else forget any earlier record), and raise the
    interrupt again inside a model-selection fit.

    Parameters
    ----------
    estimator : MetaEstimator
    init : MetaModel or None
        The model the fit warm-started from.
    model : MetaModel
        The model meta-training returned.
    checkpoint : str or None
        The fit's checkpoint path.

    Raises
    ------
    KeyboardInterrupt
        If Ctrl-C cut meta-training short inside scikit-learn's model
        selection (:func:`inside_model_selection`).
    """
    training = model.config.get("training", {})
    interrupted = training.get("interrupted")
    if init is not None and interrupted and checkpoint is not None:
        setattr(estimator, _ATTRIBUTE, (_where(checkpoint), init))
    else:
        estimator.__dict__.pop(_ATTRIBUTE, None)
    if training.get("interrupted_by") == "KeyboardInterrupt" and (
        inside_model_selection()
    ):
        raise KeyboardInterrupt(
            "Meta-training was interrupted inside a scikit-learn search or "
            "cross-validation: it stops here rather than score a cut-short "
            "candidate."
        )


#: (module, function) of scikit-learn's frames that fit one candidate on one
#: split, and of the searches' ``fit`` (whose refit runs outside those).
_MODEL_SELECTION = frozenset(
    {
        ("sklearn.model_selection._validation", "_fit_and_score"),
        ("sklearn.model_selection._validation", "_fit_and_predict"),
        ("sklearn.model_selection._search", "fit"),
    }
)


def inside_model_selection() -> bool:
    """Whether this call runs inside scikit-learn's model selection, in this
    thread: ``_fit_and_score`` or ``_fit_and_predict`` (GridSearchCV,
    cross_validate, learning_curve, cross_val_predict ...), or a search's
    ``fit`` (its refit)."""
    frame = sys._getframe(1)
    while frame is not None:
        where = (frame.f_globals.get("__name__"), frame.f_code.co_name)
        if where in _MODEL_SELECTION:
            return True
        frame = frame.f_back
    return False
