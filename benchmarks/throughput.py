"""Inference throughput and adaptation latency (issue 2's measurements).

- ``transform`` of a fitted MetaFeatureExtractor, in rows/s, next to the best bare
  ``torch.inference_mode`` forward pass of the same backbone on the same rows
  (one call, or chunks of 25..500 rows: the best of them), measured in the same
  run, rounds alternating, medians reported.
- ``FewShotClassifier(pretrained=...).fit`` + ``predict`` latency for a 5-way
  5-shot task with 15 queries per class.

    python benchmarks/throughput.py            # writes results/throughput.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.datasets import make_glyphs
from skmeta.meta.backbones import build_backbone

RESULTS = Path(__file__).parent / "results"
CHUNKS = (None, 25, 50, 100, 200, 500)


def bare_forward(backbone: torch.nn.Module, x: torch.Tensor, chunk: int | None):
    with torch.inference_mode():
        if chunk is None:
            return backbone(x)
        return torch.cat([backbone(part) for part in x.split(chunk)])


def median_rate(fn, n_rows: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return n_rows / float(np.median(times))


def measure_backbone(name, X_train, y_train, X_test, input_shape, rounds, repeats):
    extractor = MetaFeatureExtractor(
        backbone=name,
        input_shape=input_shape,
        n_way=5,
        k_shot=1,
        n_query=2,
        max_iter=20,
        random_state=0,
    ).fit(X_train, y_train)
    model = extractor.meta_model_
    # The same backbone, bare: same weights, no skmeta code around it.
    bare = build_backbone(name, input_shape, None)
    bare.load_state_dict(
        {
            k[len("backbone.") :]: v
            for k, v in model.state.items()
            if k.startswith("backbone.")
        }
    )
    bare.eval()
    x = torch.from_numpy(X_test).view(len(X_test), *input_shape)
    cases = {"transform": lambda: extractor.transform(X_test)}
    for chunk in CHUNKS:
        cases[f"bare chunk={chunk or 'all'}"] = lambda chunk=chunk: bare_forward(
            bare, x, chunk
        )
    rates: dict[str, list[float]] = {case: [] for case in cases}
    for _ in range(2):  # warm-up
        for fn in cases.values():
            fn()
    for round_ in range(rounds):
        order = list(cases) if round_ % 2 == 0 else list(cases)[::-1]
        for case in order:
            rates[case].append(median_rate(cases[case], len(X_test), repeats))
    medians = {case: float(np.median(r)) for case, r in rates.items()}
    best_bare = max((c for c in medians if c.startswith("bare")), key=medians.get)
    return model, {
        "backbone": name,
        "rows": len(X_test),
        "rows_per_s": medians,
        "best_bare": best_bare,
        "transform_over_best_bare": medians["transform"] / medians[best_bare],
    }


def measure_adaptation(model, X, y, repeats):
    rng = np.random.default_rng(0)
    classes = rng.choice(np.unique(y), 5, replace=False)
    support = np.concatenate([np.flatnonzero(y == c)[:5] for c in classes])
    query = np.concatenate([np.flatnonzero(y == c)[5:20] for c in classes])
    clf = FewShotClassifier(pretrained=model)
    fit_ms, total_ms = [], []
    for _ in range(repeats):
        tic = time.perf_counter()
        clf.fit(X[support], y[support])
        mid = time.perf_counter()
        clf.predict(X[query])
        end = time.perf_counter()
        fit_ms.append(1e3 * (mid - tic))
        total_ms.append(1e3 * (end - tic))
    return {
        "task": "5-way 5-shot, 75 queries",
        "fit_ms_median": float(np.median(fit_ms[5:])),
        "fit_predict_ms_median": float(np.median(total_ms[5:])),
        "accuracy": float(clf.score(X[query], y[query])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backbones", default="conv4,conv4_strided,mlp")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--out",
        default=str(RESULTS),
        help="folder for throughput.{json,md} (default: results/, the current "
        "result; give another folder for trial runs)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    X, y = make_glyphs(200, 20, 28, random_state=0)
    X_test = make_glyphs(100, 20, 28, random_state=1)[0][: args.rows]
    results = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "backbones": [],
        "adaptation": {},
    }
    shape = (1, 28, 28)
    for name in args.backbones.split(","):
        input_shape = shape if name != "mlp" else (784,)
        model, row = measure_backbone(
            name, X, y, X_test, input_shape, args.rounds, args.repeats
        )
        results["backbones"].append(row)
        print(json.dumps(row, indent=1), flush=True)
        results["adaptation"][name] = measure_adaptation(model, X, y, 105)
        print(json.dumps(results["adaptation"][name]), flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(results, indent=1))
    lines = [
        "| backbone | transform rows/s | best bare forward rows/s (chunk) | "
        "ratio | fit ms (5w5s) | fit + predict ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["backbones"]:
        adapt = results["adaptation"][row["backbone"]]
        best = row["best_bare"]
        lines.append(
            f"| {row['backbone']} | {row['rows_per_s']['transform']:,.0f} | "
            f"{row['rows_per_s'][best]:,.0f} ({best.split('=')[1]}) | "
            f"{row['transform_over_best_bare']:.2f} | {adapt['fit_ms_median']:.1f} | "
            f"{adapt['fit_predict_ms_median']:.1f} |"
        )
    (out / "throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
