"""Closed-form heads against ProtoNet on Omniglot, same meta-training.

ProtoNet, R2-D2 (``method="r2d2"``) and MetaOptNet (``method="metaoptnet"``)
are each meta-trained on Omniglot ``background`` for the same number of
iterations (``--max-iter``; the same episodes: strided Conv4, 28x28, 20-way
1-shot 5-query, rot90 class augmentation, seed 0), then scored on
``evaluation`` with :func:`skmeta.episodic_score` (5-way 1-shot and 5-shot,
15 queries, 300 episodes, 95% CI). Equal iterations rather than equal time:
on a shared machine the speed of a run varies with the other jobs, so the
time per iteration is measured and reported beside the scores instead.

    OMP_NUM_THREADS=1 python benchmarks/closed_form.py --max-iter 1500
    OMP_NUM_THREADS=1 python benchmarks/closed_form.py --append \
        --methods "r2d2:alpha=10,metaoptnet:C=0.1"    # other settings

Writes ``benchmarks/results/closed_form.json`` and ``closed_form.md`` after
each method. Needs the Omniglot data (``--data-home``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor, episodic_score
from skmeta.datasets import load_omniglot
from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.backbones import build_backbone
from skmeta.meta.net import MetaNet

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
EPISODES = dict(n_way=20, k_shot=1, n_query=5, class_augmentation="rot90")
TASKS = ((5, 1), (5, 5))


def _parse(run: str) -> tuple[str, dict]:
    """``"metaoptnet:C=0.1"`` -> ``("metaoptnet", {"C": 0.1})``."""
    method, _, settings = run.partition(":")
    params = {}
    for item in filter(None, settings.split(";")):
        key, _, value = item.partition("=")
        params[key] = float(value)
    return method, params


def _extractor(run: str, max_iter: int, seed: int) -> MetaFeatureExtractor:
    method, params = _parse(run)
    return MetaFeatureExtractor(
        method=method,
        method_params=params or None,
        backbone="conv4_strided",
        input_shape=(1, 28, 28),
        max_iter=max_iter,
        random_state=seed,
        **EPISODES,
    )


def speed(args) -> None:
    out = RESULTS / "closed_form.json"
    report = json.loads(out.read_text())
    report["loss_step_ms"] = _loss_step_ms(
        args.methods.split(","), rounds=7, reps=5, seed=args.seed
    )
    out.write_text(json.dumps(report, indent=2) + "\n")
    _table(report)


def run(args) -> None:
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    out = RESULTS / "closed_form.json"
    if args.append and out.exists():
        previous = json.loads(out.read_text())
    report = {
        "protocol": {
            "train": "Omniglot background, "
            + ", ".join(f"{k}={v}" for k, v in EPISODES.items()),
            "backbone": "conv4_strided, input_shape=(1, 28, 28)",
            "max_iter": args.max_iter,
            "test": f"Omniglot evaluation, 15 queries, {args.n_episodes} episodes",
            "torch_threads": torch.get_num_threads(),
            "seed": args.seed,
        },
        "runs": {},
    }
    if args.append and out.exists():
        if previous["protocol"] != report["protocol"]:
            raise SystemExit("--append: the protocol differs from the file's.")
        report = previous
    for method in args.methods.split(","):
        max_iter = args.max_iter
        print(f"== {method}: {max_iter} iterations", flush=True)
        tic = time.perf_counter()
        extractor = _extractor(method, max_iter, args.seed)
        extractor.fit(background.data, background.target)
        seconds = time.perf_counter() - tic
        scores = {}
        for n_way, k_shot in TASKS:
            tic = time.perf_counter()
            result = episodic_score(
                FewShotClassifier(pretrained=extractor.meta_model_),
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
                "seconds": time.perf_counter() - tic,
            }
            print(f"  {n_way}-way {k_shot}-shot: {result}", flush=True)
        history = extractor.meta_model_.history
        report["runs"][method] = {
            "max_iter": max_iter,
            "train_seconds": seconds,
            "ms_per_iteration": 1e3 * seconds / max_iter,
            "final_training_loss": history[-1]["loss"],
            "scores": scores,
        }
        RESULTS.mkdir(exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        _table(report)


def _loss_step_ms(runs: list[str], rounds: int, reps: int, seed: int) -> dict:
    """Median time of one meta-training loss and its backward per method, on
    the same 20-way 1-shot 5-query episode of 28x28 images and the same
    strided Conv4, methods interleaved round by round (a shared machine's
    load then weighs on each alike)."""
    torch.manual_seed(seed)
    n_way, k_shot, n_query = EPISODES["n_way"], EPISODES["k_shot"], 5
    batch = TaskBatch(
        torch.rand(1, n_way * k_shot, 784),
        torch.arange(n_way).repeat_interleave(k_shot),
        torch.rand(1, n_way * n_query, 784),
        torch.arange(n_way).repeat_interleave(n_query),
        n_way,
    )
    steps = {}
    for run in runs:
        method, params = _parse(run)
        algorithm = make_algorithm(method, **params)
        torch.manual_seed(seed)
        backbone = build_backbone("conv4_strided", (1, 28, 28), {})
        net = MetaNet(backbone, (1, 28, 28), per_feature_scaling=False)
        for name, value in algorithm.meta_parameters(net, 256, 64).items():
            net.extra[name] = torch.nn.Parameter(value.clone())
        steps[run] = (algorithm, net)
        algorithm.loss(net, batch)[0].backward()  # warm-up
    times = {run: [] for run in runs}
    for _ in range(rounds):
        for run, (algorithm, net) in steps.items():
            tic = time.perf_counter()
            for _ in range(reps):
                loss, _ = algorithm.loss(net, batch)
                loss.backward()
            times[run].append(1e3 * (time.perf_counter() - tic) / reps)
    return {run: float(np.median(t)) for run, t in times.items()}


def _table(report: dict) -> None:
    lines = [
        f"Meta-training: {report['protocol']['train']}; "
        f"{report['protocol']['backbone']}; {report['protocol']['max_iter']} "
        f"iterations each. Test: {report['protocol']['test']}, mean ± 95% CI.",
        "Meta-training times are wall clock on a shared machine (other jobs "
        "running), not a speed comparison; the loss-step line below is.",
        "",
        "| method | meta-training | ms / iteration | 5-way 1-shot | 5-way 5-shot |",
        "|---|---|---|---|---|",
    ]
    for method, r in report["runs"].items():
        cells = " | ".join(
            f"{100 * r['scores'][t]['mean']:.2f} ± {100 * r['scores'][t]['ci95']:.2f}%"
            for t in ("5w1s", "5w5s")
        )
        lines.append(
            f"| {method} | {r['train_seconds'] / 60:.1f} min | "
            f"{r['ms_per_iteration']:.0f} | {cells} |"
        )
    if "loss_step_ms" in report:
        lines += [
            "",
            "One loss + backward on the same 20-way 1-shot 5-query episode "
            "(median of interleaved rounds, ms): "
            + ", ".join(f"{m} {t:.1f}" for m, t in report["loss_step_ms"].items())
            + ".",
        ]
    (RESULTS / "closed_form.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-iter", type=int, default=1500)
    ap.add_argument(
        "--methods",
        default="protonet,r2d2,metaoptnet",
        help='comma-separated; settings after a colon: "metaoptnet:C=0.1"',
    )
    ap.add_argument(
        "--append", action="store_true", help="add runs to an existing report"
    )
    ap.add_argument("--n-episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(DEFAULT_DATA))
    ap.add_argument(
        "--speed",
        action="store_true",
        help="only time one loss + backward per method (added to the report)",
    )
    ap.add_argument("--table", action="store_true", help="only rebuild the table")
    args = ap.parse_args()
    if args.table:
        _table(json.loads((RESULTS / "closed_form.json").read_text()))
    else:
        speed(args) if args.speed else run(args)


if __name__ == "__main__":
    main()
