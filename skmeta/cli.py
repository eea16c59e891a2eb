"""The ``skmeta`` command line: the estimators on your own files.

Commands: ``demo``, ``train``, ``evaluate``, ``embed``, ``predict``, ``info``.
``DATA`` is a folder with one subfolder of images per class, an ``.npz`` file
(``X``, ``y``) or a ``.csv`` file with a label column. Each flag that sets an
estimator parameter takes its help from that parameter's docstring.

Exit status: 0 on success, 2 for bad arguments or input (a message names the
file or flag), 1 for any other failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ._cli_data import augmentation_names

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

# (flag, estimator parameter, argparse type); help comes from the docstring.
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
    ("--device", "device", str),
    ("--precision", "precision", str),
    ("--seed", "random_state", int),
]


def parameter_help(name: str, sentence: int = 0, max_chars: int = 240) -> str:
    """A sentence (the first by default) of the ``FewShotClassifier``
    docstring's entry for parameter `name`, alone or in a group such as
    ``n_way, k_shot, n_query`` (markup dropped, ``%`` doubled for argparse,
    cut at `max_chars`)."""
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
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "").replace("`", "")
    sentences = re.split(r"(?<=\.)(?<!al\.)\s", text)
    chosen = sentences[sentence] if sentence < len(sentences) else ""
    if len(chosen) > max_chars:
        chosen = chosen[: max_chars - 3].rsplit(" ", 1)[0] + "..."
    return chosen.replace("%", "%%")


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


def _add_data_flags(command) -> None:
    command.add_argument(
        "--image-size",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="image folders: height [width] in pixels (train default: 84; "
        "other commands: the model's)",
    )
    command.add_argument(
        "--color",
        choices=["rgb", "grey"],
        default=None,
        help="image folders: colour or grey (train default: rgb; other "
        "commands: the model's)",
    )
    command.add_argument(
        "--label-column",
        default="label",
        help=".csv data: the column of labels (default: label)",
    )


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from ._demo import add_demo_parser

    parser = argparse.ArgumentParser(
        prog="skmeta",
        description="Meta-learning as scikit-learn estimators, on your files.",
        epilog="Exit status: 0 success, 2 bad arguments or input, 1 other failure.",
    )
    parser.add_argument("--version", action="version", version=f"skmeta {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_demo_parser(commands)

    train = commands.add_parser(
        "train",
        help="meta-train on DATA, write a model file",
        description="Meta-train a backbone on the classes of DATA and write the "
        "model (safetensors weights + JSON; no pickle).",
    )
    train.add_argument("data", metavar="DATA")
    train.add_argument("--out", required=True, help="model file to write")
    for flag, name, kind in TRAIN_FLAGS:
        train.add_argument(
            flag,
            dest=name,  # the estimator parameter it sets
            metavar=flag[2:].upper().replace("-", "_"),
            type=kind,
            default=None,
            help=parameter_help(name) + getattr(kind, "help", ""),
        )
    train.add_argument(
        "--calibrate",
        action="store_true",
        default=None,
        help=parameter_help("calibrate"),
    )
    train.add_argument(
        "--card",
        action="store_true",
        help="also write the model card (Markdown) beside the model, as "
        "OUT with the suffix .md",
    )
    _add_data_flags(train)
    train.add_argument("--quiet", action="store_true", help="no progress bar")

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
            flag, type=int, default=default, help=f"{what} (default: {default})"
        )
    _add_transductive_flag(evaluate, "each episode's queries")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.add_argument(
        "--record",
        action="store_true",
        help="add the result to the model file's evaluations (rewritten "
        "atomically; its model card beside it too, if there is one)",
    )
    _add_data_flags(evaluate)

    embed = commands.add_parser(
        "embed",
        help="embed DATA with MODEL",
        description="Embed every row or image of DATA; .npy, .npz, .csv or "
        ".parquet by the name given to --out.",
    )
    embed.add_argument("model", metavar="MODEL")
    embed.add_argument("data", metavar="DATA")
    embed.add_argument("--out", required=True, help="features file to write")
    _add_data_flags(embed)

    predict = commands.add_parser(
        "predict",
        help="label the images of a query folder from a labelled support set",
        description="Adapt MODEL to the support set (a folder of class "
        "subfolders, .npz or .csv), then print each query image's label.",
    )
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("--support", required=True, metavar="DATA")
    predict.add_argument("--query", required=True, metavar="DIR")
    predict.add_argument("--label-column", default="label")
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

    info = commands.add_parser("info", help="describe a model file")
    info.add_argument("model", metavar="MODEL")
    return parser


def _load_model(path):
    from ._cli_data import DataError
    from .meta.model import MetaModel

    if not Path(path).is_file():
        raise DataError(f"{path}: no such model file.")
    try:
        return MetaModel.load(path)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None


def _image_options(args, model=None) -> dict:
    """image_size and color for image folders: the flags, else the model's."""
    size, color = args.image_size, args.color
    shape = None if model is None else model.input_shape
    if size is None:
        size = [84] if shape is None or len(shape) != 3 else list(shape[1:])
    if color is None:
        color = "rgb" if shape is None or len(shape) != 3 or shape[0] == 3 else "grey"
    size = (size[0], size[-1])
    return {"image_size": size, "color": color, "label_column": args.label_column}


def _train(args) -> None:
    """Meta-train and write the model; under torchrun, every process trains
    its share and rank 0 writes (docs/user_guide/distributed.rst)."""
    from ._cli_data import load_dataset
    from ._extractor import MetaFeatureExtractor
    from .meta.distributed import is_main_process

    data = load_dataset(args.data, **_image_options(args))
    params = {
        name: getattr(args, name)
        for name in [name for _, name, _ in TRAIN_FLAGS] + ["calibrate"]
        if getattr(args, name) is not None
    }
    extractor = MetaFeatureExtractor(
        input_shape=data.input_shape, verbose=0 if args.quiet else 1, **params
    ).fit(data.X, data.y)
    if is_main_process():
        extractor.meta_model_.save(args.out, card=args.card)
        print(f"wrote {args.out} ({extractor.n_iter_} iterations)")


def _evaluate(args) -> None:
    from ._classifier import FewShotClassifier
    from ._cli_data import load_dataset
    from .model_selection import episodic_score

    model = _load_model(args.model)
    data = load_dataset(args.data, **_image_options(args, model))
    result = episodic_score(  # transductive: each episode's queries jointly
        FewShotClassifier(pretrained=model, transductive=args.transductive),
        data.X,
        data.y,
        n_way=args.n_way,
        k_shot=args.k_shot,
        n_query=args.n_query,
        n_episodes=args.n_episodes,
        random_state=args.seed,
        verbose=int(sys.stderr.isatty()),  # a progress bar on a terminal
    )
    task = f"{args.n_way}-way {args.k_shot}-shot"
    if args.transductive is not None:
        task += f", transductive {args.transductive}"
    if args.record:
        from .meta.model_card import card_path, evaluation_record

        entry = evaluation_record(
            f"{task}, {args.n_query} queries",
            result.mean,
            result.ci95,
            args.n_episodes,
            {"source": str(args.data), "n_classes": int(len(set(data.y)))},
        )
        model.with_evaluation(entry).save(
            args.model, card=card_path(args.model).is_file()
        )
    if args.json:
        print(
            json.dumps(
                {
                    "task": task,
                    "mean": result.mean,
                    "ci95": result.ci95,
                    "n_episodes": args.n_episodes,
                }
            )
        )
    else:
        print(
            f"{task}: {100 * result.mean:.2f} ± {100 * result.ci95:.2f}% "
            f"({args.n_episodes} episodes of {args.n_query} queries per class)"
        )


def _embed(args) -> None:
    from ._cli_data import load_dataset, save_features
    from ._extractor import MetaFeatureExtractor

    model = _load_model(args.model)
    data = load_dataset(args.data, **_image_options(args, model))
    extractor = MetaFeatureExtractor(pretrained=model).fit(data.X[:1])
    save_features(args.out, extractor.transform(data.X), data)
    print(f"wrote {args.out} ({len(data.X)} rows of {model.embedding_dim} features)")


def _predict(args) -> None:
    from ._classifier import FewShotClassifier
    from ._cli_data import load_dataset, load_unlabelled_images

    model = _load_model(args.model)
    shape = model.input_shape
    options = {"label_column": args.label_column}
    if len(shape) == 3:
        options.update(image_size=shape[1:], color="grey" if shape[0] == 1 else "rgb")
    support = load_dataset(args.support, **options)
    query = load_unlabelled_images(args.query, shape)
    classifier = FewShotClassifier(
        pretrained=model,
        unknown_label=args.unknown_label,
        rejection_rate=args.rejection_rate,
        transductive=args.transductive,
    )
    if args.transductive is None:
        classifier.fit(support.X, support.y)
        labels = classifier.predict(query.X)
        confidence = classifier.predict_proba(query.X).max(1)
    else:  # the query images are the unlabelled rows of the fit
        from scipy.special import softmax

        from ._transductive_episodes import fit_with_queries

        fit_with_queries(classifier, support.X, support.y, query.X)
        labels = classifier.transduction_[len(support.X) :]
        scores = classifier.adapted_["unlabelled_scores"].numpy()
        confidence = softmax(scores, axis=1).max(1)  # the labels' probabilities
    print("file,label,probability")
    for name, label, p in zip(query.names, labels, confidence, strict=True):
        print(f"{name},{label},{p:.4f}")


def _info(args) -> None:
    from .meta.provenance import summary

    print(summary(_load_model(args.model), args.model))


COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "embed": _embed,
    "predict": _predict,
    "info": _info,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``skmeta``; returns the exit status."""
    from ._cli_data import DataError

    args = _parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo_command

        return run_demo_command(args)
    try:
        COMMANDS[args.command](args)
    except (DataError, FileNotFoundError) as exc:
        print(f"skmeta {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # a parameter the estimators refuse
        print(f"skmeta {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"skmeta {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
