"""The ``skmeta`` command line: the estimators on your own files.

Commands: ``demo``, ``train``, ``evaluate``, ``embed``, ``predict``, ``info``.
``DATA`` is a folder with one subfolder of images per class, an ``.npz`` file
(``X``, ``y``) or a ``.csv`` file with a label column. Each flag that sets an
estimator parameter takes its help from that parameter's docstring.

Exit status: 0 on success, 2 for bad arguments or input (a message names the
file or flag), 1 for any other failure, a missing optional dependency among
them (a one-line message says what to install).

The parser is ``_cli_parser.py``, its help ``_cli_help.py``; what the commands
read is ``_cli_data.py`` (tables ``_cli_tables.py``, their cells
``_cli_cells.py``, their columns ``_cli_columns.py``), what they write and the
model files ``_cli_output.py``; the image-only flags ``_cli_image_flags.py``;
``train``'s estimator, its flags checked before DATA is read, ``_cli_train.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import warnings
from collections.abc import Sequence

from ._cli_help import TRAIN_FLAGS, flag_names, parameter_help
from ._cli_output import (
    check_output_path,
    describe_model_file,
    load_model,
    write_predictions,
)
from ._cli_parser import build_parser
from .meta.printable import printable

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_SIGNALLED = 128  # + the signal's number: 143 for SIGTERM, as shells report

__all__ = ["TRAIN_FLAGS", "main", "parameter_help"]

_parser = build_parser  # docs/conf.py prints its help into the user guide


def _image_options(args, model=None) -> dict:
    """How to read DATA (``_cli_image_flags.py``): the image-only flags
    refused for a table, the model's image size and colour."""
    from ._cli_image_flags import image_options

    return image_options(args, model, _shows_progress(args))


def _shows_progress(args) -> bool:
    """Progress bars (decoding images, episodes): on a terminal, or for
    ``train`` unless ``--quiet``, whose bars a batch job's log keeps."""
    if getattr(args, "quiet", None) is not None:
        return not args.quiet
    return sys.stderr.isatty()


def _train(args) -> int | None:
    """Meta-train and write the model; under torchrun, every process trains
    its share and rank 0 writes (docs/user_guide/distributed.rst). A Ctrl-C
    ends meta-training after its current iteration (a second one at once),
    writes the model so far and exits 130, so that a pipeline stops; SIGTERM
    (SIGHUP, SIGUSR1, SIGUSR2) ends it after its current iteration (the
    checkpoint written), writes the model so far and exits 143 (129, 138,
    140: 128 + the signal's number)."""
    from ._cli_columns import check_id_flag, check_ids, warn_id_like, with_columns
    from ._cli_train import estimator_and_data
    from .meta.distributed import is_main_process
    from .meta.model_card import card_path
    from .meta.termination import TerminationGuard

    check_output_path(args.out)  # before the meta-training, not after
    if args.card:
        check_output_path(card_path(args.out), "--card")
    if args.checkpoint:  # an existing file is resumed from, not refused
        check_output_path(os.path.expanduser(args.checkpoint), "--checkpoint")
    # the flags checked before DATA is read (an image folder takes minutes)
    options = _image_options(args)
    check_id_flag(args.id_column, options["label_column"], args.data)
    extractor, data = estimator_and_data(args, options, args.id_column)
    check_ids(data, args.id_column, args.data)  # not a feature, nor recorded
    warn_id_like(data, args.data)
    with TerminationGuard() as sigterm:  # the loop ends at an iteration's end
        extractor.fit(data.X, data.y)
    training = extractor.meta_model_.config["training"]
    if is_main_process():  # a table's column names recorded, as a DataFrame's
        with_columns(extractor.meta_model_, data).save(args.out, card=args.card)
        done = f"{extractor.n_iter_} iterations"
        if training.get("interrupted"):
            done = f"interrupted: the model after {done} of {extractor.max_iter}"
        print(f"wrote {args.out} ({done})")
    if sigterm.requested:  # SIGTERM, or SIGHUP, SIGUSR1, SIGUSR2
        name = signal.Signals(sigterm.signum).name
        print(f"skmeta train: terminated ({name})", file=sys.stderr)
        return EXIT_SIGNALLED + sigterm.signum
    return EXIT_INTERRUPTED if training.get("interrupted") else None


def _evaluate(args) -> None:
    from ._classifier import FewShotClassifier
    from ._cli_columns import check_id_flag, check_ids, match_columns
    from ._cli_data import load_dataset
    from ._cli_pixels import on_model_range
    from ._cli_recorded import resolve_id_column, warn_trained_classes
    from .model_selection import episodic_score

    model = load_model(args.model)
    if args.record:  # the model file is rewritten in its folder
        check_output_path(args.model, "--record: MODEL")
    groups = None if args.groups is None else args.groups.split(",")
    if groups is not None and not 1 <= len(groups) <= 2:
        raise ValueError(f"--groups {args.groups}: give one name, or two.")
    options = _image_options(args, model)
    check_id_flag(args.id_column, options["label_column"], args.data, groups)
    ids = resolve_id_column(model, args.id_column, options["label_column"], groups)
    data = load_dataset(
        args.data,
        **options,
        groups=groups,
        classes=True,
        id_column=ids,
        model_shape=model.input_shape,  # a folder refused for a table model
    )
    check_ids(data, args.id_column, args.data)
    data = match_columns(model, data, args.data)
    data = dataclasses.replace(data, X=on_model_range(model, data.X))
    warn_trained_classes(model, data.y, args.data)
    result = episodic_score(  # transductive: each episode's queries jointly
        FewShotClassifier(pretrained=model, transductive=args.transductive),
        data.X,
        data.y,
        n_way=args.n_way,
        k_shot=args.k_shot,
        n_query=args.n_query,
        n_episodes=args.n_episodes,
        random_state=args.seed,
        verbose=int(_shows_progress(args)),
        groups=data.groups,
    )
    task = f"{args.n_way}-way {args.k_shot}-shot"
    if groups is not None:
        task += f" within {groups[0]}" + (
            f", support and queries by two {groups[1]}s" if len(groups) > 1 else ""
        )
    if args.transductive is not None:
        task += f", transductive {args.transductive}"
    if args.record:
        from .meta.model_card import card_path, evaluation_record

        entry = evaluation_record(
            f"{task}, {args.n_query} queries",
            result.mean,
            result.ci95,
            args.n_episodes,
            {
                "source": str(args.data),
                "n_classes": int(len(set(data.y))),
                "episode_seed": args.seed,  # the same seed, the same episodes
            },
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
    from pathlib import Path

    from ._cli_columns import check_id_flag, check_ids, match_columns
    from ._cli_data import (
        check_features_path,
        load_dataset,
        load_unlabelled,
        save_features,
    )
    from ._cli_pixels import by_blocks, on_model_range
    from ._cli_recorded import resolve_id_column
    from ._extractor import MetaFeatureExtractor

    check_output_path(args.out)
    check_features_path(args.out, args.id_column)  # suffix, pyarrow, names
    model = load_model(args.model)
    options = _image_options(args, model)  # --image-size, --color: the model's
    check_id_flag(args.id_column, options["label_column"], args.data)
    ids = resolve_id_column(model, args.id_column, options["label_column"])
    folder = Path(args.data)
    if folder.is_dir() and not any(entry.is_dir() for entry in folder.iterdir()):
        data = load_unlabelled(  # images, no classes
            folder, model.input_shape, on_error=options["on_error"]
        )
    else:  # a table's labels if it has them, unless --label-column is given
        labelled = None if args.label_column is None else True
        data = load_dataset(
            args.data,
            **options,
            labelled=labelled,
            id_column=ids,
            model_shape=model.input_shape,
        )
    check_ids(data, args.id_column, args.data)
    data = match_columns(model, data, args.data)
    extractor = MetaFeatureExtractor(pretrained=model)
    extractor.fit(on_model_range(model, data.X[:1]))
    features = by_blocks(extractor.transform, model, data.X)
    # the columns of set_output(transform="pandas"): metafeatureextractor0, ...
    save_features(args.out, features, data, extractor.get_feature_names_out())
    print(f"wrote {args.out} ({len(data.X)} rows of {model.embedding_dim} features)")


def _predict(args) -> None:
    from pathlib import Path

    from ._classifier import FewShotClassifier
    from ._cli_columns import check_id_flag, check_ids, label_column, match_columns
    from ._cli_data import DataError, load_dataset, load_unlabelled
    from ._cli_image_flags import folder_options
    from ._cli_pixels import by_blocks, on_model_range
    from ._cli_recorded import resolve_id_column

    model = load_model(args.model)
    shape = model.input_shape
    options = {  # flags refused where they do nothing: on tables, on folders
        "label_column": label_column(args.label_column, args.support, args.query),
        **folder_options(args, args.support, args.query),
        "verbose": _shows_progress(args),
    }
    if len(shape) == 3:
        options.update(image_size=shape[1:], color="grey" if shape[0] == 1 else "rgb")
    elif Path(args.support).is_dir():
        raise DataError(
            f"--support {args.support}: the model takes rows of shape {shape}, "
            "not images; give its support set as an .npz or .csv file."
        )
    check_id_flag(args.id_column, options["label_column"], args.query)
    # the flag, or train's; a support set's id column is no feature either
    ids = resolve_id_column(model, args.id_column, options["label_column"])
    support = load_dataset(args.support, **options, id_column=ids)
    support = match_columns(model, support, args.support)
    query = load_unlabelled(
        args.query, shape, options["label_column"], options["on_error"], ids
    )
    check_ids(query, args.id_column, args.query)
    query = match_columns(model, query, args.query)
    classifier = FewShotClassifier(
        pretrained=model,
        unknown_label=args.unknown_label,
        rejection_rate=args.rejection_rate,
        transductive=args.transductive,
    )
    if args.transductive is None:
        classifier.fit(on_model_range(model, support.X), support.y)
        labels = by_blocks(classifier.predict, model, query.X)
        confidence = list(by_blocks(classifier.predict_proba, model, query.X).max(1))
        if args.unknown_label is not None:  # no class's probability: left empty
            confidence = [
                None if label == args.unknown_label else p
                for label, p in zip(labels, confidence, strict=True)
            ]
    else:  # the query images are the unlabelled rows of the fit
        from scipy.special import softmax

        from ._transductive_episodes import fit_with_queries

        fit_with_queries(
            classifier,
            on_model_range(model, support.X),
            support.y,
            on_model_range(model, query.X),
        )
        labels = classifier.transduction_[len(support.X) :]
        scores = classifier.adapted_["unlabelled_scores"].numpy()
        confidence = softmax(scores, axis=1).max(1)  # the labels' probabilities
    write_predictions(query.names, labels, confidence, name=query.id_column)


def _info(args) -> None:
    from ._show_versions import environment

    print(environment() if args.model is None else describe_model_file(args.model))


COMMANDS = {
    "train": _train,
    "evaluate": _evaluate,
    "embed": _embed,
    "predict": _predict,
    "info": _info,
}


@contextlib.contextmanager
def _warnings_as_flags(command: str):
    """Print the library's warnings as ``skmeta CMD: warning: ...`` lines
    that name flags, not parameters (``train``'s flags: ``demo``, which has
    few, keeps the parameters' names)."""

    shown = set()  # each once: a warning of every episode printed 1,200 lines

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message) if command == "demo" else flag_names(str(message))
        text = printable(text)  # a file's names, escaped
        if text not in shown:
            shown.add(text)
            print(f"skmeta {command}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def console() -> int:
    """The ``skmeta`` console script and ``python -m skmeta``: :func:`main`,
    with the library's warnings printed as one line that names flags."""
    return main(console=True)


def main(argv: Sequence[str] | None = None, *, console: bool = False) -> int:
    """Entry point of ``skmeta``; returns the exit status. `console`: print
    warnings as the command's own lines (else Python shows them, as to any
    caller of the library)."""
    args = _parser().parse_args(argv)
    for name in ("data", "model", "out", "support", "query"):  # a quoted ~
        if isinstance(getattr(args, name, None), str):
            setattr(args, name, os.path.expanduser(getattr(args, name)))
    if args.command == "demo":
        from ._demo import run_demo_command

        flags = _warnings_as_flags("demo") if console else contextlib.nullcontext()
        with flags:  # its warnings as the other commands' lines
            return run_demo_command(args)

    def fail(exc: BaseException, status: int) -> int:
        message = flag_names(str(exc))  # parameters named as their flags
        message = printable(message)  # a file's names, escaped
        print(f"skmeta {args.command}: error: {message}", file=sys.stderr)
        return status

    try:
        with warnings.catch_warnings():
            # the commands match a table's columns by name (_cli_columns)
            warnings.filterwarnings("ignore", "X does not have valid feature names")
            flags = _warnings_as_flags(args.command) if console else None
            with flags or contextlib.nullcontext():
                status = COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as exc:  # bad input or parameters
        return fail(exc, EXIT_USAGE)
    except ImportError as exc:  # an optional dependency missing or broken
        return fail(exc, EXIT_FAILURE)
    except BrokenPipeError:  # the output piped into a command that stopped
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as exc:  # e.g. a full disk
        return fail(exc, EXIT_FAILURE)
    except KeyboardInterrupt:
        print(f"skmeta {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if status is None else status


if __name__ == "__main__":
    sys.exit(main())
