"""MANN (Santoro et al. 2016) against ProtoNet on Omniglot, same meta-training time.

Both meta-train on Omniglot ``background`` (rot90 class augmentation,
``conv4_strided`` backbone, 28x28) for the same wall-clock budget: a 40-iteration
probe measures seconds per iteration, then ``max_iter`` is set to fill the
budget (the cosine learning-rate schedule then ends with the run). Each is then
scored on ``evaluation`` with :func:`skmeta.episodic_score`: 5-way 1-shot and
5-way 5-shot, 15 queries per class, mean and 95% CI over the episodes.

MANN's output layer is as wide as its episodes (5-way), so it meta-trains on
5-way 5-shot 5-query episodes, 4 per meta-batch (the paper: 16; fewer rows per
update leave more updates within the budget), with the paper's memory (128 slots
of 40, 4 heads, a 200-unit LSTM), and the library's episode centring and
input layer (62f7680; the rows before them, at chance, are in git).
ProtoNet takes the repository's Omniglot
recipe (20-way 1-shot 5-query, one episode per meta-batch,
``benchmarks/omniglot.py``) at the default learning rate, 1e-3; MANN at 3e-3.

    python benchmarks/mann.py run --method protonet --budget 420
    python benchmarks/mann.py run --method mann --budget 900 \
        --learning-rate 3e-3 --name mann-lr3e-3
    python benchmarks/mann.py run --method mann --budget 900 \
        --learning-rate 3e-3 --name mann-frozen-protonet-lr3e-3 \
        --frozen-backbone /tmp/models/lake_select_lr4-28-20k.safetensors
    python benchmarks/mann.py table

``--frozen-backbone MODEL`` gives MANN the backbone of a saved ProtoNet,
frozen (``trainable_blocks=0``), its embeddings L2-normalised: features on
which nearest prototypes already classify well, so that only the controller
and memory learn. It tells whether MANN's slow start is in its features or in
its binding of rows to labels. That ProtoNet's own meta-training (20,000
iterations, 771 CPU s) is not counted in the row's time.

Results: ``benchmarks/results/mann.json`` and ``benchmarks/results/mann.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from skmeta import FewShotClassifier, MetaFeatureExtractor, MetaModel, episodic_score
from skmeta.datasets import load_omniglot

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
TASKS = ((5, 1), (5, 5))
PROBE_ITERATIONS = 40
COMMON = dict(
    backbone="conv4_strided", input_shape=(1, 28, 28), class_augmentation="rot90"
)
RECIPES = {
    "protonet": dict(n_way=20, k_shot=1, n_query=5, meta_batch_size=1),
    "mann": dict(n_way=5, k_shot=5, n_query=5, meta_batch_size=4),
}


class _Normalized(torch.nn.Module):
    """A backbone whose embeddings are L2-normalised."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return F.normalize(self.backbone(x).flatten(1), dim=1)


def _extractor(
    method: str, max_iter: int, seed: int, learning_rate: float, frozen=None
) -> MetaFeatureExtractor:
    common = dict(COMMON)
    if frozen is not None:
        backbone = MetaModel.load(frozen).network().backbone
        common["backbone"] = lambda: _Normalized(copy.deepcopy(backbone))
        common["backbone_params"] = {"trainable_blocks": 0}
    return MetaFeatureExtractor(
        method=method,
        max_iter=max_iter,
        random_state=seed,
        learning_rate=learning_rate,
        **common,
        **RECIPES[method],
    )


def run(args) -> None:
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    X, y = background.data, background.target
    probe = _extractor(
        args.method,
        PROBE_ITERATIONS,
        args.seed,
        args.learning_rate,
        args.frozen_backbone,
    ).fit(X, y)
    probe_seconds = probe.meta_model_.config["training"]["elapsed"]
    max_iter = max(1, int(args.budget * PROBE_ITERATIONS / probe_seconds))
    print(
        f"{args.method}: {probe_seconds / PROBE_ITERATIONS:.3f} s/it in the probe;"
        f" max_iter={max_iter}",
        flush=True,
    )
    extractor = _extractor(
        args.method, max_iter, args.seed, args.learning_rate, args.frozen_backbone
    ).fit(X, y)
    model = extractor.meta_model_
    train_seconds = model.config["training"]["elapsed"]
    history = [
        {
            "iter": int(r["iter"]),
            "loss": float(r["loss"]),
            "accuracy": float(r["accuracy"]),
        }
        for r in model.history
    ]
    scores = {}
    for n_way, k_shot in TASKS:
        tic = time.perf_counter()
        result = episodic_score(
            FewShotClassifier(pretrained=model),
            evaluation.data,
            evaluation.target,
            n_way=n_way,
            k_shot=k_shot,
            n_query=15,
            n_episodes=args.n_episodes,
            random_state=args.seed,
        )
        scores[f"{n_way}w{k_shot}s"] = {
            "mean": result.mean,
            "ci95": result.ci95,
            "n_episodes": args.n_episodes,
            "seconds": time.perf_counter() - tic,
        }
        print(f"  {n_way}-way {k_shot}-shot: {result}", flush=True)
    out = Path(args.out)
    path = out / "mann.json"
    report = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    report["common"] = {**COMMON, "input_shape": list(COMMON["input_shape"])}
    report["runs"][args.name or args.method] = {
        "method": args.method,
        "learning_rate": args.learning_rate,
        "frozen_backbone": args.frozen_backbone,
        "recipe": RECIPES[args.method],
        "method_params": dict(model.config["method_params"]),
        "budget_seconds": args.budget,
        "max_iter": max_iter,
        "train_seconds": train_seconds,
        "seconds_per_iteration": train_seconds / max_iter,
        "final_training_record": history[-1] if history else None,
        "history": history,
        "scores": scores,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "seed": args.seed,
    }
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    table(args)


def table(args) -> None:
    out = Path(args.out)
    report = json.loads((out / "mann.json").read_text())
    lines = [
        "| method | meta-training episodes | iterations | meta-training | s/it | "
        "training loss, first -> last record | 5-way 1-shot | 5-way 5-shot |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, run in report["runs"].items():
        r = run["recipe"]
        episodes = (
            f"{r['n_way']}-way {r['k_shot']}-shot {r['n_query']}-query "
            f"x{r['meta_batch_size']}"
        )
        cells = " | ".join(
            f"{100 * run['scores'][t]['mean']:.2f} ± "
            f"{100 * run['scores'][t]['ci95']:.2f}%"
            for t in ("5w1s", "5w5s")
        )
        first, last = run["history"][0], run["history"][-1]
        curve = (
            f"{first['loss']:.3f} ({100 * first['accuracy']:.0f}%) -> "
            f"{last['loss']:.3f} ({100 * last['accuracy']:.0f}%)"
        )
        lines.append(
            f"| {method} | {episodes} | {run['max_iter']} | "
            f"{run['train_seconds'] / 60:.1f} min | "
            f"{run['seconds_per_iteration']:.3f} | {curve} | {cells} |"
        )
    n = next(iter(report["runs"].values()))["scores"]["5w1s"]["n_episodes"]
    lines.append("")
    lines.append(
        f"Omniglot evaluation split, {n} episodes per task, 15 queries per class, "
        "mean ± 95% CI; backbone conv4_strided, rot90 class augmentation, "
        "learning rate 1e-3 unless the row's name says otherwise (3e-3: the "
        "rate of the unit test's toy problem, not tuned on Omniglot). Each "
        "row's budget (420 s for ProtoNet, 900 s for MANN) set its iterations from "
        "a 40-iteration probe, so the actual times differ with the load of the "
        "shared machine. Training loss and query accuracy are the first and "
        "last records of the meta-training history (chance: ln 5 = 1.609 and "
        "20% for 5-way episodes). `frozen-protonet`: the backbone of a ProtoNet "
        "meta-trained on 25 background alphabets (`lake_select_lr4-28-20k`), "
        "frozen, its embeddings L2-normalised (`--frozen-backbone`); its own "
        "meta-training (771 CPU s) is not in the row's time. MANN rows: "
        "episode centring and input layer (62f7680); before them MANN stayed "
        "at chance (rows in git)."
    )
    (out / "mann.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("run", "table"))
    ap.add_argument("--method", choices=tuple(RECIPES), default="mann")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds")
    ap.add_argument("--n-episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(DEFAULT_DATA))
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--name", help="the row's name (default: the method)")
    ap.add_argument(
        "--frozen-backbone",
        help="a saved ProtoNet whose backbone, frozen and L2-normalised, MANN uses",
    )
    ap.add_argument("--out", default=str(RESULTS), help="folder of the results")
    args = ap.parse_args()
    {"run": run, "table": table}[args.command](args)


if __name__ == "__main__":
    main()
