"""The ``skmeta`` command line."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skmeta", description="Meta-learning as scikit-learn estimators."
    )
    commands = parser.add_subparsers(dest="command", required=True)
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
        "--max-iter",
        type=int,
        default=2000,
        help="meta-training iterations per method (default: 2000)",
    )
    demo.add_argument(
        "--n-episodes",
        type=int,
        default=300,
        help="test episodes per task (default: 300)",
    )
    demo.add_argument(
        "--n-classes",
        type=int,
        default=1000,
        help="glyph classes to generate (default: 1000)",
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
        help="a few seconds' smoke run: tiny data, 20 iterations",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``skmeta``; returns the exit status."""
    args = _parser().parse_args(argv)
    from ._demo import DemoConfig, run_demo

    if args.quick:
        config = DemoConfig(
            n_classes=120,
            max_iter=20,
            n_episodes=20,
            random_state=args.seed,
            data_home=args.data_home,
            methods=tuple(args.methods.split(",")),
            verbose=0,
        )
    else:
        config = DemoConfig(
            n_classes=args.n_classes,
            max_iter=args.max_iter,
            n_episodes=args.n_episodes,
            random_state=args.seed,
            data_home=args.data_home,
            methods=tuple(args.methods.split(",")),
            verbose=0 if args.quiet else 1,
        )
    try:
        run_demo(config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"skmeta demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
