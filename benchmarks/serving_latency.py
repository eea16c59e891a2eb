"""Per-call latency of a few-shot web service: what skmeta adds to the forward
pass on small calls.

Two models are meta-trained for 20 iterations (the weights do not change what
a call costs): ProtoNet on Conv4 over 28x28 glyphs (``make_glyphs``), and
ProtoNet on the default MLP over a 32-column synthetic table. On novel
classes, per model:

- ``FewShotClassifier(pretrained=model).fit`` on a 5-way 1-shot and a 5-way
  5-shot support set;
- ``predict_proba``, ``predict`` and ``MetaFeatureExtractor.transform`` on 1,
  10 and 100 query rows;
- the lower bound: the same network (``model.inference_network()``) run bare
  under ``torch.inference_mode`` on the same rows (for ``fit``, on the
  support rows).

Each case is timed ``--reps`` times per round, rounds alternate over the
cases, and the median of the round medians is reported with its ratio to
the bare forward. One torch thread (``OMP_NUM_THREADS=1``): a service's
worker. ``--label`` names the code measured, so that the script can time an
older checkout (``PYTHONPATH=<checkout> python benchmarks/serving_latency.py
--label before --out /tmp/...``).

    OMP_NUM_THREADS=1 python benchmarks/serving_latency.py   # ~1-2 minutes

Results: ``benchmarks/results/serving_latency.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = (1, 10, 100)
SHOTS = (1, 5)


def rows_word(n: int) -> str:
    return "row" if n == 1 else "rows"


def make_models():
    """(name, model, novel X, novel y) for the Conv4 and the MLP model."""
    from sklearn.exceptions import ConvergenceWarning

    from skmeta import MetaFeatureExtractor
    from skmeta.datasets import make_glyphs

    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = make_glyphs(n_classes=60, n_samples_per_class=10, random_state=0)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((60, 32))
    y_table = np.repeat(np.arange(60), 10)
    X_table = centres[y_table] + 0.5 * rng.standard_normal((600, 32))
    X_table = X_table.astype(np.float32)
    models = []
    for name, (rows, labels), params in (
        ("conv4", (X, y), {"backbone": "conv4", "input_shape": (1, 28, 28)}),
        ("mlp", (X_table, y_table), {}),
    ):
        base = labels < 40
        model = (
            MetaFeatureExtractor(max_iter=20, random_state=0, **params)
            .fit(rows[base], labels[base])
            .meta_model_
        )
        models.append((name, model, rows[~base], labels[~base]))
    return models


def make_cases(name, model, X, y):
    """{case: callable} for one model: the estimators' calls and the bare
    forward passes they are compared with."""
    from skmeta import FewShotClassifier, MetaFeatureExtractor

    net = model.inference_network("cpu")

    def bare(rows):
        tensor = torch.from_numpy(rows)

        def forward():
            with torch.inference_mode():
                return net(tensor)

        return forward

    cases = {}
    for shot in SHOTS:
        support = np.concatenate(
            [np.flatnonzero(y == c)[:shot] for c in np.unique(y)[:5]]
        )
        X_s, y_s = X[support], y[support]
        clf = FewShotClassifier(pretrained=model)
        cases[f"{name} fit 5-way {shot}-shot"] = lambda c=clf, a=X_s, b=y_s: c.fit(a, b)
        cases[f"{name} bare forward {len(support)} rows"] = bare(X_s)
    clf.fit(X_s, y_s)  # the 5-shot classifier serves the queries
    extractor = MetaFeatureExtractor(pretrained=model).fit(X_s)
    for n in ROWS:
        Q = np.ascontiguousarray(X[-n:])
        rows = f"{n} {rows_word(n)}"
        cases[f"{name} predict_proba {rows}"] = lambda q=Q: clf.predict_proba(q)
        cases[f"{name} predict {rows}"] = lambda q=Q: clf.predict(q)
        cases[f"{name} transform {rows}"] = lambda q=Q: extractor.transform(q)
        cases[f"{name} bare forward {rows}"] = bare(Q)
    return cases


def bound_of(case: str) -> str | None:
    """The bare-forward case a call is compared with."""
    name, rest = case.split(" ", 1)
    if rest.startswith("bare"):
        return None
    if rest.startswith("fit"):
        shot = int(rest.split()[-1].split("-")[0])
        return f"{name} bare forward {5 * shot} rows"
    n = int(rest.split()[-2])
    return f"{name} bare forward {n} {rows_word(n)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=40, help="timed calls per round")
    ap.add_argument("--label", default="current", help="the code measured")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    cases = {}
    for name, model, X, y in make_models():
        cases.update(make_cases(name, model, X, y))
    rounds = {case: [] for case in cases}
    for _ in range(args.rounds):
        for case, call in cases.items():
            call()  # warm
            times = []
            for _ in range(args.reps):
                tic = time.perf_counter()
                call()
                times.append(time.perf_counter() - tic)
            rounds[case].append(statistics.median(times) * 1e6)
    rows = []
    for case, medians in rounds.items():
        bound = bound_of(case)
        us = statistics.median(medians)
        bare = None if bound is None else statistics.median(rounds[bound])
        rows.append(
            {
                "case": case,
                "median_us": round(us, 1),
                "round_medians_us": [round(m, 1) for m in medians],
                "bare_us": None if bare is None else round(bare, 1),
                "ratio_to_bare": None if bare is None else round(us / bare, 2),
            }
        )
    result = {
        "label": args.label,
        "rounds": args.rounds,
        "reps": args.reps,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Serving latency ({args.label})",
        "",
        f"Median of {args.rounds} round medians of {args.reps} calls, "
        f"{torch.get_num_threads()} torch thread(s); bare: the same network "
        "under `torch.inference_mode` on the same rows.",
        "",
        "| call | us | bare forward us | ratio |",
        "|---|---|---|---|",
    ]
    for row in rows:
        if row["bare_us"] is not None:
            lines.append(
                f"| {row['case']} | {row['median_us']:,.0f} | "
                f"{row['bare_us']:,.0f} | {row['ratio_to_bare']:.2f} |"
            )
    (out / "serving_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
