"""Online meta-learning on a stream of Omniglot alphabets (issue 15, part 6).

The 30 ``background`` alphabets arrive in 5 batches of 6 (in the order of
their index). Step 1 meta-trains a ``MetaFeatureExtractor`` (ProtoNet,
``conv4_strided``) on batch 1; each later step continues it on the next batch,
two ways, from the same step-1 model:

- ``ftml``: ``partial_fit`` -- episodes drawn from a replay buffer of every
  class so far (``replay_per_class`` rows each) plus the new classes;
- ``naive``: ``warm_start=True`` + ``fit`` on the new batch alone (fine-tuning).

After each step: 5-way 1-shot accuracy (``episodic_score``, mean and 95% CI)
on the classes of each batch seen so far. Forgetting of a batch = its best
accuracy at an earlier step minus its accuracy at the end.

    python benchmarks/online.py [--iters 200] [--episodes 100]

Needs ``../shared/data/omniglot`` (``--data-home``). Writes
``benchmarks/results/online.json`` and ``online.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor, episodic_score
from skmeta.datasets import load_omniglot

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
N_BATCHES = 5


def _batches(data) -> list[np.ndarray]:
    """Row masks of the 5 batches of alphabets."""
    alphabets = np.array_split(np.arange(len(data.alphabet_names)), N_BATCHES)
    return [np.isin(data.groups, group) for group in alphabets]


def _score(model, X, y, episodes: int, seed: int) -> dict:
    result = episodic_score(
        FewShotClassifier(pretrained=model),
        X,
        y,
        n_way=5,
        k_shot=1,
        n_query=15,
        n_episodes=episodes,
        random_state=seed,
    )
    return {"mean": float(result.mean), "ci95": float(result.ci95)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-home", default=str(DEFAULT_DATA))
    ap.add_argument("--iters", type=int, default=200, help="max_iter per step")
    ap.add_argument("--episodes", type=int, default=100, help="per evaluation")
    ap.add_argument("--replay-per-class", type=int, default=10)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    torch.manual_seed(0)
    data = load_omniglot("background", data_home=args.data_home)
    X, y = data.data, data.target
    masks = _batches(data)
    settings = dict(
        backbone="conv4_strided",
        input_shape=(1, 28, 28),
        n_way=20,
        k_shot=1,
        n_query=5,
        max_iter=args.iters,
        replay_per_class=args.replay_per_class,
        random_state=0,
    )
    warnings.simplefilter("ignore")  # ConvergenceWarning of the short budgets
    start = time.perf_counter()
    first = MetaFeatureExtractor(**settings).partial_fit(X[masks[0]], y[masks[0]])
    step_one_s = time.perf_counter() - start
    arms = {"ftml": first, "naive": None}
    accuracy = {arm: [] for arm in arms}  # [step][batch] for batch <= step
    seconds = {arm: [step_one_s] for arm in arms}
    for step in range(N_BATCHES):
        for arm in arms:
            if step > 0:
                rows = masks[step]
                start = time.perf_counter()
                if arm == "ftml":
                    arms[arm].partial_fit(X[rows], y[rows])
                else:
                    naive = MetaFeatureExtractor(**settings, warm_start=True)
                    naive.meta_model_ = (arms[arm] or first).meta_model_
                    arms[arm] = naive.fit(X[rows], y[rows])
                seconds[arm].append(time.perf_counter() - start)
            model = (arms[arm] or first).meta_model_
            accuracy[arm].append(
                [
                    _score(model, X[masks[b]], y[masks[b]], args.episodes, b)
                    for b in range(step + 1)
                ]
            )
            print(arm, step, [round(a["mean"], 3) for a in accuracy[arm][-1]])
        record = {
            "protocol": __doc__,
            "settings": {**settings, "input_shape": [1, 28, 28]},
            "episodes": args.episodes,
            "steps_done": step + 1,
            "classes_per_batch": [int(np.unique(y[m]).size) for m in masks],
            "accuracy": accuracy,
            "summary": {arm: _summary(accuracy[arm], seconds[arm]) for arm in arms},
            "torch_threads": torch.get_num_threads(),
        }
        _write(record, Path(args.out))  # after each step: a partial run counts
    print(_table(record))


def _summary(accuracy: list, seconds: list) -> dict:
    """Final mean accuracy over the batches so far, and mean forgetting: each
    earlier batch's best accuracy before the last step minus its last one."""
    final = accuracy[-1]
    forgetting = [
        max(accuracy[s][b]["mean"] for s in range(b, len(accuracy) - 1))
        - final[b]["mean"]
        for b in range(len(accuracy) - 1)
    ]
    return {
        "final_mean_accuracy": float(np.mean([a["mean"] for a in final])),
        "mean_forgetting": float(np.mean(forgetting)) if forgetting else 0.0,
        "train_seconds": seconds,
    }


def _write(record: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "online.json").write_text(json.dumps(record, indent=1))
    (out / "online.md").write_text(_table(record))


def _table(record: dict) -> str:
    s = record["settings"]
    lines = [
        "# Online meta-learning: Omniglot background alphabets in 5 batches",
        "",
        f"ProtoNet, `{s['backbone']}`, {s['n_way']}-way {s['k_shot']}-shot "
        f"{s['n_query']}-query episodes, `max_iter={s['max_iter']}` per step "
        f"({record['steps_done']} of 5 steps done), "
        f"replay buffer of {s['replay_per_class']} rows per class. Classes per "
        f"batch: {record['classes_per_batch']}. Accuracy: 5-way 1-shot, "
        f"{record['episodes']} episodes on the classes of each batch (95% CI).",
        "",
        "| arm | after step | " + " | ".join(f"batch {b + 1}" for b in range(5)) + " |",
        "|---|---|" + "---|" * 5,
    ]
    for arm, steps in record["accuracy"].items():
        for step, row in enumerate(steps):
            cells = [f"{a['mean']:.3f} ± {a['ci95']:.3f}" for a in row]
            cells += [""] * (5 - len(cells))
            lines.append(f"| {arm} | {step + 1} | " + " | ".join(cells) + " |")
    lines += ["", "| arm | final mean accuracy | mean forgetting | seconds per step |"]
    lines.append("|---|---|---|---|")
    for arm, summary in record["summary"].items():
        secs = ", ".join(f"{t:.0f}" for t in summary["train_seconds"])
        lines.append(
            f"| {arm} | {summary['final_mean_accuracy']:.3f} | "
            f"{summary['mean_forgetting']:.3f} | {secs} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
