"""Cheap strong baselines on Omniglot (issue 15, parts 2 and 4).

Supervised pre-training (``pretrain``), SimpleShot's feature normalisation of
its embeddings ("l2", "cl2n"), Baseline++ (cosine-classifier pre-training) and
RFS self-distillation generations 0, 1 and 2, each generation with the same
``max_iter``. Meta-trained on Omniglot ``background`` with the strided Conv4
(20-way 1-shot 5-query batches, i.e. 120 rows per step, rot90 classes),
evaluated on ``evaluation`` with :func:`skmeta.episodic_score`: 5-way 1-shot
and 5-shot, 15 queries, the same episodes for every row (mean and 95% CI).

RFS generation 0 *is* ``pretrain``: the same loss, seed and batches give the
same weights to the bit (``tests/meta/test_rfs.py``), so one RFS run with
``generations=2`` gives the pretrain row and both distillation rows; a
callback keeps each generation's weights and computes its base-class mean as
meta-training does (checked against the stored one for the last generation).

    python benchmarks/baselines.py run [--max-iter N] [--episodes 300]
    python benchmarks/baselines.py control  # pretrain, 3 x max_iter iterations
    python benchmarks/baselines.py paired   # CL2N and L2 gains, paired episodes
    python benchmarks/baselines.py table   # rebuild results/baselines.md

Results: ``benchmarks/results/baselines.json`` and ``baselines.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from skmeta import FewShotClassifier, episodic_score
from skmeta.datasets import load_omniglot
from skmeta.meta.algorithms.feature_norm import BASE_MEAN, base_class_mean
from skmeta.meta.callbacks import Callback
from skmeta.meta.model import MetaModel
from skmeta.meta.rows import Rows
from skmeta.meta.train import TrainSettings, meta_train

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = "/work/shared/data/omniglot"
TASKS = ((5, 1), (5, 5))


class KeepGenerations(Callback):
    """At the end of each generation: its weights (with its base-class mean,
    computed as ``meta_train`` computes it) and its meta-training time."""

    def __init__(self, rows: Rows, seed: int) -> None:
        self.rows, self.seed, self.kept = rows, seed, []

    def on_train_begin(self, loop):
        self.start = time.perf_counter()

    def on_record(self, loop, record):
        if loop.n_iter % 100 == 0:
            elapsed = time.perf_counter() - self.start
            print(f"    iteration {loop.n_iter}, {elapsed:.0f} s", flush=True)

    def on_train_end(self, loop):
        seconds = time.perf_counter() - self.start
        mean = base_class_mean(
            loop.net,
            self.rows,
            np.arange(self.rows.X.shape[0]),
            np.random.default_rng([self.seed, 1]),
        )
        state = {k: v.detach().cpu().clone() for k, v in loop.net.state_dict().items()}
        state["extra." + BASE_MEAN] = mean.cpu()
        self.kept.append({"state": state, "seconds": seconds, "n_iter": loop.n_iter})


def _settings(method, method_params, max_iter, seed) -> TrainSettings:
    return TrainSettings(
        n_way=20,
        k_shot=1,
        n_query=5,
        input_shape=(1, 28, 28),
        method=method,
        method_params=method_params,
        backbone="conv4_strided",
        class_augmentation="rot90",
        max_iter=max_iter,
        seed=seed,
    )


def _evaluate(model, feature_norm, X, y, episodes, seed) -> dict:
    out = {}
    for n_way, k_shot in TASKS:
        tic = time.perf_counter()
        result = episodic_score(
            FewShotClassifier(
                pretrained=model, method_params={"feature_norm": feature_norm}
            ),
            X,
            y,
            n_way=n_way,
            k_shot=k_shot,
            n_query=15,
            n_episodes=episodes,
            random_state=seed,
        )
        out[f"{n_way}w{k_shot}s"] = {
            "mean": result.mean,
            "ci95": result.ci95,
            "n_episodes": episodes,
            "seconds": time.perf_counter() - tic,
        }
        print(f"    {n_way}-way {k_shot}-shot: {result}", flush=True)
    return out


def _write(data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "baselines.json").write_text(json.dumps(data, indent=1) + "\n")
    table()


def run(args) -> None:
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    X, y = background.data, background.target
    X_eval, y_eval = evaluation.data, evaluation.target
    data = {
        "protocol": (
            "meta-train on Omniglot background (conv4_strided, 20-way 1-shot "
            "5-query batches = 120 rows/step, rot90 classes, Adam 1e-3 cosine); "
            f"max_iter={args.max_iter} per generation; evaluate on evaluation, "
            f"5-way 1/5-shot, 15 queries, {args.episodes} episodes (the same "
            "for every row), mean and 95% CI"
        ),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, shared; torch threads {torch.get_num_threads()}",
        "seed": args.seed,
        "notes": [],  # written by hand after a run
        "rows": [],
    }

    def evaluate_row(name, model, feature_norm, seconds, n_iter, **extra):
        print(f"  {name} feature_norm={feature_norm}", flush=True)
        scores = _evaluate(model, feature_norm, X_eval, y_eval, args.episodes, 0)
        data["rows"].append(
            {
                "name": name,
                "feature_norm": feature_norm,
                "train_seconds": seconds,
                "n_iter": n_iter,
                "scores": scores,
                **extra,
            }
        )
        _write(data)

    # RFS, generations 0 (= pretrain), 1 and 2
    keep = KeepGenerations(Rows(X, (1, 28, 28), torch.device("cpu")), args.seed)
    print(f"== rfs, generations=2, max_iter={args.max_iter} each", flush=True)
    settings = _settings("rfs", {"generations": 2}, args.max_iter, args.seed)
    final = meta_train(X, y, settings, callbacks=[keep])
    stored, mine = final.state["extra." + BASE_MEAN], keep.kept[-1]["state"]
    data["base_mean_check_max_abs_diff"] = float(
        (stored - mine["extra." + BASE_MEAN]).abs().max()
    )
    config = final.thawed_config()
    elapsed = 0.0
    for generation, kept in enumerate(keep.kept):
        elapsed += kept["seconds"]
        model = MetaModel(kept["state"], config)
        name = "pretrain (rfs generation 0)" if generation == 0 else "rfs"
        losses = [r["loss"] for r in final.history if r["generation"] == generation][
            -5:
        ]
        # the default of each (pretrain: none; rfs: l2), and CL2N
        norms = (None, "l2", "cl2n") if generation == 0 else ("l2", "cl2n")
        for feature_norm in norms:
            evaluate_row(
                name,
                model,
                feature_norm,
                elapsed,
                kept["n_iter"] * (generation + 1),
                generation=generation,
                final_train_loss=float(np.mean(losses)),
            )

    print(f"== baseline++, max_iter={args.max_iter}", flush=True)
    tic = time.perf_counter()
    model = meta_train(X, y, _settings("baseline++", {}, args.max_iter, args.seed))
    seconds = time.perf_counter() - tic
    for feature_norm in (None, "cl2n"):
        evaluate_row(
            "baseline++",
            model,
            feature_norm,
            seconds,
            args.max_iter,
            learnt_scale=float(model.state["extra.scale"]),
        )


def control(args) -> None:
    """Pretrain for as many iterations as RFS's generations 0-2 together, so
    the distillation gain is not more training in disguise; rows appended."""
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    data = json.loads((RESULTS / "baselines.json").read_text())
    n_iter = 3 * args.max_iter
    print(f"== pretrain, max_iter={n_iter}", flush=True)
    tic = time.perf_counter()
    settings = _settings("pretrain", {}, n_iter, args.seed)
    model = meta_train(background.data, background.target, settings)
    seconds = time.perf_counter() - tic
    for feature_norm in (None, "l2", "cl2n"):
        print(f"  feature_norm={feature_norm}", flush=True)
        scores = _evaluate(
            model,
            feature_norm,
            evaluation.data,
            evaluation.target,
            args.episodes,
            0,
        )
        data["rows"].append(
            {
                "name": "pretrain, rfs generation 2's iterations",
                "feature_norm": feature_norm,
                "train_seconds": seconds,
                "n_iter": n_iter,
                "scores": scores,
            }
        )
        _write(data)


def paired(args) -> None:
    """Gains of feature normalisation on pretrain as paired differences over
    the same episodes (mean and 95% CI of the per-episode difference)."""
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    data = json.loads((RESULTS / "baselines.json").read_text())
    settings = _settings("pretrain", {}, args.max_iter, args.seed)
    model = meta_train(background.data, background.target, settings)
    out = {"n_iter": args.max_iter, "episodes": args.episodes}
    for n_way, k_shot in TASKS:
        scores = {}
        for feature_norm in (None, "l2", "cl2n"):
            scores[feature_norm] = episodic_score(
                FewShotClassifier(
                    pretrained=model, method_params={"feature_norm": feature_norm}
                ),
                evaluation.data,
                evaluation.target,
                n_way=n_way,
                k_shot=k_shot,
                n_query=15,
                n_episodes=args.episodes,
                random_state=0,
            ).scores
        for feature_norm in ("l2", "cl2n"):
            diff = scores[feature_norm] - scores[None]
            half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
            out[f"{n_way}w{k_shot}s {feature_norm} - none"] = {
                "mean": float(diff.mean()),
                "ci95": float(half),
            }
            print(
                f"{n_way}-way {k_shot}-shot {feature_norm} - none: "
                f"{100 * diff.mean():+.2f} ± {100 * half:.2f} points",
                flush=True,
            )
    data["paired_feature_norm_gain"] = out
    _write(data)


def table() -> None:
    data = json.loads((RESULTS / "baselines.json").read_text())
    lines = [
        "# Cheap baselines on Omniglot: pretrain, SimpleShot CL2N, Baseline++, RFS",
        "",
        f"Protocol: {data['protocol']}. Seed {data['seed']}. {data['machine']}.",
        "",
        "| method | generation | feature_norm | meta-training | iterations "
        "| 5-way 1-shot | 5-way 5-shot |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        scores = [
            f"{100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}%"
            for s in (row["scores"].get(t) for t in ("5w1s", "5w5s"))
            if s is not None
        ]
        lines.append(
            f"| {row['name']} | {row.get('generation', '')} "
            f"| {row['feature_norm'] or 'none'} "
            f"| {row['train_seconds'] / 60:.1f} min | {row['n_iter']} "
            f"| {' | '.join(scores)} |"
        )
    if data.get("notes"):
        lines += ["", "## Reading", ""] + [f"- {note}" for note in data["notes"]]
    gains = data.get("paired_feature_norm_gain")
    if gains:
        lines += [
            "",
            f"Paired gains of feature normalisation on pretrain "
            f"({gains['n_iter']} iterations, {gains['episodes']} episodes, the "
            "same for each; mean and 95% CI of the per-episode difference):",
            "",
        ]
        lines += [
            f"- {key}: {100 * v['mean']:+.2f} ± {100 * v['ci95']:.2f} points"
            for key, v in gains.items()
            if isinstance(v, dict)
        ]
    if "base_mean_check_max_abs_diff" in data:
        lines += [
            "",
            "Base-class mean of the last generation, recomputed by the benchmark "
            "against the one meta-training stored: max abs difference "
            f"{data['base_mean_check_max_abs_diff']:.2e}.",
        ]
    (RESULTS / "baselines.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("run", "control", "paired", "table"))
    ap.add_argument("--data-home", default=DEFAULT_DATA)
    ap.add_argument("--max-iter", type=int, default=400)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.command == "run":
        run(args)
    elif args.command == "control":
        control(args)
    elif args.command == "paired":
        paired(args)
    else:
        table()


if __name__ == "__main__":
    main()
