"""A model card: a README in Markdown written beside a model file.

Everything in it is read from the model (:func:`model_card`): what it is, how
it was meta-trained and on what, how well it did where that was measured
(``config["evaluations"]``, ``config["calibration"]``), and how to use it.
Nothing is typed in by hand, so the card cannot disagree with the weights it
describes; write it again after adding an evaluation.
"""

from __future__ import annotations

import datetime
import json
import numbers
from collections.abc import Mapping
from pathlib import Path

from .printable import printable
from .provenance import calibration_check
from .setting_checks import finite_number

__all__ = ["card_path", "evaluation_record", "model_card"]


def card_path(path: str | Path) -> Path:
    """Where the card of the model file `path` goes: the same name, ``.md``.

    Examples
    --------
    >>> card_path("models/glyphs.safetensors").as_posix()
    'models/glyphs.md'
    """
    return Path(path).with_suffix(".md")


def evaluation_record(
    task: str, mean: float, ci95: float, n_episodes: int, data: Mapping | None = None
) -> dict:
    """One entry of ``config["evaluations"]``.

    Parameters
    ----------
    task : str
        E.g. ``"5-way 1-shot, 15 queries"``.
    mean, ci95 : float
        Mean accuracy over episodes and its 95% confidence half-width.
    n_episodes : int
    data : mapping, optional
        What the evaluation data was, e.g. ``{"source": "eval/", "n_classes":
        20}``.

    Returns
    -------
    dict
        JSON-ready, with the date (UTC) it was measured.
    """
    return {
        "task": str(task),
        "mean": float(mean),
        "ci95": float(ci95),
        "n_episodes": int(n_episodes),
        "data": dict(data or {}),
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


def check_evaluation(evaluation: Mapping) -> dict:
    """`evaluation` as an entry of ``config["evaluations"]``, checked.

    Parameters
    ----------
    evaluation : mapping
        ``task`` (str), ``mean`` and ``ci95`` (real numbers), ``n_episodes``
        (a positive int), and optionally ``data`` (a mapping) and anything
        else that JSON can hold.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        Naming the entry that is missing or of the wrong kind, or if the
        mapping cannot be written as JSON.
    """
    entry = dict(evaluation)
    kinds = {"task": str, "mean": numbers.Real, "ci95": numbers.Real}
    kinds.update(n_episodes=numbers.Integral)
    for key, kind in kinds.items():
        value = entry.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(
                f"An evaluation needs {key!r}, a {kind.__name__}; got "
                f"{value!r} (evaluation_record(task, mean, ci95, n_episodes) "
                "makes one)."
            )
    if entry["n_episodes"] < 1 or not isinstance(entry.get("data", {}), Mapping):
        raise ValueError(
            "An evaluation needs n_episodes >= 1 and data, if given, a mapping; "
            f"got n_episodes={entry['n_episodes']!r}, data={entry.get('data')!r}."
        )
    for key in ("mean", "ci95"):  # a JSON int can be beyond any float
        if not (isinstance(entry[key], float) or finite_number(entry[key])):
            raise ValueError(f"An evaluation's {key} is {entry[key]!r}: no float.")
    entry.update(mean=float(entry["mean"]), ci95=float(entry["ci95"]))
    entry["n_episodes"] = int(entry["n_episodes"])  # NumPy numbers too
    try:
        return json.loads(json.dumps(entry))  # plain JSON values, as saved
    except (TypeError, ValueError) as exc:
        raise ValueError(f"An evaluation must be JSON: {exc}.") from None


def _listed(names, most: int = 20) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _repeat(training, random_state, drawn=False) -> str:
    """How the run can be repeated, in words after its seed."""
    before = training.get("n_iter_before") or 0
    if before:  # a warm start (or partial_fit) continued an earlier model
        return (
            f"(continuing a model of {before} iterations: that model, the same "
            "settings, data and seed repeat this part)"
        )
    if random_state is not None:
        drawn = ", itself drawn for random_state=None" if drawn else ""
        return (
            f"(drawn from random_state={random_state}{drawn}: the same "
            "settings, data and random_state repeat the run)"
        )
    return (  # a RandomState or a resumed run: only the seed itself
        "(meta_train with this seed, the same settings and data repeats the run)"
    )


def _training_settings(training, random_state=None, drawn=False) -> list[str]:
    """The card's lines on how the run can be repeated: its settings and seed
    (and the estimator's `random_state` it was drawn from, if recorded), what
    its classes count, and what was held out."""
    rotations = {"rot90": 4, "dihedral": 8}.get(training.get("class_augmentation"))
    lines = [
        f"- learning rate {training.get('learning_rate')}, "
        f"{training.get('meta_batch_size')} episode(s) per update, precision "
        f"{training.get('precision')}, seed {training.get('seed')} "
        + _repeat(training, random_state, drawn),
        f"- augmentation: {training.get('augmentation') or 'none'}",
    ]
    if rotations:
        lines.append(
            f"- class augmentation `{training['class_augmentation']}`: each class "
            f"and its {rotations - 1} turned or mirrored copies count as "
            f"{rotations} classes"
        )
    if training.get("early_stopping") or training.get("calibrate"):
        lines.append(
            f"- validation_fraction={training.get('validation_fraction')} of the "
            "classes held out (early stopping, calibration); weights of iteration "
            f"{training.get('best_iter')} kept"
        )
    return lines


def model_card(model, name: str = "model.safetensors") -> str:
    """The Markdown model card of `model` (a MetaModel).

    Parameters
    ----------
    model : MetaModel
    name : str, default="model.safetensors"
        The model file's name, used in the loading snippet.

    Returns
    -------
    str
    """
    config = model.config
    training = config.get("training", {})
    made = config.get("provenance", {}) or {}
    data = made.get("data", {}) or {}
    lines = [
        f"# {Path(name).stem}: a skmeta {model.method} model",
        "",
        "A few-shot model: it learns classes it never saw in meta-training from "
        "a few labelled examples each (see skmeta's user guide).",
        "",
        "## Model",
        "",
        f"- method: `{model.method}` {dict(config.get('method_params', {}))}",
        f"- backbone: `{config.get('backbone_name', config.get('backbone'))}` "
        f"{dict(config.get('backbone_params') or {})}",
        f"- input: rows of {model.n_features} values, shape {model.input_shape}",
        f"- embedding: {model.embedding_dim} features",
    ]
    if config.get("input_normalization"):
        lines.append(f"- input normalisation: {config['input_normalization']}")
    lines += ["", "## Meta-training", ""]
    if config.get("from_module"):
        lines.append("- none: a pretrained module wrapped by `MetaModel.from_module`")
    elif training:
        lines.append(
            f"- {training.get('n_iter')} iterations of {training.get('n_way')}-way "
            f"{training.get('k_shot')}-shot {training.get('n_query')}-query episodes "
            f"on {training.get('n_classes')} classes"
            + (
                f" ({training['elapsed'] / 60:.1f} min"
                + (  # the time of the session that resumed from a checkpoint
                    f" from iteration {training['resumed_from']} on)"
                    if training.get("resumed_from")
                    else ")"
                )
                if training.get("elapsed")
                else ""
            )
        )
        lines += _training_settings(
            training, made.get("random_state"), made.get("random_state_drawn")
        )
        lines.append(
            f"- data: {data.get('n_samples')} rows x {data.get('n_features')} "
            f"({data.get('dtype')})"
        )
        if made.get("class_names"):
            lines.append(f"- classes: {_listed(made['class_names'])}")
        if made.get("feature_names"):
            lines.append(f"- features: {_listed(made['feature_names'])}")
        if made.get("id_column"):
            lines.append(f"- row names: column `{made['id_column']}`, not a feature")
    if made:
        lines.append(
            f"- written by skmeta {made.get('skmeta')}, torch {made.get('torch')}, "
            f"on {made.get('created')}"
        )
    lines += ["", "## Evaluation", ""]
    evaluations = config.get("evaluations") or []
    calibration = config.get("calibration")
    if not evaluations and not calibration:
        lines.append(
            "Not measured yet: `skmeta evaluate MODEL DATA --record` adds a result."
        )
    if evaluations:
        lines += [
            "| task | accuracy | episodes | data | measured |",
            "|---|---|---|---|---|",
        ]
        for e in evaluations:
            lines.append(
                f"| {e['task']} | {100 * e['mean']:.2f} ± {100 * e['ci95']:.2f}% | "
                f"{e['n_episodes']} | {e.get('data', {}).get('source', '')} | "
                f"{e.get('measured', '')} |"
            )
    if calibration:
        lines += [
            "",
            f"Calibration: temperature {calibration['temperature']:.4g}, fitted on "
            f"{calibration.get('n_fit_queries', calibration['n_queries'])} queries "
            f"of {calibration['n_way']}-way episodes of classes held out from "
            "meta-training; expected calibration "
            f"error {100 * calibration['ece_before']:.2f}% -> "
            f"{100 * calibration['ece_after']:.2f}%{calibration_check(calibration)}"
            ", held-out accuracy "
            f"{100 * calibration['accuracy']:.2f}%.",
        ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from skmeta import FewShotClassifier",
        "",
        f'clf = FewShotClassifier(pretrained="{Path(name).name}")'
        + (
            "  # and backbone=: the file holds only weights"
            if config.get("backbone") == "custom"
            else ""
        ),
        "clf.fit(X_support, y_support)   # a few labelled rows per new class",
        "clf.predict(X_query)",
        "```",
        "",
        "## Limits",
        "",
        "- It transfers to classes like those it was meta-trained on; far from "
        "them (another domain), measure before trusting it.",
        "- Accuracy falls with more classes per task and rises with more shots; "
        "the evaluation above says at which sizes it was measured.",
    ]
    return printable("\n".join(lines)) + "\n"  # a file's strings, escaped
