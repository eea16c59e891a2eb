"""CPU cost of one meta-training iteration per Conv4 downsampling, width
and input size (issue 15).

Prices the seventeenth and nineteenth tries at the Lake target
(``lake_augment.py``): Conv4s that max-pool in some blocks and stride in
the others, or narrower strided ones, meta-trained for the same CPU time as
the strided Conv4's select model, or strided Conv4s on larger images
(the twentieth try). Each candidate fits the
40-way 2-query, rot90 recipe for 100 and 500 iterations on one thread (the
difference over 400 is the cost of an iteration, free of the fixed cost of
a fit), the candidates alternated over ``--rounds`` rounds in one process,
so that the machine's load falls on all of them alike.

    python benchmarks/conv4_cost.py
    python benchmarks/conv4_cost.py --candidates strided-48 --out conv4_cost_width
    python benchmarks/conv4_cost.py --candidates strided-32px,strided-40px \\
        --out conv4_cost_size
    python benchmarks/conv4_cost.py --candidates final-4x4,final-7x7,third-kept \\
        --out conv4_cost_maps
    python benchmarks/conv4_cost.py --candidates final-4x4,deep-4x4 \\
        --out conv4_cost_depth

Writes ``results/<out>.{json,md}`` (``conv4_cost`` by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import lake_augment
import lake_runs
import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
# name: (downsampling per block, channels of every conv layer, input side)
CANDIDATES = {
    "strided": (("strided",) * 4, 64, 28),
    "maxpool-first": (("maxpool", "strided", "strided", "strided"), 64, 28),
    "maxpool": (("maxpool",) * 4, 64, 28),
    "strided-48": (("strided",) * 4, 48, 28),  # the nineteenth try
    "strided-32px": (("strided",) * 4, 64, 32),  # the twentieth try
    "strided-40px": (("strided",) * 4, 64, 40),
    # the thirty-seventh try's 4x4 map, and larger final maps
    "final-4x4": (("strided", "strided", "strided", "none"), 64, 28),
    "final-7x7": (("strided", "strided", "none", "none"), 64, 28),
    "third-kept": (("strided", "strided", "none", "strided"), 64, 28),
    # the forty-third try: two more blocks on the 4x4 map
    "deep-4x4": (("strided", "strided", "strided", "none", "none", "none"), 64, 28),
}


def fit_seconds(X, y, candidate, max_iter: int) -> float:
    """CPU seconds of one fit of the trained recipe (``lake_runs.extractor``,
    as ``lake_augment.py select`` builds it) with `candidate`'s Conv4 on
    `X`, rows of `candidate`'s input side."""
    downsample, width, size = candidate
    recipe = argparse.Namespace(
        image_size=size,
        width=width,
        downsample=downsample,
        n_way=40,
        n_query=2,
        class_augmentation="rot90",
        within=0.0,
        lr=4e-3,
        seed=0,
    )
    model = lake_runs.extractor(recipe, max_iter)
    tic = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the short fits' ConvergenceWarning
        model.fit(X, y)
    return time.process_time() - tic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--candidates",
        default="strided,maxpool-first,maxpool",
        help=f"comma-separated, of {', '.join(CANDIDATES)}; strided is always in",
    )
    ap.add_argument("--out", default="conv4_cost", help="results/<out>.{json,md}")
    args = ap.parse_args()
    names = ["strided"] + [n for n in args.candidates.split(",") if n != "strided"]
    torch.set_num_threads(1)
    rows = {}  # meta-training rows by input side
    for size in {CANDIDATES[name][2] for name in names}:
        (X, y, _), _ = lake_augment.data("select", str(lake_runs.DATA), 0, size)
        rows[size] = X, y
    ms = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            X, y = rows[CANDIDATES[name][2]]
            short = fit_seconds(X, y, CANDIDATES[name], 100)
            long = fit_seconds(X, y, CANDIDATES[name], 500)
            ms[name].append(1000 * (long - short) / 400)
            print(f"{name}: {ms[name][-1]:.1f} ms per iteration", flush=True)
    base = np.mean(ms["strided"])
    report = {
        name: {
            "downsample": list(CANDIDATES[name][0]),
            "hidden_channels": CANDIDATES[name][1],
            "image_size": CANDIDATES[name][2],
            "ms_per_iteration": values,
            "mean_ms": float(np.mean(values)),
            "iterations_for_20000_strided": round(20000 * base / np.mean(values)),
            "iterations_for_78369_strided": round(78369 * base / np.mean(values)),
        }
        for name, values in ms.items()
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=1))
    lines = [
        "# Conv4 downsampling and width: CPU cost of one 40-way 2-query iteration",
        "",
        f"`python benchmarks/conv4_cost.py {' '.join(sys.argv[1:])}`".replace(" `", "`")
        + " (one thread; fits of 100 and 500 iterations, candidates alternated).",
        "",
        "| downsampling per block | channels | input px | ms per iteration (rounds) "
        "| mean | iterations for 20,000 strided | for 78,369 strided |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.values():
        lines.append(
            f"| {', '.join(r['downsample'])} | {r['hidden_channels']} | "
            f"{r.get('image_size', 28)} | "
            f"{', '.join(f'{v:.1f}' for v in r['ms_per_iteration'])} | "
            f"{r['mean_ms']:.1f} | {r['iterations_for_20000_strided']:,} | "
            f"{r['iterations_for_78369_strided']:,} |"
        )
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
