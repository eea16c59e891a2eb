"""Lake et al. (2015) within-alphabet one-shot runs (issue 15, part 8).

Target: 20 characters of one Omniglot ``evaluation`` alphabet, the support
drawn by one drawer, one query per character by another drawer
(``omniglot_methods.within_alphabet_runs``), at least 95.5% accuracy (the
human level that paper reports), after at most 20 minutes of meta-training on
this 2-core machine: a budget defined as **2,400 seconds of process CPU time**
(``time.process_time()``, 2 threads x 20 minutes), robust to the other jobs
sharing the machine.

How a run fits the budget: two short probe fits (``--probe-iter`` and five
times as many iterations, their CPU time reported apart) give the fixed CPU
cost of a fit and its cost per iteration (``probe_budget``), and ``max_iter``
is set so that the real fit stays within ``--cpu-budget``; the real fit's CPU
time is measured and reported. (Runs before ``lr4-28-full`` probed once and
charged the fixed cost to every iteration: ``lr4-28-full`` used 1,675 of its
2,400 CPU s.)

Two stages, settings chosen only on background:

- ``select``: meta-train on 25 of the 30 ``background`` alphabets, evaluate
  Lake-style runs (and random 20-way / 5-way 1-shot episodes) on 5 held-out
  background alphabets (every one with >= 20 characters; the drawer of each
  image is in the data file);
- ``final``: meta-train on all of ``background``, report on ``evaluation``.

    python benchmarks/lake_runs.py select --name wg50-28 --within 0.5 \\
        --image-size 28 --cpu-budget 900
    python benchmarks/lake_runs.py final --name wg50-28 --within 0.5 \\
        --image-size 28 --cpu-budget 2400
    python benchmarks/lake_runs.py rescore --name base-28 --feature-norm cl2n

Each run adds one row to ``results/lake_runs.json`` (by stage and name) and
rewrites ``results/lake_runs.md``. Models go to ``/tmp/models/lake_<name>.*``
(not in git).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import signal
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from omniglot_methods import random_episodes, score, within_alphabet_runs

from skmeta import MetaFeatureExtractor
from skmeta.datasets import load_omniglot

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
MODELS = Path("/tmp/models")
N_HELD_OUT = 5


def held_out_alphabets(groups, y, seed: int) -> np.ndarray:
    """`N_HELD_OUT` background alphabets with >= 20 characters, seeded."""
    big = [a for a in np.unique(groups) if np.unique(y[groups == a]).size >= 20]
    return np.sort(np.random.default_rng(seed).choice(big, N_HELD_OUT, replace=False))


def method_params(args) -> dict | None:
    """The method's settings other than its defaults: lake_augment.py's
    ``--distance`` and ``--margin`` (ProtoNet's; lake_augment.py refuses
    them with another method) or ``--balance`` (FEAT's)."""
    params = {}
    if getattr(args, "method", "protonet") == "feat":
        return None if args.balance is None else {"balance": args.balance}
    if getattr(args, "distance", "euclidean") != "euclidean":
        params["distance"] = args.distance
    if getattr(args, "margin", 0.0):
        params["margin"] = args.margin
    return params or None


def extractor(args, max_iter: int) -> MetaFeatureExtractor:
    """The recipe of ``benchmarks/omniglot.py`` (strided Conv4, rot90, 20-way
    1-shot episodes) with this run's resolution, width and episode groups,
    and lake_augment.py's method, downsampling, distance, margin and
    augmentations."""
    size = args.image_size
    params = {} if args.width is None else {"hidden_channels": args.width}
    downsample = getattr(args, "downsample", None)  # lake_augment.py's per block
    if downsample is not None:
        params["downsample"] = list(downsample)
    return MetaFeatureExtractor(
        method=getattr(args, "method", "protonet"),
        input_shape=(1, size, size),
        backbone="conv4" if downsample is not None else "conv4_strided",
        backbone_params=params or None,
        n_way=args.n_way,
        k_shot=1,
        n_query=args.n_query,
        method_params=method_params(args),
        class_augmentation=getattr(args, "class_augmentation", "rot90"),
        within_group_episodes=args.within,
        max_iter=max_iter,
        learning_rate=args.lr,
        augmentation=getattr(args, "augmentation", None),  # lake_augment.py
        random_state=args.seed,
    )


def train(args, X, y, groups):
    """Probe the CPU cost per iteration, then meta-train within the budget.

    With ``--segment-minutes``, meta-training runs in segments of at most
    that many minutes of wall time (this machine is shared, and one job may
    not run longer): each segment resumes from the checkpoint of the last
    (``checkpoint=``, the same weights as an uninterrupted run), is ended by
    an alarm (``KeyboardInterrupt``, at most ``checkpoint_every`` iterations
    lost and redone), and adds its CPU time to a ledger beside the
    checkpoint. Returns (None, None) until the last segment has finished.
    """
    fit_groups = groups if args.within > 0 else None
    MODELS.mkdir(parents=True, exist_ok=True)  # before the run, not after it
    ledger_path = MODELS / f"lake_{args.stage}_{args.name}.ledger.json"
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {}
    if "iterations" not in ledger:
        ledger = {"segments": [], **probe_budget(args, X, y, fit_groups)}
    max_iter = ledger["iterations"]
    print(
        f"probe: {ledger['probe_cpu_seconds']:.1f} CPU s -> {max_iter} it", flush=True
    )
    model = extractor(args, max_iter)
    if args.segment_minutes:
        model.set_params(
            checkpoint=str(ledger_path).replace(".ledger.json", ".ckpt"),
            checkpoint_every=100,
        )
        signal.signal(signal.SIGALRM, _interrupt)
        signal.alarm(int(60 * args.segment_minutes))
    tic, wall = time.process_time(), time.perf_counter()
    model.fit(X, y, groups=fit_groups)
    signal.alarm(0)
    cpu, wall = time.process_time() - tic, time.perf_counter() - wall
    done = not model.meta_model_.config["training"]["interrupted"]
    ledger["segments"].append({"cpu_seconds": cpu, "wall_seconds": wall, "done": done})
    ledger_path.write_text(json.dumps(ledger, indent=1))
    print(f"segment: {cpu:.0f} CPU s, {wall:.0f} s wall, finished: {done}", flush=True)
    if not done:
        return None, None
    return model, ledger_training(ledger, torch.get_num_threads())


def ledger_training(ledger: dict, threads: int) -> dict:
    """A finished run's training record from its ledger: CPU and wall time
    summed over its segments, its iterations and probes, and `threads`."""
    return {
        "cpu_seconds": sum(s["cpu_seconds"] for s in ledger["segments"]),
        "wall_seconds": sum(s["wall_seconds"] for s in ledger["segments"]),
        "segments": len(ledger["segments"]),
        "iterations": ledger["iterations"],
        "probe_cpu_seconds": ledger["probe_cpu_seconds"],
        "probe_iterations": ledger["probe_iterations"],
        "threads": threads,
    }


@contextlib.contextmanager
def report_lock(name: str):
    """Hold an exclusive file lock named `name` (one per report) while a
    report is read, updated and written: runs started side by side end at
    about the same time."""
    with open(Path(tempfile.gettempdir()) / f"skmeta_{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def probe_budget(args, X, y, fit_groups) -> dict:
    """``max_iter`` for the CPU budget, from two short probe fits.

    A fit has a fixed cost (building the model, indexing the classes, the
    first passes) beside its cost per iteration; one probe of
    ``--probe-iter`` iterations charged the fixed cost to every iteration and
    left about 30% of the budget unused (63,986 iterations in 1,675 of 2,400
    CPU s). Fits of ``probe_iter`` and ``5 * probe_iter`` iterations give both
    costs; 3% of the budget is kept as a margin. ``--max-iter`` skips the
    probes.
    """
    if args.max_iter:
        return {
            "iterations": args.max_iter,
            "probe_cpu_seconds": 0.0,
            "probe_iterations": 0,
        }
    short, long = args.probe_iter, 5 * args.probe_iter
    cost = {}
    for n in (short, long):
        tic = time.process_time()
        extractor(args, n).fit(X, y, groups=fit_groups)
        cost[n] = time.process_time() - tic
    per_iteration = max(cost[long] - cost[short], 1e-9) / (long - short)
    fixed = max(cost[short] - short * per_iteration, 0.0)
    return {
        "iterations": int(0.97 * (args.cpu_budget - fixed) / per_iteration),
        "probe_cpu_seconds": cost[short] + cost[long],
        "probe_iterations": short + long,
        "cpu_seconds_per_iteration": per_iteration,
        "fixed_cpu_seconds": fixed,
    }


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # ends fit with the model so far; resumed next time


def evaluate(model, X, y, groups, drawer, args) -> dict:
    """Lake runs (inductive and transductive) and random episodes."""
    torch.set_num_threads(1)
    episodes = {
        "lake": within_alphabet_runs(y, groups, drawer, args.runs, args.seed),
        "20w1s": random_episodes(y, 20, 1, args.episodes, args.seed),
        "5w1s": random_episodes(y, 5, 1, args.episodes, args.seed),
    }
    out = {}
    deployments = [None, *filter(None, args.transductive.split(","))]
    for transductive in deployments:
        for key, eps in episodes.items():
            if transductive is not None:
                limit = args.transductive_runs if key == "lake" else 0
                eps = eps[: limit or args.transductive_episodes]
                if not eps:
                    continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                s = score(model, transductive, X, y, eps)
            name = f"{key} {transductive or 'inductive'}"
            out[name] = s
            print(
                f"  {name}: {100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}% "
                f"({s['n_episodes']})",
                flush=True,
            )
    return out


def rescore(args, X, y, groups, drawer) -> None:
    """Lake runs on the held-out background alphabets of a saved selection
    model, deployed inductively with and without ``feature_norm``."""
    from skmeta import FewShotClassifier, MetaModel

    test = np.isin(groups, held_out_alphabets(groups, y, args.seed))
    X, y, groups, drawer = X[test], y[test], groups[test], drawer[test]
    runs = within_alphabet_runs(y, groups, drawer, args.runs, args.seed)
    model = MetaModel.load(MODELS / f"lake_select_{args.name}.safetensors")
    rows = {}
    for norm in (None, args.feature_norm):
        params = None if norm is None else {"feature_norm": norm}
        hits = [
            np.mean(
                FewShotClassifier(pretrained=model, method_params=params)
                .fit(X[s], y[s])
                .predict(X[q])
                == y[q]
            )
            for s, q in runs
        ]
        ci = 1.96 * np.std(hits, ddof=1) / np.sqrt(len(hits))
        rows[str(norm)] = {"mean": float(np.mean(hits)), "ci95": float(ci)}
        print(f"feature_norm={norm}: {100 * np.mean(hits):.1f} ± {100 * ci:.1f}%")
    out = RESULTS / "lake_runs.json"
    report = json.loads(out.read_text())
    report.setdefault("rescore", {})[args.name] = {"runs": len(runs), **rows}
    out.write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_runs.md").write_text(table(report))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["select", "final", "rescore"])
    ap.add_argument("--name", required=True)
    ap.add_argument("--within", type=float, default=0.0)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--n-way", type=int, default=20)
    ap.add_argument("--n-query", type=int, default=5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--cpu-budget", type=float, default=2400.0)
    ap.add_argument("--max-iter", type=int, default=None)
    ap.add_argument("--probe-iter", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--segment-minutes", type=float, default=None)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--transductive", default="tim,bdcspn")
    ap.add_argument("--transductive-runs", type=int, default=40)
    ap.add_argument("--transductive-episodes", type=int, default=0)
    ap.add_argument("--data-home", default=str(DATA))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--feature-norm",
        default="cl2n",
        help="rescore: the deployment's feature_norm (l2, cl2n)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    size = args.image_size
    background = load_omniglot("background", data_home=args.data_home, image_size=size)
    raw = np.load(Path(args.data_home) / "background.npz")
    if not np.array_equal(raw["labels"], background.target):
        raise SystemExit("the data file's rows are not in load_omniglot's order")
    X, y, groups, drawer = (
        background.data,
        background.target,
        background.groups,
        raw["drawer"],
    )
    record = {"stage": args.stage, "settings": vars(args)}
    if args.stage == "rescore":
        return rescore(args, X, y, groups, drawer)
    if args.stage == "select":
        held = held_out_alphabets(groups, y, args.seed)
        test = np.isin(groups, held)
        record["held_out_alphabets"] = [str(raw["alphabet_names"][a]) for a in held]
        model, record["training"] = train(args, X[~test], y[~test], groups[~test])
        if model is None:
            return  # resumed by the next segment
        X_t, y_t, g_t, d_t = X[test], y[test], groups[test], drawer[test]
    else:
        model, record["training"] = train(args, X, y, groups)
        if model is None:
            return  # resumed by the next segment
        evaluation = load_omniglot(
            "evaluation", data_home=args.data_home, image_size=size
        )
        raw = np.load(Path(args.data_home) / "evaluation.npz")
        if not np.array_equal(raw["labels"], evaluation.target):
            raise SystemExit("the data file's rows are not in load_omniglot's order")
        X_t, y_t = evaluation.data, evaluation.target
        g_t, d_t = evaluation.groups, raw["drawer"]
    MODELS.mkdir(exist_ok=True)
    path = MODELS / f"lake_{args.stage}_{args.name}.safetensors"
    model.meta_model_.save(path)
    record["model"] = str(path)
    record["scores"] = evaluate(model.meta_model_, X_t, y_t, g_t, d_t, args)
    out = RESULTS / "lake_runs.json"
    report = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    report["runs"][f"{args.stage}/{args.name}"] = record
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_runs.md").write_text(table(report))
    print(table(report))


def table(report: dict) -> str:
    keys = [
        "lake inductive",
        "lake bdcspn",
        "lake tim",
        "lake ptmap",
        "20w1s inductive",
    ]
    keys.append("5w1s inductive")
    lines = [
        "Lake et al. (2015) within-alphabet one-shot runs (20 characters of one "
        "alphabet, support by one drawer, one query each by another): "
        "`benchmarks/lake_runs.py`. *select*: meta-trained on 25 background "
        "alphabets, scored on 5 held-out ones; *final*: meta-trained on all of "
        "background, scored on evaluation. CPU s: process CPU time of "
        "meta-training (budget 2,400), the probe fit that sized "
        "`max_iter` apart. Accuracy in %, ± 95% CI (runs or episodes).",
        "",
        "| stage | name | within | px | width | lr | threads | CPU s (probe) | it | "
        + " | ".join(keys)
        + " |",
        "|" + "---|" * (len(keys) + 9),
    ]
    for r in report["runs"].values():
        s, t = r["settings"], r["training"]
        cells = []
        for key in keys:
            v = r["scores"].get(key)
            if v is None:
                cells.append("")
                continue
            mean, ci = 100 * v["mean"], 100 * v["ci95"]
            cells.append(f"{mean:.1f} ± {ci:.1f} ({v['n_episodes']})")
        lines.append(
            f"| {r['stage']} | {s['name']} | {s['within']} | {s['image_size']} | "
            f"{s['width'] or 64} | {s['lr']:g} | {t['threads']} | "
            f"{t['cpu_seconds']:.0f} "
            f"({t['probe_cpu_seconds']:.0f}) | {t['iterations']} | "
            + " | ".join(cells)
            + " |"
        )
    for name, r in report.get("rescore", {}).items():
        cells = [
            f"feature_norm={norm}: {100 * v['mean']:.1f} ± {100 * v['ci95']:.1f}"
            for norm, v in r.items()
            if norm != "runs"
        ]
        lines += [
            "",
            f"Rescored (`rescore`), select model {name}, Lake runs on the "
            f"held-out alphabets, inductive ({r['runs']} runs): " + "; ".join(cells),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
