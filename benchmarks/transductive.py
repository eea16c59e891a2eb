"""Transductive inference (issue 15): accuracy on Omniglot's evaluation
alphabets, balanced and class-imbalanced unlabelled sets.

A saved ProtoNet (or pretrain) ``MetaModel`` embeds Omniglot ``evaluation``
once; each episode then runs on the embeddings, with the torch-layer methods
``FewShotClassifier(transductive=...)`` runs (one episode per method is also
run through the estimator and checked equal):

- ``inductive``: the model's own deployment, nearest class mean (ProtoNet);
- each method of ``skmeta.meta.transductive.TRANSDUCTIVE`` at its paper's
  defaults, the episode's queries as the unlabelled rows, accuracy on them
  (their ``transduction_``).

Queries: ``--n-query`` per class (balanced), or, with the same total, class
proportions drawn from a Dirichlet of concentration 2 on every class, as in
Veilleux et al. (2021). An Omniglot character has only 20 drawings, so a class
takes at most ``20 - k_shot`` queries: counts above that are capped and the
excess is spread over the other classes in proportion to their draws (the
realised imbalance is reported). Mean accuracy over episodes, 95% CI, and
seconds per episode (the method alone; the embedding is shared). TIM,
alpha-TIM and PT-MAP take about a second per episode on a CPU, so they run on
the first ``--slow-episodes`` episodes only.

    python benchmarks/transductive.py --model /tmp/model.safetensors \\
        --tasks 5w1s --episodes 300 --slow-episodes 80
    python benchmarks/transductive.py --model ... --tasks 20w1s --merge ...
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from skmeta import FewShotClassifier
from skmeta.datasets import load_omniglot
from skmeta.meta.algorithms.protonet import prototype_logits, prototypes
from skmeta.meta.model import MetaModel
from skmeta.meta.transductive import TRANSDUCTIVE, make_transductive

HERE = Path(__file__).parent
RESULTS = HERE / "results"
TASKS = {"5w1s": (5, 1), "5w5s": (5, 5), "20w1s": (20, 1), "20w5s": (20, 5)}
SLOW = {"tim", "alpha-tim", "ptmap"}  # 1,000 Adam steps; 20 x Sinkhorn
DIRICHLET = 2.0


def query_counts(rng, n_way, n_query, cap, imbalanced):
    """Queries per class: `n_query` each, or Dirichlet proportions of the same
    total, capped at `cap` per class (excess given to the others)."""
    total = n_way * n_query
    if not imbalanced:
        return np.full(n_way, n_query)
    share = rng.dirichlet(np.full(n_way, DIRICHLET))
    counts = np.zeros(n_way, dtype=int)
    open_ = np.ones(n_way, dtype=bool)
    while counts.sum() < total:
        left = total - counts.sum()
        want = share * open_ / (share * open_).sum() * left
        add = np.floor(want).astype(int)
        if add.sum() == 0:  # hand the remainder out by largest share
            add[np.argmax(want)] = 1
        counts = np.minimum(counts + add, cap)
        open_ = counts < cap
    return counts


def episodes(y, n_way, k_shot, n_query, n_episodes, imbalanced, seed):
    """Index arrays (support, support labels, queries, query labels)."""
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    for _ in range(n_episodes):
        classes = rng.choice(len(by_class), n_way, replace=False)
        counts = query_counts(
            rng,
            n_way,
            n_query,
            min(len(by_class[c]) for c in classes) - k_shot,
            imbalanced,
        )
        support, query, query_y = [], [], []
        for way, (c, q) in enumerate(zip(classes, counts, strict=True)):
            rows = rng.permutation(by_class[c])
            support.append(rows[:k_shot])
            query.append(rows[k_shot : k_shot + q])
            query_y.append(np.full(q, way))
        support_y = np.repeat(np.arange(n_way), k_shot)
        yield (
            np.concatenate(support),
            support_y,
            np.concatenate(query),
            np.concatenate(query_y),
            counts,
        )


def inductive(model):
    distance = model.config["method_params"].get("distance", "euclidean")
    scale = model.network().extra.get("scale") if distance == "cosine" else None

    def run(support, support_y, queries, n_way):
        protos = prototypes(support, support_y, n_way)
        return prototype_logits(queries.double(), protos.double(), distance, scale)

    return run


def evaluate(model, emb, y, task, n_query, n_episodes, n_slow, imbalanced, seed):
    n_way, k_shot = TASKS[task]
    methods = {"inductive": inductive(model)}
    for name in TRANSDUCTIVE:
        method = make_transductive(name)

        def run(support, support_y, queries, n_way, method=method):
            return method.fit(support, support_y, queries, n_way)["unlabelled_scores"]

        methods[name] = run
    acc = {name: [] for name in methods}
    secs = {name: [] for name in methods}
    ratios = []
    stream = episodes(y, n_way, k_shot, n_query, n_episodes, imbalanced, seed)
    for i, (s, sy, q, qy, counts) in enumerate(stream):
        ratios.append(counts.max() / max(counts.min(), 1))
        support, queries = emb[s], emb[q]
        support_y = torch.from_numpy(sy)
        for name, run in methods.items():
            if name in SLOW and i >= n_slow:
                continue
            tic = time.perf_counter()
            scores = run(support, support_y, queries, n_way)
            secs[name].append(time.perf_counter() - tic)
            acc[name].append(float((scores.argmax(1).numpy() == qy).mean()))
    rows = []
    base = np.array(acc["inductive"])
    for name in methods:
        a = np.array(acc[name])
        # the gain is paired: minus inductive on the same episodes
        diff = a - base[: len(a)]
        rows.append(
            {
                "task": task,
                "queries": "imbalanced" if imbalanced else "balanced",
                "method": name,
                "episodes": len(a),
                "accuracy": float(a.mean()),
                "ci95": float(1.96 * a.std(ddof=1) / np.sqrt(len(a))),
                "gain": float(diff.mean()),
                "gain_ci95": float(1.96 * diff.std(ddof=1) / np.sqrt(len(a))),
                "s_per_episode": float(np.median(secs[name])),
                "max_min_query_ratio_median": float(np.median(ratios)),
            }
        )
        print(
            f"{task} {rows[-1]['queries']:10s} {name:13s} {100 * a.mean():6.2f} "
            f"+- {100 * rows[-1]['ci95']:.2f} gain {100 * diff.mean():+.2f} "
            f"+- {100 * rows[-1]['gain_ci95']:.2f}  n={len(a)}  "
            f"{rows[-1]['s_per_episode'] * 1e3:.1f} ms",
            flush=True,
        )
    return rows


def check_estimator(model, X, y, seed):
    """One 5-way 1-shot episode through FewShotClassifier(transductive=...):
    its transduction_ must equal the torch-layer result on the embeddings."""
    s, sy, q, _, _ = next(episodes(y, 5, 1, 15, 1, False, seed))
    rows = np.concatenate([s, q])
    labels = np.concatenate([sy, np.full(len(q), -1)])
    emb = torch.from_numpy(model.transform(X[rows]))
    for name in TRANSDUCTIVE:
        clf = FewShotClassifier(pretrained=model, transductive=name)
        clf.fit(X[rows], labels)
        state = make_transductive(name).fit(
            emb[: len(s)], torch.from_numpy(sy), emb[len(s) :], 5
        )
        direct = state["unlabelled_scores"].argmax(1).numpy()
        assert np.array_equal(clf.transduction_[len(s) :], direct), name


def markdown(result) -> str:
    lines = [
        "# Transductive inference on Omniglot evaluation",
        "",
        f"Model: `{result['model']}` ({result['method']}, {result['backbone']}). "
        f"{result['n_query']} queries per class (same total when imbalanced: "
        f"Dirichlet({DIRICHLET:g}) proportions, capped at the class's drawings). "
        "Accuracy on the unlabelled queries, mean and 95% CI over episodes; "
        "gain: minus inductive on the same episodes (points, 95% CI of the "
        "paired difference); TIM, alpha-TIM and PT-MAP ran on the first "
        "episodes only. ms/episode: the method alone (median), on a shared "
        "2-core CPU under heavy load from other jobs. A task whose classes "
        "have no drawings to spare beyond the balanced queries (5-shot: 20 - 5 "
        "= 15) has no imbalanced rows.",
        "",
        "| task | queries | method | episodes | accuracy % | gain (paired) "
        "| ms/episode | max/min queries |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        gain = (
            ""
            if r["method"] == "inductive"
            else f"{100 * r['gain']:+.2f} +- {100 * r['gain_ci95']:.2f}"
        )
        lines.append(
            f"| {r['task']} | {r['queries']} | {r['method']} | {r['episodes']} | "
            f"{100 * r['accuracy']:.2f} +- {100 * r['ci95']:.2f} | {gain} | "
            f"{1e3 * r['s_per_episode']:.1f} | {r['max_min_query_ratio_median']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a saved MetaModel file")
    ap.add_argument("--data-home", default="/work/shared/data/omniglot")
    ap.add_argument("--tasks", nargs="+", default=["5w1s", "20w1s"], choices=TASKS)
    ap.add_argument("--n-query", type=int, default=15)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument(
        "--slow-episodes",
        type=int,
        default=100,
        help="episodes for TIM, alpha-TIM and PT-MAP (the first of the same ones)",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of other tasks already in the output file",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "transductive"))
    args = ap.parse_args()

    model = MetaModel.load(args.model)
    X, y = load_omniglot("evaluation", data_home=args.data_home, return_X_y=True)
    check_estimator(model, X, y, args.seed)
    tic = time.perf_counter()
    emb = torch.from_numpy(model.transform(X))
    embed_s = time.perf_counter() - tic
    print(f"embedded {len(X)} rows in {embed_s:.1f} s", flush=True)
    rows = []
    smallest = int(np.bincount(y).min())
    for task in args.tasks:
        for imbalanced in (False, True):
            if imbalanced and smallest - TASKS[task][1] <= args.n_query:
                # every class capped at n_query: "imbalanced" would be balanced
                print(f"{task}: no room for imbalance (classes of {smallest} rows)")
                continue
            rows += evaluate(
                model,
                emb,
                y,
                task,
                args.n_query,
                args.episodes,
                args.slow_episodes,
                imbalanced,
                args.seed,
            )
    result = {
        "model": args.model,
        "method": model.method,
        "backbone": model.config.get("backbone"),
        "n_query": args.n_query,
        "seed": args.seed,
        "embed_s": embed_s,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and out.with_suffix(".json").exists():
        previous = json.loads(out.with_suffix(".json").read_text())
        kept = [r for r in previous["rows"] if r["task"] not in args.tasks]
        result["rows"] = kept + rows
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out}.json and .md")


if __name__ == "__main__":
    main()
