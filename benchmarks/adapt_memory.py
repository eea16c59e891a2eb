"""Adaptation to a large support set: memory, time and accuracy (issue 16, part 4).

``memory``: the issue's case. In a fresh process, ``FewShotClassifier(
pretrained=maml_model, inner_steps=10).fit`` on 2,000 Omniglot ``background``
rows of 100 classes (default max-pool Conv4, 28x28 grey), reporting the
footprint (``VmHWM`` of ``/proc/self/status`` after imports, data and model
loaded), the peak RSS rise over it and the seconds of ``fit``. Runs alternate
between this tree and ``--before`` (a source tree of the code before, e.g.
``git archive``'d), since the machine may be shared. The MAML model is
meta-trained for a few iterations (the weights do not change the cost) and
cached at ``--model``.

``accuracy``: chunked against one-pass adaptation on the same episodes:
20-way 5-shot, 15 queries per class, ``inner_steps=10``, on the Omniglot
``evaluation`` split, with a MAML model given by ``--model`` (meta-trained
5-way 1-shot on ``background``). The one-pass loop takes these 100-row support
sets whole; the chunked loop is forced to ``--chunk`` rows.

    python benchmarks/adapt_memory.py memory --before /tmp/before --rounds 2
    python benchmarks/adapt_memory.py accuracy --model maml.safetensors
    python benchmarks/adapt_memory.py memory --inner-batch-size 100 200
    python benchmarks/adapt_memory.py large --model maml.safetensors \\
        --inner-batch-size 100 200 400

``memory --inner-batch-size``: the same case with mini-batch inner steps
(``method_params={"inner_batch_size": ...}``). ``large``: whole-set against
mini-batch inner steps on 100-way 16-shot support sets, held-out accuracy
and time.

Results: ``benchmarks/results/adapt_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"

CHILD = r"""
import json, sys, time
import numpy as np

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024  # MiB

from skmeta import FewShotClassifier, MetaModel
from skmeta.datasets import load_omniglot
X, y = load_omniglot("background", data_home=sys.argv[1], return_X_y=True)
X, y = X[y < 100], y[y < 100]
model = MetaModel.load(sys.argv[2])
method_params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
footprint = hwm()
tic = time.perf_counter()
clf = FewShotClassifier(pretrained=model, inner_steps=10, method_params=method_params)
clf.fit(X, y)
seconds = time.perf_counter() - tic
import skmeta
print(json.dumps({"rows": len(X), "footprint_mib": footprint, "skmeta": skmeta.__file__,
                  "rise_mib": hwm() - footprint, "seconds": seconds,
                  "train_accuracy": float(clf.score(X, y))}))
"""

# The bare floor of the same work: the model's Conv4 as torch's own modules
# (batch norm with each chunk's statistics, channels-last), ten passes of
# forward and backward over the 2,000 rows in 41-row chunks (as skmeta's), a
# linear head: what ten inner steps cost with no statistics pass and no skmeta
# around them.
FLOOR = r"""
import json, sys, time
import torch
from skmeta.datasets import load_omniglot
from skmeta.meta.backbones import Conv4
X, y = load_omniglot("background", data_home=sys.argv[1], return_X_y=True)
X, y = torch.from_numpy(X[y < 100]).view(-1, 1, 28, 28), torch.from_numpy(y[y < 100])
net = Conv4(1).train()  # torch's own modules: nn.BatchNorm2d, max-pool, ReLU
head = torch.nn.Linear(64, 100)
params = [*net.parameters(), *head.parameters()]
tic = time.perf_counter()
for step in range(10):
    for part, target in zip(X.split(41), y.split(41)):
        loss = torch.nn.functional.cross_entropy(head(net(part)), target.long())
        torch.autograd.grad(loss, params)
print(json.dumps({"rows": len(X), "footprint_mib": None, "rise_mib": None,
                  "seconds": time.perf_counter() - tic}))
"""


def _model(path: Path, data_home: str) -> Path:
    if not path.exists():
        from skmeta import MetaFeatureExtractor
        from skmeta.datasets import load_omniglot

        X, y = load_omniglot("background", data_home=data_home, return_X_y=True)
        MetaFeatureExtractor(
            method="maml", n_way=5, k_shot=1, n_query=15, inner_steps=2,
            max_iter=20, random_state=0, input_shape=(1, 28, 28),
        ).fit(X, y).meta_model_.save(path)  # fmt: skip
    return path


def memory(args) -> dict:
    model = _model(Path(args.model), args.data_home).resolve()
    trees = {args.label: (str(HERE.parent), CHILD)}
    if args.before:
        trees[args.before_label] = (str(Path(args.before).resolve()), CHILD)
    if args.floor:
        trees["bare torch floor (10 forward+backward passes)"] = (
            str(HERE.parent),
            FLOOR,
        )
    extra = {name: [] for name in trees}
    if args.exact:
        name = "exact whole-set steps, inner_batch_size=None"
        trees[name] = (str(HERE.parent), CHILD)
        extra[name] = [json.dumps({"inner_batch_size": None})]
    for rows in args.inner_batch_size or ():
        name = f"mini-batch steps, inner_batch_size={rows}"
        trees[name] = (str(HERE.parent), CHILD)
        extra[name] = [json.dumps({"inner_batch_size": rows})]
    runs = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, (tree, child) in trees.items():
            env = {**os.environ, "PYTHONPATH": tree, "OMP_WAIT_POLICY": "PASSIVE"}
            done = subprocess.run(  # in `tree`: "-c" puts the cwd first on sys.path
                [sys.executable, "-c", child, args.data_home, str(model), *extra[name]],
                capture_output=True, text=True, env=env, check=True, cwd=tree,
            )  # fmt: skip
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], flush=True)
    return {"case": "FewShotClassifier(pretrained=maml, inner_steps=10).fit, "
            "2,000 Omniglot rows, 100 classes, Conv4 28x28", "runs": runs}  # fmt: skip


def _episodes(y, n_episodes, n_way, k_shot, n_query, seed):
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(y == c) for c in np.unique(y)]
    for _ in range(n_episodes):
        ways = rng.choice(len(by_class), n_way, replace=False)
        rows = [rng.choice(by_class[c], k_shot + n_query, replace=False) for c in ways]
        support = np.concatenate([r[:k_shot] for r in rows])
        query = np.concatenate([r[k_shot:] for r in rows])
        yield support, np.repeat(np.arange(n_way), k_shot), query, n_way, n_query


def accuracy(args) -> dict:
    import torch

    from skmeta import MetaModel
    from skmeta.datasets import load_omniglot
    from skmeta.meta.algorithms import inner_loop

    X, y = load_omniglot("evaluation", data_home=args.data_home, return_X_y=True)
    model = MetaModel.load(args.model)
    net, alg = model.network(), model.algorithm(inner_steps=10)
    own = inner_loop.adapt_chunk_rows
    scores = {"one_pass": [], "chunked": []}
    for s, s_y, q, n_way, n_query in _episodes(y, args.episodes, 20, 5, 15, 0):
        sx, sy = torch.tensor(X[s]), torch.tensor(s_y)
        qy = torch.arange(n_way).repeat_interleave(n_query)
        for name, rows in (("one_pass", None), ("chunked", args.chunk)):
            inner_loop.adapt_chunk_rows = own if rows is None else lambda net, r=rows: r
            state = alg.adapt(net, sx, sy, n_way)
            with torch.inference_mode():
                out = alg.predict(net, state, torch.tensor(X[q]))
            scores[name].append(float((out.argmax(1) == qy).float().mean()))
        if len(scores["chunked"]) % 20 == 0:
            print(len(scores["chunked"]), "episodes", flush=True)
    inner_loop.adapt_chunk_rows = own
    diff = np.subtract(scores["chunked"], scores["one_pass"])

    def ci(a):
        return 1.96 * np.std(a, ddof=1) / np.sqrt(len(a))

    out = {
        name: {"mean": float(np.mean(v)), "ci95": float(ci(v))}
        for name, v in scores.items()
    }
    out["difference"] = {"mean": float(diff.mean()), "ci95": float(ci(diff))}
    out["setting"] = (
        f"20-way 5-shot, 15 queries, inner_steps=10, {args.episodes} episodes, "
        f"chunks of {args.chunk} rows, Omniglot evaluation, model {args.model}"
    )
    print(json.dumps(out, indent=1))
    return out


def large(args) -> dict:
    """Held-out accuracy and fit time of whole-set against mini-batch inner
    steps on large support sets: `--sets` draws of `--ways` (100)
    ``evaluation`` classes, `--shots` (16) images of each as the support
    (1,600 rows), the other ``20 - shots`` as queries."""
    from skmeta import FewShotClassifier, MetaModel
    from skmeta.datasets import load_omniglot

    X, y = load_omniglot("evaluation", data_home=args.data_home, return_X_y=True)
    model = MetaModel.load(args.model)
    rng = np.random.default_rng(0)
    sizes = [None, *(args.inner_batch_size or ())]
    runs = {str(size): [] for size in sizes}
    for _ in range(args.sets):
        support, query = [], []
        for c in rng.choice(np.unique(y), args.ways, replace=False):
            rows = rng.permutation(np.flatnonzero(y == c))
            support.append(rows[: args.shots])
            query.append(rows[args.shots :])
        s, q = np.concatenate(support), np.concatenate(query)
        for size in sizes:
            params = {"inner_batch_size": size}  # None: whole-set steps
            tic = time.perf_counter()
            clf = FewShotClassifier(
                pretrained=model, inner_steps=10, method_params=params
            ).fit(X[s], y[s])
            seconds = time.perf_counter() - tic
            runs[str(size)].append(
                {"accuracy": float(clf.score(X[q], y[q])), "seconds": seconds}
            )
            print(size, runs[str(size)][-1], flush=True)
    return {
        "setting": f"{args.ways}-way {args.shots}-shot "
        f"({args.ways * args.shots:,} rows), {20 - args.shots} queries per class, "
        f"inner_steps=10, {args.sets} draws of classes from Omniglot evaluation, "
        f"model {args.model}",
        "runs": runs,
    }


def _table(report: dict) -> str:
    lines = ["# Adaptation to a large support set (issue 16, part 4)", ""]
    mem = report.get("memory")
    if mem:
        lines += [
            f"{mem['case']}; `benchmarks/adapt_memory.py memory`, {report['date']}, "
            "alternating runs on a shared 2-core machine (busy: timings noisy).",
            "",
            "| code | footprint MiB | peak RSS rise MiB | fit seconds |",
            "|---|---|---|---|",
        ]
        for name, runs in mem["runs"].items():
            for run in runs:
                mib = [
                    "-" if run[key] is None else f"{run[key]:.0f}"
                    for key in ("footprint_mib", "rise_mib")
                ]
                lines.append(f"| {name} | {' | '.join(mib)} | {run['seconds']:.1f} |")
    acc = report.get("accuracy")
    if acc:
        lines += [
            "",
            f"Held-out accuracy, {acc['setting']} (same episodes for both):",
            "",
            "| adaptation | accuracy | 95% CI |",
            "|---|---|---|",
        ]
        for name in ("one_pass", "chunked", "difference"):
            lines.append(
                f"| {name} | {acc[name]['mean']:.4f} | ±{acc[name]['ci95']:.4f} |"
            )
    for key in sorted(k for k in report if k.startswith("large")):
        big = report[key]
        lines += [
            "",
            f"Whole-set against mini-batch inner steps, {big['setting']} "
            "(`benchmarks/adapt_memory.py large`; same draws for every row):",
            "",
            "| inner_batch_size | accuracy (mean of draws) | difference from "
            "the whole set (± 95% CI over draws) | fit seconds (mean) |",
            "|---|---|---|---|",
        ]
        whole = np.array([r["accuracy"] for r in big["runs"]["None"]])
        for size, runs in big["runs"].items():
            acc = np.array([r["accuracy"] for r in runs])
            sec = np.mean([r["seconds"] for r in runs])
            diff = acc - whole
            ci = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else 0
            gap = "-" if size == "None" else f"{diff.mean():+.4f} ± {ci:.4f}"
            name = "None (whole set)" if size == "None" else size
            lines.append(f"| {name} | {acc.mean():.4f} | {gap} | {sec:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("memory", "accuracy", "large", "table"))
    parser.add_argument("--data-home", default=str(DATA))
    parser.add_argument("--model", default="/tmp/skmeta_adapt_memory_maml.safetensors")
    parser.add_argument("--before", help="source tree of the code to compare with")
    parser.add_argument("--label", default="chunked", help="name of this tree's runs")
    parser.add_argument("--before-label", default="before")
    parser.add_argument(
        "--floor", action="store_true", help="also time the bare torch floor"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--append", action="store_true", help="add to the stored memory runs"
    )
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=25)
    parser.add_argument(
        "--inner-batch-size",
        type=lambda v: v if v == "auto" else int(v),
        nargs="*",
        help='memory, large: also run with these inner_batch_size values (or "auto")',
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="memory: also run with whole-set steps (inner_batch_size=None)",
    )
    parser.add_argument("--ways", type=int, default=100, help="large: classes")
    parser.add_argument("--shots", type=int, default=16, help="large: support shots")
    parser.add_argument("--sets", type=int, default=3, help="large: class draws")
    args = parser.parse_args()
    path = RESULTS / "adapt_memory.json"
    result = None
    if args.what != "table":
        result = {"memory": memory, "accuracy": accuracy, "large": large}[args.what](
            args
        )
    report = json.loads(path.read_text()) if path.exists() else {}  # read late
    if args.what == "memory" and "memory" in report and args.append:
        for name, runs in result["runs"].items():  # rounds of another run
            result["runs"][name] = report["memory"]["runs"].get(name, []) + runs
    if result is not None:
        key = args.what
        if args.what == "large" and (args.ways, args.shots) != (100, 16):
            key = f"large_{args.ways}x{args.shots}"  # beside the 1,600-row case
        report[key] = result
    report["date"] = time.strftime("%Y-%m-%d")
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    (RESULTS / "adapt_memory.md").write_text(_table(report))
    print(_table(report))


if __name__ == "__main__":
    main()
