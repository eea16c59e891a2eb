"""Checks of what a model file records about itself, before anything reads it.

Besides the network (:mod:`.io_checks`), a model file's JSON holds records
that the network does not need and that other code reads later: where the
model came from (``config["provenance"]``), how it was meta-trained
(``config["training"]``), its calibration and evaluations, and the history.
``skmeta info``, the model card, the estimators (feature names, the targets'
scale, the episode sizes of meta-training) and the command line (the
``--id-column`` recorded) format and compute with them. A record of the wrong
JSON type, in a damaged or hand-made file, would fail there, long after
loading, with a bare ``TypeError`` or ``AttributeError``; :func:`check_records`
refuses it at loading instead, with a ``ValueError`` that names the field.

Only the types those readers rely on are checked: a record may be absent or
``null`` where files written before it lack it, and keys this skmeta does not
know are kept (a newer skmeta may add some).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

from .model_card import check_evaluation
from .setting_checks import finite_number

__all__ = ["check_records"]

_INT, _REAL, _STR, _BOOL = "an int", "a finite number", "a string", "a bool"

#: ``config["provenance"]``: its entries and their kinds.
_PROVENANCE = {
    "skmeta": _STR,
    "torch": _STR,
    "numpy": _STR,
    "created": _STR,
    "id_column": _STR,
    "random_state": _INT,
    "random_state_drawn": _BOOL,
}
#: ``config["provenance"]["data"]``.
_DATA = {"n_samples": _INT, "n_features": _INT, "dtype": _STR, "pixel_range": _REAL}
#: ``config["training"]``: what is computed with or looked up by value.
_TRAINING = {
    **dict.fromkeys(
        (
            "n_iter",
            "n_iter_before",
            "best_iter",
            "resumed_from",
            "world_size",
            "torch_threads",
            "task_workers",
            "seed",
            "n_way",
            "k_shot",
            "n_query",
            "n_classes",
            "meta_batch_size",
            "max_iter",
        ),
        _INT,
    ),
    "elapsed": _REAL,
    "interrupted": _BOOL,
    "early_stopping": _BOOL,
    "calibrate": _BOOL,
    "interrupted_by": _STR,
    "class_augmentation": _STR,
}
#: ``config["calibration"]`` beyond its temperature and score quantiles
#: (:func:`.io_checks._check_calibration`): always written ...
_CALIBRATION = {
    "n_queries": _INT,
    "n_way": _INT,
    "accuracy": _REAL,
    "ece_before": _REAL,
    "ece_after": _REAL,
}
#: ... and written since the temperature is checked on held-out episodes
#: (all but ``temperature_kept_at_1`` then set).
_CALIBRATION_LATER = {
    "fitted_temperature": _REAL,
    "ece_fitted": _REAL,
    "n_fit_queries": _INT,
    "n_check_queries": _INT,
    "temperature_kept_at_1": _STR,
}
#: A history record's entries that are computed with.
_HISTORY = {"iter": _INT, "loss": "a number", "val_loss": "a number"}
_HISTORY["generation"] = _INT


def _fits(value, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == _BOOL
    if kind == _INT:
        return isinstance(value, Integral)
    if kind == _REAL:
        return finite_number(value)
    if kind == "a number":  # a loss may be NaN or infinite: recorded as it was
        return isinstance(value, float) or finite_number(value)
    return isinstance(value, str) if kind == _STR else False


def _check_entries(record: dict, kinds: dict, where: str, fail, required=()) -> None:
    """Each entry of `record` named in `kinds` is of its kind or None (those
    in `required` present and not None)."""
    for key, kind in kinds.items():
        value = record.get(key)
        if value is None and key not in required:
            continue
        if not _fits(value, kind):
            fail(f"{where}[{key!r}] is {value!r:.60}, not {kind}")


def _object(value, where: str, fail, null: bool = True) -> dict:
    """`value` if a JSON object, {} if None and `null` (a record never
    written as ``null`` is read as ``record.get(key, {})``); else the file
    is refused."""
    if value is None and null:
        return {}
    if not isinstance(value, dict):
        fail(f"{where} is {value!r:.60}, not a JSON object")
    return value


def _names(value, where: str, fail) -> None:
    if value is not None and not (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        fail(f"{where} is {value!r:.60}, not a list of strings")


def _check_normalization(norm, fail) -> None:
    """``config["input_normalization"]``: None, or what
    :meth:`~.net.MetaNet.set_channel_normalization` records."""
    where = "config['input_normalization']"
    norm = _object(norm, where, fail)
    if not norm:
        return
    for key in ("mean", "std"):
        values = norm.get(key)
        if not (isinstance(values, list) and values) or not all(
            _fits(v, _REAL) for v in values
        ):
            fail(f"{where}[{key!r}] is {values!r:.60}, not a list of numbers")
    kinds = {"kind": _STR, "pixel_range": _REAL}
    _check_entries(norm, kinds, where, fail, ("pixel_range",))
    if not norm["pixel_range"] > 0:
        fail(f"{where}['pixel_range'] is {norm['pixel_range']!r}, not positive")


def check_records(config: dict, history: list, fail: Callable[[str], None]) -> None:
    """Refuse records of a model file of the wrong JSON types.

    Parameters
    ----------
    config : dict
        The file's ``config``.
    history : list of dict
        The file's ``history``.
    fail : callable
        Called with the problem, in words; raises ``ValueError``.
    """
    _check_normalization(config.get("input_normalization"), fail)
    made = _object(config.get("provenance"), "config['provenance']", fail)
    where = "config['provenance']"
    _check_entries(made, _PROVENANCE, where, fail)
    data = _object(made.get("data", {}), f"{where}['data']", fail, null=False)
    _check_entries(data, _DATA, f"{where}['data']", fail)
    for key in ("class_names", "feature_names"):
        _names(made.get(key), f"{where}[{key!r}]", fail)
    if made.get("targets") is not None:
        targets = _object(made["targets"], f"{where}['targets']", fail)
        kinds = {"mean": _REAL, "std": _REAL}
        _check_entries(targets, kinds, f"{where}['targets']", fail, kinds)
    _object(made.get("method_plugin"), f"{where}['method_plugin']", fail)
    training = config.get("training", {})
    training = _object(training, "config['training']", fail, null=False)
    _check_entries(training, _TRAINING, "config['training']", fail)
    if config.get("calibration"):  # its temperature and quantiles: io_checks
        calibration, where = config["calibration"], "config['calibration']"
        _check_entries(calibration, _CALIBRATION, where, fail, _CALIBRATION)
        later = set(_CALIBRATION_LATER) - {"temperature_kept_at_1"}
        if "n_check_queries" not in calibration:  # written before: none of them
            later = ()
        _check_entries(calibration, _CALIBRATION_LATER, where, fail, later)
    evaluations = config.get("evaluations")
    if evaluations is not None and not isinstance(evaluations, list):
        fail(f"config['evaluations'] is {evaluations!r:.60}, not a list")
    for i, entry in enumerate(evaluations or ()):
        entry = _object(entry, f"config['evaluations'][{i}]", fail)
        try:
            check_evaluation(entry)
        except ValueError as exc:
            fail(f"config['evaluations'][{i}]: {exc}")
        _check_entries(entry, {"measured": _STR}, f"config['evaluations'][{i}]", fail)
    for i, record in enumerate(history):
        _check_entries(record, _HISTORY, f"history[{i}]", fail)
