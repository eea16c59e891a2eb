"""Every method in one table, at the same CPU budget (issue 15, part 8).

Each classification method of the registry (``skmeta.meta.algorithms``) is
meta-trained on Omniglot ``background`` at the estimators' defaults for it
(several of them chosen by ``defaults_select.py``), with the strided Conv4, 28 px images
and rot90 classes common to every Omniglot benchmark here, for the same CPU
budget (``--cpu-seconds``, one thread, priced by two probe fits as
``lake_runs.probe_budget`` does), then scored on ``evaluation``: 300 random
episodes of 5-way 1-shot, 5-way 5-shot and 20-way 1-shot, 15 queries a class,
seed 0, the same episodes for every row (``episodic_score``). Inductive rows
for every method; transductive rows (the queries labelled together,
``transductive="bdcspn"`` and ``"ptmap"`` at their defaults) for the methods
that deploy as nearest prototype, the ones the transductive methods serve.

MANN keeps the episodes of ``mann.py`` (5-way 5-shot, 4 a meta-batch, Adam
3e-3): it classifies up to the ways it meta-trained on, so its 20-way cell
says so instead of a number.

The longer runs of the other scripts (``omniglot.py``, ``omniglot_gradient.py``,
``lake_augment.py``) are each method's best figures; this table is the
same-budget comparison a user choosing a method needs.

    python benchmarks/all_methods.py run --methods protonet,maml,...
    python benchmarks/all_methods.py table

Two processes may run at once (one core each) with disjoint ``--methods``;
each method's record is merged into ``results/all_methods.json`` under a
file lock when it is done.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import tempfile
import time
import warnings
from pathlib import Path

import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor, episodic_score
from skmeta.datasets import load_omniglot
from skmeta.meta.algorithms import ALGORITHMS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
COMMON = dict(
    backbone="conv4_strided", input_shape=(1, 28, 28), class_augmentation="rot90"
)
SPECIAL = {
    "mann": dict(n_way=5, k_shot=5, n_query=5, meta_batch_size=4, learning_rate=3e-3)
}
TASKS = ((5, 1), (5, 5), (20, 1))
TRANSDUCTIVE = ("bdcspn", "ptmap")
PROBE = (10, 40)


def extractor(method: str, max_iter: int, seed: int) -> MetaFeatureExtractor:
    return MetaFeatureExtractor(
        method=method,
        max_iter=max_iter,
        random_state=seed,
        **COMMON,
        **SPECIAL.get(method, {}),
    )


def fit_cpu_seconds(method, max_iter, X, y, seed):
    """The fitted extractor and the CPU seconds its ``fit`` took."""
    tic = time.process_time()
    fitted = extractor(method, max_iter, seed).fit(X, y)
    return fitted, time.process_time() - tic


def budget_iterations(method, budget, X, y, seed) -> dict:
    """``max_iter`` for `budget` CPU seconds, from two probe fits (their
    difference prices an iteration, the rest is the fixed cost)."""
    short, long = PROBE
    cost = {n: fit_cpu_seconds(method, n, X, y, seed)[1] for n in PROBE}
    per_iteration = max(cost[long] - cost[short], 1e-9) / (long - short)
    fixed = max(cost[short] - short * per_iteration, 0.0)
    return {
        "iterations": max(1, int(0.97 * (budget - fixed) / per_iteration)),
        "cpu_seconds_per_iteration": per_iteration,
        "fixed_cpu_seconds": fixed,
    }


def evaluate(model, transductive, X, y, episodes: int) -> dict:
    out = {}
    for n_way, k_shot in TASKS:
        key = f"{n_way}w{k_shot}s"
        tic = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                result = episodic_score(
                    FewShotClassifier(pretrained=model, transductive=transductive),
                    X,
                    y,
                    n_way=n_way,
                    k_shot=k_shot,
                    n_query=15,
                    n_episodes=episodes,
                    random_state=0,
                )
        except ValueError as exc:
            if "classifies at most" not in str(exc):
                raise  # only MANN beyond its ways is a result, not a failure
            out[key] = {"error": str(exc).split(";")[0]}
            print(f"    {key}: {out[key]['error']}", flush=True)
            continue
        out[key] = {
            "mean": result.mean,
            "ci95": result.ci95,
            "seconds_per_episode": (time.perf_counter() - tic) / episodes,
        }
        print(f"    {key}: {result}", flush=True)
    return out


def run(args) -> None:
    background = load_omniglot("background", data_home=args.data_home, image_size=28)
    evaluation = load_omniglot("evaluation", data_home=args.data_home, image_size=28)
    X, y = background.data, background.target
    for method in args.methods.split(","):
        print(method, flush=True)
        budget = budget_iterations(method, args.cpu_seconds, X, y, args.seed)
        fitted, cpu = fit_cpu_seconds(method, budget["iterations"], X, y, args.seed)
        model = fitted.meta_model_
        print(f"  {fitted.n_iter_} iterations, {cpu:.0f} CPU s", flush=True)
        deployments = [None]
        if ALGORITHMS[method].prototype_deployment:
            deployments += list(TRANSDUCTIVE)
        scores = {}
        for deployment in deployments:
            print(f"  {deployment or 'inductive'}", flush=True)
            scores[deployment or "inductive"] = evaluate(
                model, deployment, evaluation.data, evaluation.target, args.episodes
            )
        merge(
            method,
            {
                "settings": {**COMMON, **SPECIAL.get(method, {})},
                "budget_cpu_seconds": args.cpu_seconds,
                **budget,
                "n_iter": fitted.n_iter_,
                "cpu_seconds": cpu,
                "seed": args.seed,
                "episodes": args.episodes,
                "scores": scores,
            },
        )


def merge(method: str, record: dict) -> None:
    """Add `method`'s record to the JSON under a lock, rewrite the table."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "all_methods.json"
    with open(Path(tempfile.gettempdir()) / "skmeta_all_methods.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = json.loads(path.read_text()) if path.exists() else {}
        report[method] = record
        path.write_text(json.dumps(report, indent=1))
        (RESULTS / "all_methods.md").write_text(table(report))


def cell(score: dict | None) -> str:
    if score is None:
        return ""
    if "error" in score:
        return "n/a (meta-trained for 5 ways)"
    return f"{100 * score['mean']:.2f} ± {100 * score['ci95']:.2f}%"


def table(report: dict) -> str:
    first = next(iter(report.values()), {})
    lines = [
        "# Every method at the same CPU budget",
        "",
        f"Omniglot `evaluation`, {first.get('episodes')} episodes a task, 15 "
        "queries a class, seed 0; meta-training on `background` "
        f"for {first.get('budget_cpu_seconds')} CPU s (one thread), strided "
        "Conv4, 28 px, rot90 classes, each method at the estimators' defaults.",
        "",
        "| method | deployment | iterations | CPU s | "
        + " | ".join(f"{w}-way {k}-shot" for w, k in TASKS)
        + " | s/episode (5w1s) |",
        "|---|---|---|---|" + "---|" * (len(TASKS) + 1),
    ]
    rows = []
    for method, r in report.items():
        for deployment, scores in r["scores"].items():
            rows.append((deployment != "inductive", method, deployment, r, scores))
    for _, method, deployment, r, scores in sorted(rows, key=lambda t: t[0]):
        cells = [cell(scores.get(f"{w}w{k}s")) for w, k in TASKS]
        secs = scores.get("5w1s", {}).get("seconds_per_episode")
        lines.append(
            f"| {method} | {deployment} | {r['n_iter']} | {r['cpu_seconds']:.0f} | "
            + " | ".join(cells)
            + (f" | {secs:.3f} |" if secs is not None else " | |")
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["run", "table"])
    ap.add_argument("--methods", default=",".join(ALGORITHMS))  # all classify
    ap.add_argument("--cpu-seconds", type=float, default=180.0)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(DATA))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.stage == "table":
        report = json.loads((RESULTS / "all_methods.json").read_text())
        (RESULTS / "all_methods.md").write_text(table(report))
        print(table(report))
        return
    run(args)


if __name__ == "__main__":
    main()
