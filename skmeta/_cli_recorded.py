"""What ``skmeta train`` recorded of its table in the model file, read back
by the commands that take the model: the ``--id-column`` left out of the
features (:func:`resolve_id_column`), and the classes meta-trained on, whose
episodes would overstate the accuracy on new classes
(:func:`warn_trained_classes`)."""

from __future__ import annotations

import warnings

import numpy as np

from ._cli_tables import is_number

__all__ = ["resolve_id_column", "warn_trained_classes"]


def resolve_id_column(model, given, label_column=None, groups=None):
    """The ``--id-column`` of a command that takes `model`.

    Parameters
    ----------
    model : MetaModel
    given : str or None
        The flag's value.
    label_column : str, optional
        ``--label-column``, which the recorded column must not name.
    groups : list of str, optional
        ``--groups`` (evaluate), which it must not name either.

    Returns
    -------
    str or None
        `given`; when left out, the column ``skmeta train --id-column``
        recorded (a table without it has none, and its rows are numbered),
        unless that now names the label column or a group.
    """
    if given is not None:
        return given
    recorded = (model.config.get("provenance") or {}).get("id_column")
    return None if recorded in (label_column, *(groups or ())) else recorded


def warn_trained_classes(model, labels, source) -> None:
    """Warn when `labels` (array of shape (n_samples,)) hold classes `model`
    meta-trained on, by the class names its file records: their episodes
    overstate its accuracy on new ones. Numbers name nothing (each file may
    count its classes from 0): only other names count."""
    made = model.config.get("provenance") or {}
    trained = {str(name) for name in made.get("class_names") or ()}
    classes = [str(label) for label in np.unique(labels)]
    seen = [name for name in classes if name in trained and not is_number(name)]
    if seen:
        shown = ", ".join(repr(name) for name in seen[:5])
        warnings.warn(
            f"{len(seen)} of the {len(classes)} classes of {source} are classes "
            f"the model meta-trained on ({shown}{', ...' if len(seen) > 5 else ''}):"
            " their episodes overstate its accuracy on new classes.",
            UserWarning,
            stacklevel=3,
        )
