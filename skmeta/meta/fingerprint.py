"""What a meta-training run is: its fingerprint, JSON.

A checkpoint records the fingerprint of its run and is resumed only by the
same run (:mod:`.checkpoint`); the processes of a distributed run compare
theirs before training (:meth:`.distributed.Ranks.check_same`). It holds the
settings that change what is computed (not those of speed, place and
logging, nor those the other settings leave unused), a digest of the data
(X's shape, dtype and values; the class codes, targets and groups), and the
model a warm start continues.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict

import numpy as np
import torch

from .augment import describe_augmentation
from .backbones import resolve_backbone

__all__ = [
    "data_digest",
    "differences",
    "jsonable",
    "longer_run_hint",
    "run_fingerprint",
]

# Settings that change how fast a run goes or where it is saved, not what it
# computes to the bit's order of magnitude, or that a resumed run may change
# (device: a run killed on one machine resumes on another). n_jobs groups the
# MAML family's tasks by worker, which changes float rounding (weights 2e-3
# apart after 40 iterations): a resume is bitwise only with the same n_jobs
# and torch thread count, as docs/user_guide/saving.rst says.
FREE_SETTINGS = ("verbose", "n_jobs", "device", "checkpoint", "checkpoint_every")

# X is read this many bytes of rows at a time: a memory map larger than memory
# is hashed in bounded memory.
CHUNK_BYTES = 64 << 20


def _name(obj) -> str:
    """A stable description of a non-JSON value (no memory addresses)."""
    qualname = getattr(obj, "__qualname__", None)
    if qualname is None:
        qualname = type(obj).__qualname__
    return f"{getattr(obj, '__module__', None) or type(obj).__module__}.{qualname}"


def jsonable(value):
    """`value` as plain JSON (non-JSON values by name)."""
    return json.loads(json.dumps(value, default=_name))


def _digest(*arrays) -> str:
    sha = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        sha.update(f"{array.dtype.str}{array.shape}".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def data_digest(X: np.ndarray) -> str:
    """SHA-256 of `X`'s dtype, shape and values, in row order.

    Read :data:`CHUNK_BYTES` of rows at a time (a C-ordered array or memory
    map is hashed where it lies, without a copy; another layout a chunk at a
    time), so a memory map larger than memory is hashed in bounded memory.
    0.7-1.2 s per GB on one core (measured on a 1 GB ``uint8`` memory map).

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)

    Returns
    -------
    str
        The hex digest.
    """
    sha = hashlib.sha256(f"{X.dtype.str}{tuple(X.shape)}".encode())
    row_bytes = X.itemsize * int(np.prod(X.shape[1:], dtype=np.int64))
    step = max(1, CHUNK_BYTES // max(1, row_bytes))
    for start in range(0, X.shape[0], step):
        sha.update(memoryview(np.ascontiguousarray(X[start : start + step])).cast("B"))
    return sha.hexdigest()


def _settings(settings) -> dict:
    """The settings that make the run what it is: not those of speed, place
    and logging, nor those unused (early stopping's patience without early
    stopping; the validation split without early stopping or calibration)."""
    fields = {k: v for k, v in asdict(settings).items() if k not in FREE_SETTINGS}
    if not settings.early_stopping:
        del fields["n_iter_no_change"]
    if not settings.normalize_y:  # as checkpoints written before it had none
        del fields["normalize_y"]
    if not (settings.early_stopping or settings.calibrate):
        del fields["validation_fraction"], fields["n_val_episodes"]
    if not isinstance(settings.backbone, str):
        fields["backbone"] = _name(settings.backbone)
    elif settings.backbone == "auto":  # the network it is: "mlp" is the same run
        fields["backbone"] = resolve_backbone("auto", settings.input_shape)
    fields["augmentation"] = describe_augmentation(settings.augmentation)
    return fields


def run_fingerprint(settings, X, y, targets=None, init=None, groups=None) -> dict:
    """What makes a run the run it is, JSON: its settings (all but those of
    speed, place and logging, and those the others leave unused), the data's
    shape, dtype and a digest of its values (:func:`data_digest`), a digest
    of the class codes (and targets, and the groups when episodes are drawn
    within them), and the model it started from.

    Parameters
    ----------
    settings : TrainSettings
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    targets : ndarray of shape (n_samples,), optional
    init : MetaModel, optional
        The model a warm start continues (:func:`.checkpoint.start_from`).
    groups : ndarray of shape (n_samples,), int, optional
        The rows' groups; part of the run with ``within_group_episodes``.

    Returns
    -------
    dict
    """
    data = {
        "shape": list(X.shape),
        "dtype": str(X.dtype),
        "values": data_digest(X),
        "labels": _digest(np.asarray(y, dtype=np.int64)),
        "targets": None if targets is None else _digest(np.asarray(targets)),
    }
    if groups is not None and settings.within_group_episodes:
        data["groups"] = _digest(np.asarray(groups, dtype=np.int64))
    start = None
    if init is not None:
        start = {
            "n_iter": int(init.config.get("training", {}).get("n_iter", 0)),
            "weights": _digest(
                *(
                    t.reshape(-1).view(torch.uint8).numpy()  # any dtype, as bytes
                    for _, t in sorted(init.state.items())
                )
            ),
        }
    fields = _settings(settings)
    return jsonable({"settings": fields, "data": data, "warm_start": start})


_DATA_PARTS = {
    "shape": "X's shape",
    "dtype": "X's dtype",
    "values": "X's values",
    "labels": "y (the class codes)",
    "targets": "the targets",
    "groups": "the groups",
}


def differences(recorded: Mapping, current: Mapping) -> list[str]:
    """What differs between two fingerprints, in words (none: the same run).

    Only the settings `current` holds are compared (one that is unused here
    may be recorded there), and X's values only when `recorded` holds them
    (a checkpoint written before they were digested). ``backbone="auto"`` is
    recorded as the backbone it resolves to (:func:`.backbones.resolve_backbone`),
    so ``"mlp"`` resumes a run of ``"auto"`` on rows; a checkpoint written
    before recorded ``"auto"``, resolved here by its `input_shape`.
    """
    found, settings = [], recorded.get("settings", {})
    for name, value in current.get("settings", {}).items():
        before = settings.get(name)
        if name == "backbone" and before == "auto":  # recorded unresolved before
            before = resolve_backbone("auto", settings.get("input_shape") or ())
        if before != value:
            source = (
                " (drawn from random_state, not itself a random_state; "
                "random_state=None resumes the run the file holds)"
                if name == "seed"
                else ""
            )
            found.append(f"{name}={before!r} there, {value!r} here{source}")
    there, here = recorded.get("data", {}), current.get("data", {})
    parts = [
        words
        + (f" {there.get(key)} there, {here.get(key)} here" if key == "shape" else "")
        for key, words in _DATA_PARTS.items()
        if there.get(key) != here.get(key) and (key != "values" or key in there)
    ]
    if parts:
        found.append(f"other data ({', '.join(parts)})")
    if recorded.get("warm_start") != current.get("warm_start"):
        found.append("another starting model (warm_start)")
    return found


def longer_run_hint(recorded: Mapping, current: Mapping, found: list) -> str:
    """What to do when a higher max_iter is all that differs between
    fingerprints (`found`: their :func:`differences`); "" otherwise: the
    sentence a refused resume ends with."""
    there = recorded.get("settings", {}).get("max_iter")
    here = current.get("settings", {}).get("max_iter")
    numbers = isinstance(there, int) and isinstance(here, int)
    if len(found) != 1 or not numbers or here <= there:
        return ""
    return (
        " A run cannot be made longer (its learning rate's cosine schedule "
        f"spans its max_iter): to meta-train on, finish it with max_iter={there}, "
        "then, in Python, fit again with warm_start=True (meta_train's init=), "
        f"max_iter={here - there} (the iterations to add) and a new checkpoint "
        "path; the command line has no warm start: a longer run is a new one, "
        "with a new checkpoint path."
    )
