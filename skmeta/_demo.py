"""The ``skmeta demo``: meta-learning on classes never seen in training.

Meta-trains on most classes of a data set, then evaluates few-shot episodes on
the other classes, next to the same episodes solved on raw pixels. On Omniglot
it adds Lake et al.'s (2015) one-shot runs: 20 characters of one alphabet, the
support drawn by one person and the queries by another.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier

from ._classifier import FewShotClassifier
from ._extractor import MetaFeatureExtractor
from .model_selection import EpisodicSplit, episodic_score

TASKS = ((5, 1), (5, 5), (20, 1))
LAKE_RUNS = "Lake's runs"  # 20-way 1-shot within an alphabet, 2 drawers


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo run (the defaults take about a minute per method)."""

    n_classes: int = 1000
    test_fraction: float = 0.2
    methods: tuple[str, ...] = ("protonet", "pretrain")
    backbone: str = "conv4_strided"
    max_iter: int = 2000
    n_episodes: int = 300
    random_state: int = 0
    data_home: str | None = None
    download: bool = False
    verbose: int = 1


def _load(config: DemoConfig):
    if config.data_home is None:
        from .datasets import make_glyphs

        X, y = make_glyphs(config.n_classes, 20, 28, random_state=config.random_state)
        name = f"glyphs (make_glyphs: {config.n_classes} characters x 20 drawings)"
        rng = np.random.default_rng(config.random_state)
        classes = rng.permutation(np.unique(y))
        n_test = int(round(config.test_fraction * classes.size))
        test = np.isin(y, classes[:n_test])
        return name, (X[~test], y[~test]), (X[test], y[test]), None
    from .datasets import load_omniglot

    fetch = {"data_home": config.data_home, "download": config.download}
    background = load_omniglot("background", **fetch)
    evaluation = load_omniglot("evaluation", **fetch)
    name = "Omniglot (background alphabets -> evaluation alphabets)"
    groups = None  # Lake's runs need who drew each image (the official names)
    if "drawer" in evaluation:
        groups = np.c_[evaluation.groups, evaluation.drawer]
    return (
        name,
        (background.data, background.target),
        (evaluation.data, evaluation.target),
        groups,
    )


def run_demo(config: DemoConfig = DemoConfig()) -> dict:
    """Run the demo and print a results table.

    Returns
    -------
    dict
        ``{"data": name, "rows": [row, ...]}``, each row with ``method``,
        ``train_seconds`` and ``"<N>w<K>s": (mean, ci95)`` per task, and
        ``"lake"`` (Lake et al.'s runs) on Omniglot with its drawers.
    """
    start = time.perf_counter()
    name, (X_base, y_base), (X_novel, y_novel), groups = _load(config)
    print(f"Data: {name}")
    print(
        f"Meta-training on {np.unique(y_base).size} classes; testing on "
        f"{np.unique(y_novel).size} classes never seen in training "
        f"({config.n_episodes} episodes per task).\n"
    )
    seed, n_episodes = config.random_state, config.n_episodes
    tasks = {  # key: (column header, splitter, groups)
        f"{n}w{k}s": (
            f"{n}-way {k}-shot",
            EpisodicSplit(n, k, 15, n_episodes, seed),
            None,
        )
        for n, k in TASKS
    }
    if groups is not None:
        tasks["lake"] = (LAKE_RUNS, EpisodicSplit(20, 1, 1, n_episodes, seed), groups)

    def score(estimator) -> dict:
        scores = {}
        for key, (_, cv, task_groups) in tasks.items():
            result = episodic_score(
                estimator, X_novel, y_novel, cv=cv, groups=task_groups
            )
            scores[key] = (result.mean, result.ci95)
        return scores

    rows = []
    for method in config.methods:
        extractor = MetaFeatureExtractor(
            method=method,
            backbone=config.backbone,
            input_shape=(1, 28, 28),
            n_way=20,
            k_shot=1,
            n_query=5,
            max_iter=config.max_iter,
            random_state=config.random_state,
            verbose=config.verbose,
        )
        tic = time.perf_counter()
        with warnings.catch_warnings():
            # The demo's budget is fixed on purpose; its models are still
            # improving when it ends, and the table says how well they do.
            warnings.simplefilter("ignore", ConvergenceWarning)
            extractor.fit(X_base, y_base)
        row = {"method": method, "train_seconds": time.perf_counter() - tic}
        row.update(score(FewShotClassifier(pretrained=extractor.meta_model_)))
        rows.append(row)
    # 1-nearest neighbour on the pixels, same episodes
    rows.append(
        {
            "method": "raw pixels",
            "train_seconds": None,
            **score(KNeighborsClassifier(1)),
        }
    )
    print(format_table(rows, [header for header, _, _ in tasks.values()]))
    print(
        f"\nTotal time: {time.perf_counter() - start:.0f} s. Accuracy is the mean "
        "over episodes ± 95% confidence interval; 'raw pixels' is the "
        "nearest neighbour on the pixels, same episodes."
    )
    if groups is not None:
        print(
            f"{LAKE_RUNS}: 20 characters of one alphabet, one image each drawn by one "
            "person as the support, one query each drawn by another (Lake et al. "
            "2015; people score 95.5%)."
        )
    return {"data": name, "rows": rows}


def format_table(rows: list[dict], headers: list[str]) -> str:
    """Plain-text table: method, training time, then one column per task."""
    tasks = [key for key in rows[0] if key not in ("method", "train_seconds")]
    lines = [
        f"{'method':<12}{'meta-training':>14}" + "".join(f"{h:>18}" for h in headers)
    ]
    for row in rows:
        seconds = row["train_seconds"]
        cells = "".join(
            f"{f'{100 * row[t][0]:.1f} ± {100 * row[t][1]:.1f}%':>18}" for t in tasks
        )
        timing = "-" if seconds is None else f"{seconds:.0f} s"
        lines.append(f"{row['method']:<12}{timing:>14}{cells}")
    return "\n".join(lines)


# --quick's values for the flags the user did not give (given flags win).
QUICK = {"n_classes": 120, "max_iter": 20, "n_episodes": 20}
DEFAULTS = {"n_classes": 1000, "max_iter": 2000, "n_episodes": 300}


def add_demo_parser(commands) -> None:
    """The ``skmeta demo`` sub-command's flags."""
    demo = commands.add_parser(
        "demo",
        help="meta-train on some classes, classify never-seen ones from 1-5 examples",
        description="Meta-train ProtoNet and the supervised-pretraining baseline on "
        "most classes of a data set (by default glyphs rendered from matplotlib's "
        "fonts, no download), then report N-way K-shot accuracy on the other "
        "classes next to raw pixels.",
    )
    demo.add_argument(
        "--data-home",
        default=None,
        help="folder with Omniglot (see skmeta.datasets.load_omniglot); "
        "default: the embedded glyph data",
    )
    demo.add_argument(
        "--download",
        action="store_true",
        help="with --data-home: download Omniglot's official zips into it if "
        "they are not there",
    )
    for flag, what in (
        ("--max-iter", "meta-training iterations per method"),
        ("--n-episodes", "test episodes per task"),
        ("--n-classes", "glyph classes to generate"),
    ):
        name = flag[2:].replace("-", "_")
        demo.add_argument(
            flag,
            type=int,
            default=None,
            help=f"{what} (default: {DEFAULTS[name]}; --quick: {QUICK[name]})",
        )
    demo.add_argument(
        "--methods",
        default="protonet,pretrain",
        help="comma-separated methods (default: protonet,pretrain)",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run: tiny data, 20 iterations, no progress "
        "bars (flags given explicitly still win)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")


def demo_config(args) -> DemoConfig:
    """The run the flags ask for: explicit flags, else --quick's, else defaults."""
    preset = QUICK if args.quick else DEFAULTS
    sizes = {
        name: preset[name] if getattr(args, name) is None else getattr(args, name)
        for name in DEFAULTS
    }
    return DemoConfig(
        **sizes,
        random_state=args.seed,
        data_home=args.data_home,
        download=args.download,
        methods=tuple(args.methods.split(",")),
        verbose=0 if args.quick or args.quiet else 1,
    )


def run_demo_command(args) -> int:
    """``skmeta demo``; returns the exit status."""

    def flags(exc: BaseException) -> str:  # the loader's parameters as flags
        message = str(exc).replace("download=True", "--download")
        return message.replace("point data_home", "point --data-home")

    if args.download and args.data_home is None:
        print(
            "skmeta demo: error: --download fetches Omniglot into --data-home; "
            "give --data-home DIR (without it the demo uses the glyphs, which "
            "need no download).",
            file=sys.stderr,
        )
        return 2
    if args.n_classes is not None and args.data_home is not None:
        print(  # it was ignored: Omniglot's classes are its own
            f"skmeta demo: error: --n-classes {args.n_classes}: sets how many "
            "glyph classes to generate; with --data-home the demo reads "
            "Omniglot, all its classes. Leave one of them out.",
            file=sys.stderr,
        )
        return 2
    try:
        run_demo(demo_config(args))
    except (ValueError, FileNotFoundError) as exc:
        print(f"skmeta demo: error: {flags(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the download failed (ConnectionError among them)
        print(f"skmeta demo: error: {flags(exc)}", file=sys.stderr)
        return 1
    return 0
