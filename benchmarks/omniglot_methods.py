"""One table for every method on Omniglot ``evaluation`` (issue 15, part 8).

Every row is a saved model (meta-trained on ``background`` within the budget
by its own script, its meta-training time read from the model file) deployed
inductively, or transductively (``FewShotClassifier(transductive=...)``, the
queries of the episode given as unlabelled rows, ``y == -1``). All rows see the
same episodes (seeded). Tasks:

- random N-way K-shot episodes over all 659 evaluation characters, 15
  queries per class (5w1s, 5w5s, 20w1s, 20w5s);
- **within-alphabet one-shot runs as in Lake et al. (2015)**: 20 characters
  of one evaluation alphabet, the support drawn by one drawer, the queries
  (one per character) by another; 20-way 1-shot, at least 20 runs. The
  drawer of each image comes from the data file (``drawer``), the
  alphabet from ``groups``.

Mean accuracy and 95% CI (1.96 standard errors over episodes or runs), and
seconds of evaluation per episode.

    python benchmarks/omniglot_methods.py --model protonet=/tmp/m.safetensors \
        [--transductive bdcspn,tim,alpha-tim,laplacianshot,ptmap] \
        [--episodes 600] [--runs 100] [--test-time-shifts 1,2,3]

With ``--test-time-shifts``, every deployment averages each image row's
embedding over the shifted views (``FewShotClassifier(test_time_shifts=...)``);
name such rows apart (``--model name-tta=PATH``).

writes ``results/omniglot_methods.{json,md}`` (rows merged by name, so models
can be added one run at a time).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from skmeta import FewShotClassifier
from skmeta.datasets import load_omniglot
from skmeta.meta.model import MetaModel

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
TASKS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1), "20w5s": (20, 5)}
N_QUERY = 15


def random_episodes(y, n_way, k_shot, n_episodes, seed):
    """(support rows, query rows) of `n_episodes` random episodes."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    by_class = {c: np.flatnonzero(y == c) for c in classes}
    out = []
    for _ in range(n_episodes):
        chosen = rng.choice(classes, n_way, replace=False)
        rows = [rng.permutation(by_class[c])[: k_shot + N_QUERY] for c in chosen]
        out.append(
            (
                np.concatenate([r[:k_shot] for r in rows]),
                np.concatenate([r[k_shot:] for r in rows]),
            )
        )
    return out


def within_alphabet_runs(y, alphabet, drawer, n_runs, seed, n_way=20):
    """Lake et al.'s one-shot runs: `n_way` characters of one alphabet, the
    support by one drawer, one query per character by another."""
    rng = np.random.default_rng(seed)
    alphabets = [
        a for a in np.unique(alphabet) if np.unique(y[alphabet == a]).size >= n_way
    ]
    out = []
    for run in range(n_runs):
        a = alphabets[run % len(alphabets)]  # every alphabet in turn
        chars = rng.choice(np.unique(y[alphabet == a]), n_way, replace=False)
        first, second = rng.choice(np.unique(drawer[alphabet == a]), 2, replace=False)
        support, query = [], []
        for c in chars:
            support.append(np.flatnonzero((y == c) & (drawer == first))[0])
            query.append(np.flatnonzero((y == c) & (drawer == second))[0])
        out.append((np.array(support), np.array(query)))
    return out


def score(
    model,
    transductive,
    X,
    y,
    episodes,
    test_time_shifts=None,
    params=None,
    per_episode=False,
    test_time_turns=False,
) -> dict:
    """Accuracy of `model` deployed inductively (None) or transductively,
    with the classifier's `test_time_shifts`, `transductive_params` and
    `test_time_turns`; `per_episode` adds each episode's accuracy (for paired
    comparisons)."""
    accuracies = []
    tic = time.perf_counter()
    for support, query in episodes:
        clf = FewShotClassifier(
            pretrained=model,
            transductive=transductive,
            transductive_params=params,
            test_time_shifts=test_time_shifts,
            test_time_turns=test_time_turns,
        )
        if transductive is None:
            clf.fit(X[support], y[support])
        else:
            rows = np.concatenate([support, query])
            clf.fit(X[rows], np.concatenate([y[support], np.full(query.size, -1)]))
        accuracies.append(np.mean(clf.predict(X[query]) == y[query]))
    accuracies = np.asarray(accuracies)
    out = {
        "mean": float(accuracies.mean()),
        "ci95": float(1.96 * accuracies.std(ddof=1) / np.sqrt(accuracies.size)),
        "n_episodes": int(accuracies.size),
        "seconds_per_episode": (time.perf_counter() - tic) / accuracies.size,
    }
    if per_episode:
        out["per_episode"] = accuracies
    return out


def paired(candidate, current) -> dict:
    """Mean per-episode gain of `candidate` over `current` (per-episode
    accuracies of the same episodes) and 1.96 standard errors of the paired
    differences: the margin the Lake tries' paired rules ask the gain to
    exceed."""
    diff = np.asarray(candidate) - np.asarray(current)
    se = diff.std(ddof=1) / np.sqrt(diff.size) if diff.any() else 0.0
    return {"gain": float(diff.mean()), "margin": float(1.96 * se)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="name=path")
    ap.add_argument("--transductive", default="")
    ap.add_argument("--episodes", type=int, default=600)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--data-home", default=str(DATA))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--test-time-shifts",
        default="",
        help="the classifier's test_time_shifts, e.g. 1,2,3 (default: none)",
    )
    args = ap.parse_args()
    shifts = tuple(int(d) for d in args.test_time_shifts.split(",") if d) or None
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    raw = np.load(Path(args.data_home) / "evaluation.npz")
    if not np.array_equal(raw["labels"], evaluation.target):
        raise SystemExit("the data file's rows are not in load_omniglot's order")
    X, y = evaluation.data, evaluation.target
    episodes = {
        key: random_episodes(y, *TASKS[key], args.episodes, args.seed)
        for key in args.tasks.split(",")
    }
    episodes["lake20w1s"] = within_alphabet_runs(
        y, evaluation.groups, raw["drawer"], args.runs, args.seed
    )
    path = RESULTS / "omniglot_methods.json"
    report = json.loads(path.read_text()) if path.exists() else {"rows": {}}
    protocol = {
        "episodes": args.episodes,
        "lake_runs": args.runs,
        "n_query": N_QUERY,
        "seed": args.seed,
    }
    deployments = [None, *filter(None, args.transductive.split(","))]
    for spec in args.model:
        name, file = spec.split("=", 1)
        model = MetaModel.load(file)
        training = model.config["training"]
        for transductive in deployments:
            row = name if transductive is None else f"{name} + {transductive}"
            result = {
                "test_time_shifts": shifts,
                "model": file,
                "method": model.method,
                "transductive": transductive,
                "meta_training_minutes": training.get("elapsed", float("nan")) / 60,
                "n_iter": training.get("n_iter"),
                "protocol": protocol,
                "scores": {},
            }
            for key, eps in episodes.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    result["scores"][key] = score(
                        model, transductive, X, y, eps, shifts
                    )
                s = result["scores"][key]
                print(
                    f"{row} {key}: {100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}%",
                    flush=True,
                )
            report["rows"][row] = result
            RESULTS.mkdir(exist_ok=True)
            path.write_text(json.dumps(report, indent=1))
    (RESULTS / "omniglot_methods.md").write_text(table(report))
    print(table(report))


def table(report: dict) -> str:
    keys = ["5w1s", "5w5s", "20w1s", "20w5s", "lake20w1s"]
    head = (
        "| model | deployment | test_time_shifts | meta-training "
        "| episodes, Lake runs | " + " | ".join(keys) + " | s/episode (20w1s) |"
    )
    lines = [head, "|" + "---|" * (len(keys) + 6)]
    rows = sorted(
        report["rows"].items(), key=lambda kv: kv[1]["transductive"] is not None
    )
    for name, r in rows:
        cells = []
        for key in keys:
            s = r["scores"].get(key)
            cells.append(
                "" if s is None else f"{100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}%"
            )
        speed = r["scores"].get("20w1s", {}).get("seconds_per_episode")
        shifts = ",".join(map(str, r.get("test_time_shifts") or ())) or "none"
        lines.append(
            f"| {name.split(' + ')[0]} | {r['transductive'] or 'inductive'} | "
            f"{shifts} | "
            f"{r['meta_training_minutes']:.1f} min, {r['n_iter']} it | "
            f"{r['protocol']['episodes']}, {r['protocol']['lake_runs']} | "
            + " | ".join(cells)
            + f" | {'' if speed is None else f'{speed:.3f}'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
