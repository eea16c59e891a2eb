"""Where a model came from: versions, date, the data it saw; and its summary.

Recorded in ``config["provenance"]`` at meta-training, so a model file says
which skmeta and torch wrote it, when, and from what data shape, classes and
feature names (:func:`describe`); :func:`summary` is the text of
``MetaModel.summary()`` and ``skmeta info``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping

import numpy as np
import torch

from .input_normalization import expected_pixel_range, infer_pixel_range
from .printable import printable

__all__ = ["calibration_check", "describe", "summary"]

#: How the summary names what interrupted meta-training (``interrupted_by``).
_INTERRUPTIONS = {"KeyboardInterrupt": "Ctrl-C"} | {
    name: name for name in ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
}


def describe(X, extra: Mapping | None = None, method: str | None = None) -> dict:
    """The provenance record of a meta-training run on rows `X`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    extra : mapping, optional
        What the caller knows besides, e.g. ``class_names`` and
        ``feature_names`` (lists of str).
    method : str, optional
        The method meta-trained; one loaded from a plugin is recorded as
        ``method_plugin`` (:meth:`.algorithms.plugins.Plugin.record`: its
        distribution, version and entry point).

    Returns
    -------
    dict
        JSON-ready: ``skmeta``, ``torch`` and ``numpy`` versions, ``created``
        (UTC, ISO 8601), ``data`` (``n_samples``, ``n_features``, ``dtype``,
        ``pixel_range``: :func:`~.input_normalization.infer_pixel_range`),
        and `extra`'s entries.
    """
    from .._version import __version__
    from .algorithms.plugins import PLUGINS

    plugin = PLUGINS.get(method) if method is not None else None
    return {
        "skmeta": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "data": {
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "dtype": str(X.dtype),
            # a white pixel's value, were the rows images (255 or 1)
            "pixel_range": infer_pixel_range(X),
        },
        **({} if plugin is None else {"method_plugin": plugin.record()}),
        **{k: v for k, v in dict(extra or {}).items() if v is not None},
    }


def _plugin_line(made) -> list[str]:
    """Where a plugin's method came from, as the model file records it."""
    record = made.get("method_plugin") if isinstance(made, Mapping) else None
    if not isinstance(record, Mapping):
        return []
    return [
        f"plugin:       {record.get('distribution')} {record.get('version')} "
        f"({record.get('entry_point')})"
    ]


def _names(names, most: int = 8) -> str:
    shown = ", ".join(str(n) for n in names[:most])
    return f"{len(names)} ({shown}{', ...' if len(names) > most else ''})"


def _numbers(values) -> str:
    return ", ".join(f"{float(v):.4g}" for v in values)


def _input_lines(config: Mapping) -> list[str]:
    """How a model of images takes its rows: the pixel range they must have
    and how they are normalised (none for a model of table rows)."""
    if len(config.get("input_shape") or ()) != 3:
        return []
    expected = expected_pixel_range(config)
    norm = config.get("input_normalization")
    if norm:
        pixel = "pixel" if expected == 1.0 else f"pixel / {expected:g}"
        how = (
            f"{norm.get('kind', 'custom')}: each channel as ({pixel} - mean) / "
            f"std, mean ({_numbers(norm['mean'])}), std ({_numbers(norm['std'])})"
        )
    elif config.get("from_module"):
        how = "none (rows reach the module as they are)"
    else:
        how = "by the meta-training data's mean and scale"
    scale = "not recorded" if expected is None else f"0-{expected:g}"
    return [f"pixel range:  {scale}", f"normalised:   {how}"]


def summary(model, path=None) -> str:
    """A few lines describing `model` (a MetaModel), for people.

    Parameters
    ----------
    model : MetaModel
    path : str or path-like, optional
        The file it was read from, shown first.

    Returns
    -------
    str
    """
    config = model.config
    params = dict(config.get("method_params", {}))
    backbone_params = dict(config.get("backbone_params") or {})
    lines = [] if path is None else [f"model:        {path}"]
    lines += [
        f"method:       {model.method} {params}",
        *_plugin_line(config.get("provenance")),
        f"backbone:     {config.get('backbone_name', config['backbone'])} "
        f"{backbone_params}",
        f"input shape:  {model.input_shape}",
        *_input_lines(config),
        f"embedding:    {model.embedding_dim} features",
    ]
    training = config.get("training", {})
    if config.get("from_module"):
        lines.append("meta-trained: no (a module wrapped by MetaModel.from_module)")
    elif training:
        lines.append(
            f"meta-trained: {training.get('n_iter')} iterations "
            f"({training.get('n_way')}-way {training.get('k_shot')}-shot "
            f"{training.get('n_query')}-query, {training.get('n_classes')} classes)"
            + (
                ", interrupted ("
                + _INTERRUPTIONS.get(training.get("interrupted_by"), "Ctrl-C")
                + "): the model so far"
                if training.get("interrupted")
                else ""
            )
        )
    if training.get("seed") is not None and not config.get("from_module"):
        lines.append(f"seed:         {_seed_line(training, config.get('provenance'))}")
    calibration = config.get("calibration")
    if calibration:
        lines.append(
            f"calibration:  temperature {calibration['temperature']:.4g}; on "
            f"{calibration['n_queries']} queries of {calibration.get('n_way', '?')}"
            "-way episodes of held-out classes, expected "
            f"calibration error {100 * calibration['ece_before']:.2f}% -> "
            f"{100 * calibration['ece_after']:.2f}%{calibration_check(calibration)}"
        )
    made = config.get("provenance")
    if made:
        data = made.get("data", {})
        lines.append(
            f"written by:   skmeta {made.get('skmeta')}, torch {made.get('torch')}, "
            f"{made.get('created')}"
        )
        lines.append(
            f"data:         {data.get('n_samples')} rows x {data.get('n_features')} "
            f"({data.get('dtype')})"
        )
        if made.get("class_names"):
            lines.append(f"classes:      {_names(list(made['class_names']))}")
        if made.get("feature_names"):
            lines.append(f"features:     {_names(list(made['feature_names']))}")
        if made.get("id_column"):
            lines.append(f"row names:    column {made['id_column']!r} (not a feature)")
    for e in config.get("evaluations") or []:
        lines.append(
            f"evaluated:    {e['task']}: {100 * e['mean']:.2f} ± "
            f"{100 * e['ci95']:.2f}% ({e['n_episodes']} episodes, {e.get('measured')})"
        )
    if model.history:
        lines.append(f"last record:  {json.dumps(dict(model.history[-1]))}")
    return printable("\n".join(lines))  # a file's strings, escaped


def _seed_line(training: Mapping, made: Mapping | None) -> str:
    """The run's seed, the `random_state` it was drawn from (when an int was
    given), and the thread counts its sums depend on: what repeats it."""
    random_state = (made or {}).get("random_state")
    drawn = (made or {}).get("random_state_drawn")
    line = f"{training['seed']} " + (
        f"(drawn from random_state={random_state}"
        + (", itself drawn for random_state=None" if drawn else "")
        + ")"
        if random_state is not None
        else "(no random_state recorded: meta_train with this seed repeats it)"
    )
    for key, name in (
        ("torch_threads", "torch thread"),
        ("task_workers", "task worker"),
    ):
        count = training.get(key)
        if count is not None:
            line += f", {count} {name}" + ("" if count == 1 else "s")
    return line


def calibration_check(calibration: Mapping) -> str:
    """How a ``config["calibration"]`` record checked its temperature, to
    follow its calibration errors in a sentence: '' for a record written
    before the temperature was checked on episodes it was not fitted on."""
    if "n_check_queries" not in calibration:
        return ""
    note = (
        f" on the {calibration['n_check_queries']} queries of the half of the "
        "episodes the temperature was not fitted on"
    )
    if calibration.get("temperature_kept_at_1"):
        note += (
            f"; the fitted temperature {calibration['fitted_temperature']:.4g} "
            f"({100 * calibration['ece_fitted']:.2f}% there) is not applied"
        )
    return note
