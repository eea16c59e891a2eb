"""alpha-TIM's settings on Omniglot, chosen on held-out alphabets
(issue 15, part 1).

alpha-TIM's settings of the paper (Veilleux et al. 2021: order 2 for 1-shot,
loss weights (1, 1, 1)) were tuned on 5-way mini-ImageNet tasks; on Omniglot
20-way 1-shot it lost to inductive ProtoNet (``results/transductive.md``).
This script chooses the order ``alpha`` and the loss weights (the paper's, or
TIM's (0.1, 1, 0.1)) per task without touching ``evaluation``:

- ``select``: a ProtoNet meta-trained on 25 ``background`` alphabets
  (``lake_runs.py``'s ``lake_select_<name>`` model) embeds the 5 held-out
  alphabets; random N-way 1-shot episodes with 15 queries per class, balanced
  and Dirichlet(2)-imbalanced (``transductive.py``'s sampler), score each
  candidate beside inductive ProtoNet and TIM on the same episodes.
  **Rule, written before scoring:** per task, the candidate with the best mean
  of its balanced and imbalanced accuracies.
- ``final``: the ``lake_final_<name>`` model on ``evaluation``: the paper's
  settings against the chosen ones, paired on the same episodes.

The library's default since this selection: the paper's loss weights up to
5 classes, TIM's beyond, with the paper's orders (2 at 1 shot, 7 at 5 shots);
the 5-shot choices here rest on balanced queries only (Omniglot's classes
have 20 drawings), and at order 7 the weights made no difference.

    python benchmarks/alpha_tim_select.py select --model lr4-28
    python benchmarks/alpha_tim_select.py final --model lr4-28

writes ``results/alpha_tim_select.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from lake_runs import held_out_alphabets
from transductive import TASKS, episodes, inductive

from skmeta.datasets import load_omniglot
from skmeta.meta.model import MetaModel
from skmeta.meta.transductive import make_transductive

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
MODELS = Path("/tmp/models")
WEIGHTS = {"paper": (1.0, 1.0, 1.0), "tim": (0.1, 1.0, 0.1)}
TASKS = {**TASKS, "10w1s": (10, 1)}
CANDIDATES = {
    f"alpha={alpha:g} weights={w}": {"alpha": alpha, "loss_weights": WEIGHTS[w]}
    for w in WEIGHTS
    for alpha in (2.0, 5.0, 7.0)
}
N_QUERY = 15
SPLIT_SEED = 0  # the held-out alphabets of the lake_select_* models (lake_runs.py)


def runners(model, candidates) -> dict:
    """name -> f(support, support_y, queries, n_way) returning query scores,
    for inductive ProtoNet, TIM, alpha-TIM at the paper's settings and each of
    `candidates` (names of :data:`CANDIDATES`)."""
    out = {"inductive": inductive(model)}
    methods = {"tim": make_transductive("tim")}
    methods["alpha-tim paper"] = make_transductive(
        "alpha-tim", loss_weights=WEIGHTS["paper"]
    )
    for name in candidates:
        methods[f"alpha-tim {name}"] = make_transductive(
            "alpha-tim", **CANDIDATES[name]
        )
    for name, method in methods.items():

        def run(support, support_y, queries, n_way, method=method):
            return method.fit(support, support_y, queries, n_way)["unlabelled_scores"]

        out[name] = run
    return out


def score(model, emb, y, task, candidates, n_episodes, seed) -> dict:
    """Accuracy (mean, 95% CI) and paired gain over inductive per runner,
    balanced and imbalanced queries, on the same episodes for all."""
    n_way, k_shot = TASKS[task]
    result = {}
    room = int(np.bincount(y)[np.bincount(y) > 0].min()) - k_shot - N_QUERY
    for imbalanced in (False, True) if room > 0 else (False,):
        methods = runners(model, candidates)
        acc = {name: [] for name in methods}
        tic = time.perf_counter()
        stream = episodes(y, n_way, k_shot, N_QUERY, n_episodes, imbalanced, seed)
        for s, sy, q, qy, _ in stream:
            support, queries, support_y = emb[s], emb[q], torch.from_numpy(sy)
            for name, run in methods.items():
                scores = run(support, support_y, queries, n_way)
                acc[name].append(float((scores.argmax(1).numpy() == qy).mean()))
        base = np.array(acc["inductive"])
        queries = "imbalanced" if imbalanced else "balanced"
        for name, values in acc.items():
            a = np.array(values)
            diff = a - base
            result[f"{queries} | {name}"] = {
                "accuracy": float(a.mean()),
                "ci95": float(1.96 * a.std(ddof=1) / np.sqrt(a.size)),
                "gain": float(diff.mean()),
                "gain_ci95": float(1.96 * diff.std(ddof=1) / np.sqrt(a.size)),
                "episodes": int(a.size),
            }
            print(
                f"{task} {queries:10s} {name:18s} {100 * a.mean():6.2f} "
                f"gain {100 * diff.mean():+.2f}",
                flush=True,
            )
        print(f"{task} {queries}: {time.perf_counter() - tic:.0f} s", flush=True)
    return result


def chosen(scores: dict) -> str:
    """The rule: the candidate with the best mean of balanced and imbalanced
    (balanced alone where the classes have no rows to spare for imbalance)."""

    def mean(name):
        return np.mean(
            [
                v["accuracy"]
                for k, v in scores.items()
                if k.split(" | ")[1] == f"alpha-tim {name}"
            ]
        )

    return max(CANDIDATES, key=mean)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["select", "final"])
    ap.add_argument("--model", default="lr4-28", help="name of lake_<stage>_<name>")
    ap.add_argument("--tasks", default="20w1s,10w1s,5w1s,5w5s,20w5s")
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(DATA))
    args = ap.parse_args()
    torch.set_num_threads(1)
    path = MODELS / f"lake_{args.stage}_{args.model}.safetensors"
    model = MetaModel.load(path)
    split = "background" if args.stage == "select" else "evaluation"
    data = load_omniglot(split, data_home=args.data_home)
    X, y = data.data, data.target
    if args.stage == "select":
        keep = np.isin(data.groups, held_out_alphabets(data.groups, y, SPLIT_SEED))
        X, y = X[keep], y[keep]
    emb = torch.from_numpy(model.transform(X))
    out = RESULTS / "alpha_tim_select.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    if args.stage == "select":
        report.pop("final", None)  # scored with an earlier choice
    for task in args.tasks.split(","):
        if args.stage == "select":
            candidates = list(CANDIDATES)
        else:
            candidates = [report["select"][task]["chosen"]]
        scores = score(model, emb, y, task, candidates, args.episodes, args.seed)
        entry = {"model": str(path), "episodes": args.episodes, "scores": scores}
        if args.stage == "select":
            entry["chosen"] = chosen(scores)
        report.setdefault(args.stage, {})[task] = entry
        out.write_text(json.dumps(report, indent=1))
        (RESULTS / "alpha_tim_select.md").write_text(table(report))
    print(table(report))


def table(report: dict) -> str:
    lines = [
        "alpha-TIM's order and loss weights on Omniglot "
        "(`benchmarks/alpha_tim_select.py`): "
        "*select* on 5 alphabets held out from background (model meta-trained "
        "on the other 25), *final* on evaluation. Episodes of 15 queries "
        "per class, balanced or Dirichlet(2)-imbalanced; accuracy in % ± 95% "
        "CI, and the paired gain over inductive ProtoNet on the same episodes. "
        "`alpha-tim paper`: the paper's settings (order 2 at 1 shot, 7 at 5 "
        "shots; loss weights (1, 1, 1)); weights `tim`: (0.1, 1, 0.1) (support "
        "cross-entropy, marginal and conditional entropies), TIM's. A task "
        "whose classes have no rows to spare (5-shot: 20 - 5 = 15 queries) "
        "has balanced queries only.",
    ]
    for stage in ("select", "final"):
        for task, entry in report.get(stage, {}).items():
            pick = report.get("select", {}).get(task, {}).get("chosen")
            lines += [
                "",
                f"**{stage} {task}** (`{entry['model']}`, {entry['episodes']} "
                f"episodes; chosen: {pick})",
                "",
                "| queries | method | accuracy | gain over inductive |",
                "|---|---|---|---|",
            ]
            for name, v in entry["scores"].items():
                queries, method = name.split(" | ")
                lines.append(
                    f"| {queries} | {method} | {100 * v['accuracy']:.2f} ± "
                    f"{100 * v['ci95']:.2f} | {100 * v['gain']:+.2f} ± "
                    f"{100 * v['gain_ci95']:.2f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
