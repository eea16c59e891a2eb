"""The ``skmeta`` command's parser: its commands and flags (their help and
valid values come from ``_cli_help.py``)."""

from __future__ import annotations

import argparse

from ._cli_help import (
    TRAIN_FLAGS,
    choices,
    json_object,
    parameter_help,
    train_flag_help,
)

__all__ = ["build_parser", "image_size"]


def _estimator_defaults() -> dict:
    from ._extractor import MetaFeatureExtractor

    return MetaFeatureExtractor().get_params()


def image_size(value: str) -> int:
    """One of ``--image-size``'s values: a positive int."""
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a positive number of pixels"
        )
    return size


class _HeightWidth(argparse.Action):
    """``--image-size``: one value (square) or two (height, width), no more."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) > 2:
            raise argparse.ArgumentError(
                self, f"one or two values (height [width]), not {len(values)}"
            )
        setattr(namespace, self.dest, values)


def _add_data_flags(command) -> None:
    command.add_argument(
        "--image-size",
        type=image_size,
        nargs="+",
        action=_HeightWidth,
        default=None,
        metavar="N",
        help="image folders: height [width] in pixels, one or two values (train "
        "default: 84; other commands: the model's, the only size they take)",
    )
    command.add_argument(
        "--color",
        choices=choices("color"),
        default=None,
        help="image folders: colour or grey ('gray' is 'grey'; train default: "
        "rgb; other commands: the model's, the only colour they take)",
    )
    _add_table_flags(command)


def _add_table_flags(command) -> None:
    command.add_argument(
        "--label-column",
        default=None,  # given or not: embed reads a table without one
        help=".csv data: the column of labels (default: label; refused for "
        "image folders and .npz files, labelled by subfolders and y)",
    )
    # None when left out, so that a table refuses them given (_cli_image_flags)
    command.add_argument(
        "--on-empty",
        choices=["raise", "warn"],
        default=None,
        help="image folders of class subfolders: a class subfolder with no "
        "image is an error (raise) or is skipped with a warning (warn) "
        "(default: raise; refused for tables)",
    )
    command.add_argument(
        "--on-error",
        choices=["raise", "warn"],
        default=None,
        help="image folders: an unreadable image file is an error (raise) or "
        "is skipped with a warning (warn) (default: raise; refused for tables)",
    )


def _add_id_flag(command, role: str = "") -> None:
    command.add_argument(
        "--id-column",
        metavar="NAME",
        default=None,
        help=".csv data: the column of the rows' identifiers (any text; an "
        f".npz file's array of that name), not a feature{role}. Train "
        "records it in the model file; the other commands use that column "
        "when the flag is left out",
    )


def _output_ids(output: str) -> str:
    """What --id-column does in a command that writes rows to `output`."""
    return f": the first column of {output}, named NAME, instead of the row number"


def _add_transductive_flag(command, rows: str) -> None:
    from .meta.transductive import TRANSDUCTIVE

    command.add_argument(
        "--transductive",
        choices=list(TRANSDUCTIVE),
        default=None,
        help=f"label {rows} jointly with the support set (default: each on its "
        "own), by one of FewShotClassifier's transductive methods: "
        + parameter_help("transductive", sentence=1, max_chars=400),
    )


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="meta-train on DATA, write a model file",
        description="Meta-train a backbone on the classes of DATA and write the "
        "model (safetensors weights + JSON; no pickle).",
    )
    train.add_argument("data", metavar="DATA")
    train.add_argument(
        "--out",
        required=True,
        help="model file to write (its folder must exist; checked before training)",
    )
    defaults = _estimator_defaults()
    for flag, name, kind in TRAIN_FLAGS:
        metavar = flag[2:].upper().replace("-", "_")
        train.add_argument(
            flag,
            dest=name,  # the estimator parameter it sets
            metavar="JSON" if kind is json_object else metavar,
            type=kind,
            choices=choices(name),
            default=None,  # the estimator's; shown in the help
            help=train_flag_help(name, kind).replace(
                "%(default)s", str(defaults[name])
            ),
        )
    for flag, name in (
        ("--calibrate", "calibrate"),
        ("--early-stopping", "early_stopping"),
    ):
        train.add_argument(
            flag, action="store_true", default=None, help=parameter_help(name)
        )
    train.add_argument(
        "--card",
        action="store_true",
        help="also write the model card (Markdown) beside the model, as "
        "OUT with the suffix .md",
    )
    _add_id_flag(train)
    _add_data_flags(train)
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="N-way K-shot accuracy of MODEL on the classes of DATA",
        description="Few-shot accuracy as papers report it: mean and 95% "
        "confidence interval over random episodes of DATA's classes.",
    )
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("data", metavar="DATA")
    for flag, default, what in (
        ("--n-way", 5, "classes per episode"),
        ("--k-shot", 1, "labelled examples per class (the support set)"),
        ("--n-query", 15, "queries per class, scored"),
        ("--n-episodes", 600, "episodes averaged"),
        ("--seed", 0, "seed of the episodes"),
    ):
        evaluate.add_argument(
            flag, type=int, default=default, help=f"{what} (default: %(default)s)"
        )
    _add_transductive_flag(evaluate, "each episode's queries")
    evaluate.add_argument(
        "--groups",
        metavar="NAME[,SOURCE]",
        default=None,
        help="episodes within a group: the array (.npz) or column (.csv) of "
        "each row's group; a second name, each row's source, takes the "
        "support from one source and the queries from another (Lake et "
        "al.'s one-shot runs: alphabet,drawer)",
    )
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.add_argument(
        "--record",
        action="store_true",
        help="add the result to the model file's evaluations (rewritten "
        "atomically; its model card beside it too, if there is one)",
    )
    _add_id_flag(evaluate)
    _add_data_flags(evaluate)


def _add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="label query images or rows from a labelled support set",
        description="Adapt MODEL to the support set, then print each query's "
        "label and probability as CSV with the columns file (the image's file, "
        "or the row's number; or the --id-column, under its name), label and "
        "probability (of that label among the "
        "support set's classes; empty for a query labelled --unknown-label). "
        "Image models take folders; table models take .npz or .csv files.",
    )
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument(
        "--support",
        required=True,
        metavar="DATA",
        help="the labelled examples of the classes to tell apart: a folder of "
        "class subfolders of images, an .npz file (X, y) or a .csv file with a "
        "label column",
    )
    predict.add_argument(
        "--query",
        required=True,
        metavar="DATA",
        help="what to label: a folder of images (searched recursively), an .npz "
        "file (X; any y is ignored) or a .csv file (any label column is ignored)",
    )
    predict.add_argument(
        "--unknown-label",
        metavar="LABEL",
        default=None,
        help=parameter_help("unknown_label"),
    )
    predict.add_argument(
        "--rejection-rate",
        type=float,
        default=None,
        help=parameter_help("rejection_rate"),
    )
    _add_transductive_flag(predict, "the query images")
    ids = _output_ids("the output (a support set's column left out too)")
    _add_id_flag(predict, ids)
    _add_table_flags(predict)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``skmeta`` and its commands."""
    from . import __version__
    from ._demo import add_demo_parser

    parser = argparse.ArgumentParser(
        prog="skmeta",
        description="Meta-learning as scikit-learn estimators, on your files.",
        epilog="Exit status: 0 success, 2 bad arguments or input, 1 other "
        "failure (a missing optional dependency among them), 130 interrupted "
        "(Ctrl-C), 143 terminated (SIGTERM; 128 + the signal's number for "
        "SIGHUP, SIGUSR1, SIGUSR2); train then writes the model so far.",
    )
    parser.add_argument("--version", action="version", version=f"skmeta {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(commands)
    _add_train(commands)
    _add_evaluate(commands)

    embed = commands.add_parser(
        "embed",
        help="embed DATA with MODEL",
        description="Embed every row or image of DATA; .npy, .npz, .csv or "
        '.parquet by the name given to --out (.parquet needs pip install "skmeta'
        '[parquet]").',
    )
    embed.add_argument("model", metavar="MODEL")
    embed.add_argument("data", metavar="DATA")
    embed.add_argument(
        "--out",
        required=True,
        help="features file to write: .npy, .npz, .csv or .parquet",
    )
    ids = _output_ids("a .csv or .parquet output (an .npz output's names)")
    _add_id_flag(embed, ids)
    _add_data_flags(embed)

    _add_predict(commands)
    info = commands.add_parser(
        "info",
        help="describe a model file, or (no MODEL) this installation",
        description="Describe a model file: method, backbone, input, "
        "meta-training, provenance, evaluations. A model with a custom backbone "
        "is described from its metadata, its network not rebuilt. Without MODEL: "
        "the versions of skmeta, Python, torch, numpy and scikit-learn, and the "
        "methods loaded from plugins (for bug reports).",
    )
    info.add_argument("model", metavar="MODEL", nargs="?")
    return parser
