"""The help and messages of the ``skmeta`` command: flag help read from the
estimators' docstrings (:func:`parameter_help`), valid values from the
library's registries, defaults, and :func:`flag_names`, which names estimator
parameters by the flags that set them in help and error messages.
"""

from __future__ import annotations

import argparse
import json
import re

from ._cli_data import augmentation_names

__all__ = [
    "FLAG_OF",
    "TRAIN_FLAGS",
    "choices",
    "flag_names",
    "json_object",
    "parameter_help",
    "train_flag_help",
]

#: JSON's name of each kind of value json.loads returns.
_JSON_KINDS = {list: "an array", str: "a string", bool: "true or false"}


def json_object(value: str) -> dict:
    """The value of a flag that takes a JSON object (``--backbone-params``,
    ``--method-params``).

    Parameters
    ----------
    value : str
        The flag's text, e.g. ``'{"trainable_blocks": 1}'``.

    Returns
    -------
    dict

    Raises
    ------
    argparse.ArgumentTypeError
        For text that is not JSON, or JSON that is not an object; argparse
        prints it after the flag's name.
    """
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not valid JSON ({exc.msg} at character {exc.pos}); "
            """give an object such as '{"hidden_channels": 32}', in single """
            "quotes for the shell."
        ) from None
    if not isinstance(parsed, dict):
        kind = "null" if parsed is None else _JSON_KINDS.get(type(parsed), "a number")
        raise argparse.ArgumentTypeError(
            f"{value!r} is {kind}, not a JSON object; give names and values in "
            """braces, such as '{"hidden_channels": 32}'."""
        )
    return parsed


# (flag, estimator parameter, argparse type); the help is the docstring's first
# sentence, or _OWN_HELP's, then the valid values and the default.
TRAIN_FLAGS = [
    ("--method", "method", str),
    ("--backbone", "backbone", str),
    ("--max-iter", "max_iter", int),
    ("--n-way", "n_way", int),
    ("--k-shot", "k_shot", int),
    ("--n-query", "n_query", int),
    ("--meta-batch-size", "meta_batch_size", int),
    ("--learning-rate", "learning_rate", float),
    ("--class-augmentation", "class_augmentation", str),
    ("--augmentation", "augmentation", augmentation_names),
    ("--validation-fraction", "validation_fraction", float),
    ("--n-iter-no-change", "n_iter_no_change", int),
    ("--device", "device", str),
    ("--precision", "precision", str),
    ("--seed", "random_state", int),
    ("--checkpoint", "checkpoint", str),
    ("--checkpoint-every", "checkpoint_every", int),
    ("--backbone-params", "backbone_params", json_object),
    ("--method-params", "method_params", json_object),
]

# One docstring entry for three parameters: a help of each flag's own.
_OWN_HELP = {
    "n_way": "Episode size in meta-training: classes per episode.",
    "k_shot": "Labelled examples per class in meta-training episodes.",
    "n_query": "Queries per class in meta-training episodes.",
    "backbone_params": "Keyword arguments of the backbone, a JSON object: e.g. "
    '{"hidden_sizes": [128]} for mlp, {"hidden_channels": 32} for conv4, '
    '{"weights": "DEFAULT"} for torchvision:<name>; skmeta reads two keys '
    'itself, "trainable_blocks" (train only the last k blocks) and '
    '"input_normalization" ("data", "imagenet" or {"mean": [...], "std": '
    "[...]} per channel).",
    "method_params": "Settings of the method, a JSON object: e.g. "
    '{"distance": "cosine"} for protonet, {"inner_steps": 3, "inner_lr": 0.1} '
    "for maml; a setting the method does not take is refused, naming those "
    "it takes.",
}

# What the flags whose estimator default is None stand for when left out.
_DEFAULTS = {
    "method": "protonet",
    "n_way": "adapted to the data: at most 20",
    "k_shot": "adapted to the data: 1",
    "n_query": "adapted to the data: at most 15",
    "meta_batch_size": "1",
    "learning_rate": "the method's own",
    "class_augmentation": "none",
    "augmentation": "none",
    "random_state": "not seeded",
    "checkpoint": "none",
    "checkpoint_every": "every validation interval",
    "backbone_params": "none",
    "method_params": "the method's defaults",
}

# Each estimator or loader parameter the command line sets, and its flag.
FLAG_OF = {name: flag for flag, name, _ in TRAIN_FLAGS} | {
    "calibrate": "--calibrate",
    "early_stopping": "--early-stopping",
    "on_empty": "--on-empty",
    "on_error": "--on-error",
    "label_column": "--label-column",
    "image_size": "--image-size",
    "unknown_label": "--unknown-label",
    "rejection_rate": "--rejection-rate",
    "transductive": "--transductive",
    "n_episodes": "--n-episodes",
}


def flag_names(text: str) -> str:
    """`text` with each estimator parameter the command line sets named by its
    flag: ``The 'random_state' parameter of X`` becomes ``--seed``,
    ``calibrate=True`` ``--calibrate``, ``on_empty='warn'`` ``--on-empty
    warn``, and ``validation_fraction`` ``--validation-fraction``.

    Examples
    --------
    >>> flag_names("Raise validation_fraction=0.1 or pass on_empty='warn'.")
    'Raise --validation-fraction 0.1 or pass --on-empty warn.'
    """

    def parameter(match: re.Match) -> str:
        return FLAG_OF.get(match.group(1), match.group(0))

    text = re.sub(r"[Tt]he '(\w+)' parameter of \w+", parameter, text)

    def setting(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in FLAG_OF:
            return match.group(0)
        if value in ("True", "False"):
            return FLAG_OF[name] if value == "True" else f"no {FLAG_OF[name]}"
        return f"{FLAG_OF[name]} {value.strip(chr(39) + chr(34))}"

    # name=value, not inside a path or a longer identifier
    text = re.sub(
        r"(?<![\w/.-])(\w+)=('[^'\s]*'|\"[^\"\s]*\"|[\w.+-]+)(?![\w/])", setting, text
    )
    names = "|".join(n for n in sorted(FLAG_OF, key=len, reverse=True) if "_" in n)
    text = re.sub(rf"(?<![\w/.'-])({names})(?![\w/'])", parameter, text)
    # a bare word is a parameter only beside one: "early_stopping / calibrate"
    beside = r"(--early-stopping ?(?:/|and|or) ?)calibrate\b"
    text = re.sub(beside, r"\1--calibrate", text)
    text = text.replace("leave it None", "leave the flag out")
    return text.replace("Leave one of them None", "Leave one of them out")


def parameter_help(name: str, sentence: int = 0, max_chars: int = 240) -> str:
    """A sentence (the first by default) of the ``FewShotClassifier``
    docstring's entry for parameter `name`, alone or in a group such as
    ``n_way, k_shot, n_query`` (markup dropped, parameter names given as the
    flags that set them, ``%`` doubled for argparse, cut at `max_chars`)."""
    from ._classifier import FewShotClassifier

    doc = FewShotClassifier.__doc__ or ""
    section = doc.split("Parameters\n    ----------\n", 1)[-1]
    match = re.search(
        rf"^    (?:\w+, )*{name}(?:, \w+)* : [^\n]*\n((?:        [^\n]*\n|\n)+)",
        section,
        re.MULTILINE,
    )
    if match is None:
        return ""
    text = " ".join(match.group(1).split())
    parameters = FewShotClassifier().get_params()

    def flag(match: re.Match) -> str:  # `parameter`: the flag that sets it
        if match[1] in FLAG_OF or match[1] not in parameters:
            return FLAG_OF.get(match[1], match[0])
        return f"{match[1]} (no flag: Python API only)"

    text = re.sub(r"(?<![:`])`(\w+)`(?!`)", flag, text)
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "").replace("`", "")
    # a sentence ends at a full stop and a space, not in "e.g." or "et al."
    sentences = re.split(r"(?<=\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!al\.)\s", text)
    chosen = sentences[sentence] if sentence < len(sentences) else ""
    return flag_names(shortened(chosen, max_chars)).replace("%", "%%")


def shortened(text: str, max_chars: int) -> str:
    """`text` cut to `max_chars` (``...`` included) at a clause (``:`` or
    ``;`` in its second half) or else a word, with no parenthesis left open.

    Examples
    --------
    >>> shortened("Keep it (a file (atomic, then renamed) in JSON) here", 20)
    'Keep it...'
    """
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 3]
    clause = max(cut.rfind(": "), cut.rfind("; "))
    cut = cut[:clause] if clause > len(cut) // 2 else cut.rsplit(" ", 1)[0]
    while cut.count("(") > cut.count(")"):
        cut = cut[: cut.rfind("(")]
    return cut.rstrip(",;: ") + "..."


def choices(name: str) -> list[str] | None:
    """The valid values of parameter `name`, from the library's registries."""
    from ._image_folder import _MODES
    from ._parameters import PARAMETER_CONSTRAINTS
    from .meta.algorithms import ALGORITHMS
    from .meta.precision import PRECISIONS

    if name == "method":
        return list(ALGORITHMS)
    if name == "precision":
        return list(PRECISIONS)
    if name == "class_augmentation":
        return sorted(PARAMETER_CONSTRAINTS[name][0].options)
    if name == "color":
        return list(_MODES)
    return None


def train_flag_help(name: str, kind) -> str:
    """The help of the ``train`` flag that sets parameter `name` (argparse type
    `kind`): what it does, its valid values and its default (``%(default)s``
    where the estimator's own default says it)."""
    from .meta.augment import PRESETS
    from .meta.backbones import BUILTIN_BACKBONES
    from .meta.vision import PREFIX

    text = _OWN_HELP.get(name) or parameter_help(name)
    if name == "backbone":
        names = ", ".join(["auto", *BUILTIN_BACKBONES])
        text += f" One of {names}, or {PREFIX}<name> (a torchvision model)."
    elif name == "augmentation":
        text += f" Presets: {', '.join(PRESETS)}."
    elif choices(name):
        text += " One of %(choices)s."
    text += getattr(kind, "help", "")
    return f"{text} (default: {_DEFAULTS.get(name, '%(default)s')})"
