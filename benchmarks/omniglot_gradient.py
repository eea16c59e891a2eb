"""Omniglot 5-way and 20-way 1-shot for the gradient-based methods (issue 4).

maml, fomaml, metasgd, anil and protomaml through skmeta's public estimators,
each meta-trained 5-way 1-shot on the ``background`` split for a fixed time
(iterations from a short speed probe), then evaluated on the ``evaluation``
split: 5-way and 20-way 1-shot, 15 queries per class, mean and 95% CI over
1,000 episodes (the any-way head adapts to 20 ways at ``fit``).

Settings are chosen per method on 5 alphabets held out *from background*
(``select``: each candidate meta-trained for ``--select-minutes`` on the other 25
background alphabets); ``evaluation`` is used for the reported numbers only.

    python benchmarks/omniglot_gradient.py select --select-minutes 1.5
    python benchmarks/omniglot_gradient.py final --minutes maml=10,protomaml=15,...
    python benchmarks/omniglot_gradient.py table

Results: ``benchmarks/results/omniglot_gradient_{select,final}.json`` and
``benchmarks/results/omniglot_gradient.md``. Needs the Omniglot data
(``--data-home``, default ``../shared/data/omniglot``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from omniglot import _evaluate, _write  # issue 3's evaluation and JSON output

from skmeta import MetaFeatureExtractor
from skmeta.datasets import load_omniglot

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
METHODS = ("maml", "fomaml", "metasgd", "anil", "protomaml")

# Shared by every run: the MAML paper's strided Conv4 and 5-way 1-shot training
# tasks with 15 queries, rotations as new classes (as in the MAML paper).
COMMON = dict(
    backbone="conv4_strided",
    class_augmentation="rot90",
    n_way=5,
    k_shot=1,
    n_query=15,
    meta_batch_size=8,
    learning_rate=1e-3,
    # MAML-style meta-training can collapse midway (seen with ANIL: training
    # accuracy 0.94, then 0.50); keep the weights that did best on held-out
    # classes, and stop after 20 evaluations without improvement.
    early_stopping=True,
    n_iter_no_change=20,
)
# Candidates per method (from the papers' settings; the shared any-way head
# needs >= 2 inner steps, since the first only moves the head).
CANDIDATES = {
    "maml": {
        "lr0.4": dict(inner_lr=0.4, inner_steps=2),
        "lr0.1": dict(inner_lr=0.1, inner_steps=3),
    },
    "fomaml": {
        "lr0.4": dict(inner_lr=0.4, inner_steps=2),
        "lr0.1": dict(inner_lr=0.1, inner_steps=3),
    },
    "metasgd": {
        "lr0.4": dict(inner_lr=0.4, inner_steps=2),
        "lr0.1": dict(inner_lr=0.1, inner_steps=2),
    },
    "anil": {
        "lr0.4": dict(inner_lr=0.4, inner_steps=5),
        "lr0.1": dict(inner_lr=0.1, inner_steps=10),
    },
    "protomaml": {
        "fo-lr0.05": dict(inner_lr=0.05, inner_steps=2, first_order=True),
        "fo-lr0.3": dict(inner_lr=0.3, inner_steps=2, first_order=True),
    },
}


def _extractor(method: str, params: dict, max_iter: int, seed: int, **overrides):
    settings = {**COMMON, **params, **overrides}
    return MetaFeatureExtractor(
        method=method,
        input_shape=(1, 28, 28),
        max_iter=max_iter,
        random_state=seed,
        verbose=1,
        **settings,
    )


def _train(method, params, X, y, seconds, seed):
    """Meta-train for about `seconds`: iterations from a 20-iteration probe."""
    # (no validation in the probe: it would run at every one of its iterations)
    probe = _extractor(method, params, 20, seed, early_stopping=False).fit(X, y)
    training = probe.meta_model_.config["training"]
    n_iter = max(20, int(seconds * training["n_iter"] / training["elapsed"]))
    tic, cpu_tic = time.perf_counter(), time.process_time()
    extractor = _extractor(method, params, n_iter, seed).fit(X, y)
    cpu_seconds = time.process_time() - cpu_tic  # all threads of this process
    return extractor.meta_model_, n_iter, time.perf_counter() - tic, cpu_seconds


def _training_record(model) -> dict:
    training = model.config["training"]
    return {k: training[k] for k in ("n_iter", "best_iter") if k in training}


def _cpu_minutes(run: dict) -> str:
    """', 24.3 CPU-min' when the run recorded its CPU time (older runs did not)."""
    cpu = run.get("train_cpu_seconds")
    return "" if cpu is None else f", {cpu / 60:.1f} CPU-min"


def _run_name(file_name: str) -> str:
    """'omniglot_gradient_long.json' -> 'long'."""
    return file_name.removeprefix("omniglot_gradient_").removesuffix(".json")


def _read(name: str) -> dict:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else {}


def select(args) -> None:
    data = load_omniglot("background", data_home=args.data_home)
    alphabets = np.unique(data.groups)
    held = np.random.default_rng(args.seed).choice(alphabets, 5, replace=False)
    val = np.isin(data.groups, held)
    report = _read("omniglot_gradient_select.json")
    report.update(held_out_alphabets=[data.alphabet_names[a] for a in held])
    runs = report.setdefault("runs", {})
    for method in args.methods.split(","):
        for name, params in CANDIDATES[method].items():
            print(f"\n== {method} {name}: {params}", flush=True)
            model, n_iter, seconds, cpu_seconds = _train(
                method,
                params,
                data.data[~val],
                data.target[~val],
                60 * args.select_minutes,
                args.seed,
            )
            scores = _evaluate(
                model,
                data.data[val],
                data.target[val],
                args.n_episodes,
                args.seed,
                ((5, 1),),
            )
            runs.setdefault(method, {})[name] = {
                "params": params,
                "max_iter": n_iter,
                "train_seconds": seconds,
                "train_cpu_seconds": cpu_seconds,
                "scores": scores,
            }
            _write("omniglot_gradient_select.json", report)


def _chosen(method: str) -> tuple[str, dict]:
    runs = _read("omniglot_gradient_select.json").get("runs", {}).get(method)
    if not runs:
        raise SystemExit(f"run `select` for {method} first")
    name = max(runs, key=lambda n: runs[n]["scores"]["5w1s"]["mean"])
    return name, runs[name]["params"]


def final(args) -> None:
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    minutes = dict(item.split("=") for item in args.minutes.split(","))
    out_name = f"omniglot_gradient_{args.name}.json"
    report = _read(out_name)
    report["common"] = COMMON
    runs = report.setdefault("runs", {})
    overrides = json.loads(args.override) if args.override else {}
    for method in args.methods.split(","):
        name, params = _chosen(method)
        params = {**params, **overrides}
        budget = float(minutes.get(method, minutes.get("default", 10)))
        print(f"\n== {method} {name} {params}, {budget} min", flush=True)
        model, n_iter, seconds, cpu_seconds = _train(
            method,
            params,
            background.data,
            background.target,
            60 * budget,
            args.seed,
        )
        print(
            f"  meta-training: {n_iter} iterations, {seconds:.0f} s "
            f"({cpu_seconds:.0f} s of CPU)",
            flush=True,
        )
        scores = _evaluate(
            model,
            evaluation.data,
            evaluation.target,
            args.n_episodes,
            args.seed,
            ((5, 1), (20, 1)),
        )
        runs[method] = {
            "candidate": name,
            "params": params,
            "max_iter": n_iter,
            **_training_record(model),
            "train_seconds": seconds,
            "train_cpu_seconds": cpu_seconds,
            "torch_threads": torch.get_num_threads(),
            "scores": scores,
        }
        _write(out_name, report)
    table(args)


def table(args) -> None:
    report = _read("omniglot_gradient_final.json")
    select_runs = _read("omniglot_gradient_select.json").get("runs", {})
    lines = [
        "| method | chosen settings | held-out background 5w1s (all candidates) | "
        "meta-training | 5-way 1-shot | 20-way 1-shot |",
        "|---|---|---|---|---|---|",
    ]
    rows = list(report.get("runs", {}).items())
    for name in sorted(p.name for p in RESULTS.glob("omniglot_gradient_*.json")):
        if name not in (
            "omniglot_gradient_final.json",
            "omniglot_gradient_select.json",
        ):
            extra = _read(name).get("runs", {})
            rows += [
                (f"{method} ({_run_name(name)} run)", run)
                for method, run in extra.items()
            ]
    for method, run in rows:
        held = ", ".join(
            f"{name} {100 * r['scores']['5w1s']['mean']:.1f}%"
            for name, r in select_runs.get(method.split(" ")[0], {}).items()
        )
        scores = [run["scores"][t] for t in ("5w1s", "20w1s")]
        cells = " | ".join(
            f"{100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}%" for s in scores
        )
        settings = ", ".join(f"{k}={v}" for k, v in run["params"].items())
        lines.append(
            f"| {method} | {settings} | {held} | {run.get('n_iter', run['max_iter'])} "
            f"it (best {run.get('best_iter', '?')}), "
            f"{run['train_seconds'] / 60:.1f} min{_cpu_minutes(run)} "
            f"({run['torch_threads']} threads) | "
            f"{cells} |"
        )
    common = ", ".join(f"{k}={v}" for k, v in report.get("common", COMMON).items())
    text = (
        "\n".join(lines)
        + f"\n\nAll runs, unless their settings say otherwise: {common}.\n"
    )
    (RESULTS / "omniglot_gradient.md").write_text(text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["select", "final", "table"])
    parser.add_argument("--data-home", default=str(DEFAULT_DATA))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--select-minutes", type=float, default=1.5)
    parser.add_argument(
        "--minutes", default="default=10", help="e.g. default=8,protomaml=15"
    )
    parser.add_argument("--n-episodes", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--name",
        default="final",
        help="final: results/omniglot_gradient_<name>.json, one name per "
        "configuration (a rerun updates its file; older runs live in git)",
    )
    parser.add_argument(
        "--override", default=None, help="final: JSON settings, e.g. '{\"n_way\": 20}'"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n_episodes is None:
        args.n_episodes = 300 if args.stage == "select" else 1000
    {"select": select, "final": final, "table": table}[args.stage](args)


if __name__ == "__main__":
    main()
