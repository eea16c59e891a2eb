"""Targets in other units, with and without ``normalize_y`` (sine waves).

The sine-wave benchmark (``sinusoid.py``: Meta-SGD, MAML's network and
settings, 5 shots) meta-trained on its targets as given, on the targets
shifted by 300 (temperatures in kelvins) and on the targets times 100 (prices
in cents), each with ``normalize_y=False`` and ``True``. Every model adapts to
1,000 new waves from 5 points given in the same units as its meta-training
targets; its predictions are converted back to the waves' units and scored
against the true wave on 100 evenly spaced points, so all rows are comparable.
Test-time ``inner_steps`` are chosen on 200 validation waves, as
``sinusoid.py`` does.

    python benchmarks/target_scaling.py --threads 1

Results: ``benchmarks/results/target_scaling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sinusoid import evaluate  # the sine-wave benchmark's, with the units

from skmeta import FewShotRegressor
from skmeta.datasets import make_sinusoid_tasks

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = [  # (shift, scale) of the targets
    (0.0, 1.0),
    (300.0, 1.0),
    (0.0, 100.0),
]


def run(args, shift, scale, normalize_y):
    X, y, groups = make_sinusoid_tasks(
        args.train_tasks, args.k_shot + 10, random_state=args.seed
    )
    reg = FewShotRegressor(
        method="metasgd",
        k_shot=args.k_shot,
        n_query=10,
        meta_batch_size=25,
        max_iter=args.max_iter,
        learning_rate=1e-3,
        inner_lr=0.01,
        inner_steps=1,
        backbone_params={"hidden_sizes": (40, 40), "out_features": 40},
        normalize_y=normalize_y,
        random_state=args.seed,
    )
    tic = time.perf_counter()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        reg.fit(X, scale * y + shift, groups=groups)
    seconds = time.perf_counter() - tic
    model = reg.meta_model_
    val = {}
    for steps in (1, 2, 5, 10):
        errors = evaluate(model, args.k_shot, 200, args.seed + 1, steps, shift, scale)
        val[steps] = float(errors.mean())
    chosen = min(val, key=lambda s: val[s] if np.isfinite(val[s]) else np.inf)
    errors = evaluate(
        model, args.k_shot, args.n_test, args.seed + 2, chosen, shift, scale
    )
    finite = errors[np.isfinite(errors)]
    result = {
        "shift": shift,
        "scale": scale,
        "normalize_y": normalize_y,
        "mse": float(errors.mean()),
        "ci95": float(1.96 * finite.std(ddof=1) / np.sqrt(len(finite)))
        if finite.size > 1
        else float("nan"),
        "diverged_waves": int((~np.isfinite(errors)).sum()),
        "test_inner_steps": chosen,
        "validation_mse_by_test_steps": val,
        "train_seconds": seconds,
        "fit_warnings": sorted({str(w.message)[:80] for w in said}),
        "max_iter": args.max_iter,
        "k_shot": args.k_shot,
        "n_test_tasks": args.n_test,
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(result), flush=True)
    return result


def write(results):
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "target_scaling.json").write_text(json.dumps(results, indent=1))
    lines = [
        "| targets | normalize_y | MSE ± 95% CI (waves' units) | diverged waves "
        "| test steps | meta-training |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        targets = "y" if r["scale"] == 1 else f"{r['scale']:g} y"
        targets += f" + {r['shift']:g}" if r["shift"] else ""
        lines.append(
            f"| {targets} | {r['normalize_y']} | {r['mse']:.3f} ± {r['ci95']:.3f} "
            f"| {r['diverged_waves']} | {r['test_inner_steps']} | "
            f"{r['max_iter']} iterations, {r['train_seconds'] / 60:.1f} min |"
        )
    (RESULTS / "target_scaling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k-shot", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=4500)
    parser.add_argument("--train-tasks", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    write(
        [
            run(args, shift, scale, normalize_y)
            for shift, scale in VARIANTS
            for normalize_y in (False, True)
        ]
    )


if __name__ == "__main__":
    main()
