"""Bytes per task and wall time of episodic evaluation on Dask (issue 16, part 2).

A model on the default max-pool Conv4 (28x28 grey, meta-trained for one
iteration: the weights do not change the costs), ProtoNet by default
(``--method maml`` adapts with ``--inner-steps``), evaluated on 5-way 5-shot
episodes of 15 queries on random rows of 20 classes.

``bytes``: in one run on a ``distributed.LocalCluster`` of 2 worker processes,
what joblib submits per task batch (the pickle of the batch and its arguments,
recorded by wrapping ``client.submit``; ``X`` and ``y`` travel once, scattered
by joblib), for ``cross_val_score`` as is (the model pickled into every batch)
and inside ``ship_once`` (a handle per batch, the model once per worker
through a worker plugin), with the seconds each took.

``time``: ``episodic_score`` with ``n_jobs=1`` in this process against the same
call under ``joblib.parallel_config(backend="dask")`` on a 2-worker cluster
(started beforehand, workers warmed up by one call), alternating, torch on one
thread everywhere. The cluster runs twice: as dask sets it up, and without the
``MALLOC_TRIM_THRESHOLD_=65536`` its nanny puts into the workers' environment
(which turns off glibc's adaptive mmap threshold).

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/dask_transfer.py

Results: ``benchmarks/results/dask_transfer.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import time
from datetime import date
from pathlib import Path

import dask
import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.model_selection import cross_val_score

from skmeta import EpisodicSplit, FewShotClassifier, episodic_score
from skmeta.meta.train import TrainSettings, meta_train
from skmeta.model_selection import ship_once

RESULTS = Path(__file__).resolve().parent / "results"


def make_case(n_episodes: int, method: str, inner_steps: int):
    rng = np.random.default_rng(0)
    X = rng.random((400, 784), dtype=np.float32)
    y = np.repeat(np.arange(20), 20)
    settings = TrainSettings(
        n_way=5,
        k_shot=1,
        n_query=1,
        input_shape=(1, 28, 28),
        method=method,
        backbone="conv4",
        max_iter=1,
        seed=0,
    )
    model = meta_train(X, y, settings)
    steps = {"inner_steps": inner_steps} if method != "protonet" else {}
    estimator = FewShotClassifier(pretrained=model, **steps)
    cv = EpisodicSplit(5, 5, 15, n_episodes, random_state=0)
    return model, estimator, X, y, cv


def record_submits(client, sent: list):
    """Wrap ``client.submit`` to append (bytes, tasks) of each joblib batch."""
    submit = client.submit

    def recording(batch, *args, **kwargs):
        size = len(pickle.dumps((batch, kwargs.get("tasks"))))
        sent.append((size, len(kwargs.get("tasks") or ())))
        return submit(batch, *args, **kwargs)

    client.submit = recording


def measure_bytes(client, model, estimator, X, y, cv) -> dict:
    sent: list = []
    record_submits(client, sent)
    out = {"model_pickle_bytes": len(pickle.dumps(model))}
    for label in ("naive", "ship_once"):
        sent.clear()
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            if label == "naive":
                cross_val_score(estimator, X, y, cv=cv)
                once = 0
            else:
                with ship_once(estimator) as shipment:
                    cross_val_score(estimator, X, y, cv=cv)
                once = sum(shipment.payload_bytes.values())
        seconds = time.perf_counter() - start
        total, tasks = sum(s for s, _ in sent), sum(n for _, n in sent)
        out[label] = {
            "batches": len(sent),
            "tasks": tasks,
            "bytes_per_batch_min": min(s for s, _ in sent),
            "bytes_per_batch_max": max(s for s, _ in sent),
            "bytes_per_task": total / tasks,
            "once_per_worker_bytes": once,
            "seconds": seconds,
        }
    del client.submit  # the instance attribute: back to the class's method
    return out


ONE_JOB = "n_jobs=1, this process"
# label -> whether workers get dask's MALLOC_TRIM_THRESHOLD_=65536
CLUSTERS = {
    "dask, 2 worker processes": True,
    "dask, 2 worker processes, glibc's malloc defaults": False,
}


def local_cluster(dask_malloc: bool) -> LocalCluster:
    """2 worker processes of 1 thread; `dask_malloc` False drops the
    ``MALLOC_TRIM_THRESHOLD_`` dask's nanny sets by default."""
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    overrides = {}
    if not dask_malloc:
        # The nanny also writes it into this process's environment.
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        overrides = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(overrides):
        return LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env=env,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--method", default="protonet")
    ap.add_argument("--inner-steps", type=int, default=10)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    model, estimator, X, y, cv = make_case(args.episodes, args.method, args.inner_steps)
    times: dict[str, list] = {label: [] for label in (ONE_JOB, *CLUSTERS)}
    scores, transfer = {}, None
    for _ in range(args.rounds):
        start = time.perf_counter()
        scores[ONE_JOB] = episodic_score(estimator, X, y, cv=cv, n_jobs=1).scores
        times[ONE_JOB].append(time.perf_counter() - start)
        print(ONE_JOB, times[ONE_JOB][-1], flush=True)
        for label, dask_malloc in CLUSTERS.items():
            with local_cluster(dask_malloc) as cluster, Client(cluster) as client:
                with joblib.parallel_config(backend="dask"):  # imports on workers
                    episodic_score(estimator, X, y, cv=EpisodicSplit(5, 5, 15, 2))
                if transfer is None:
                    transfer = measure_bytes(client, model, estimator, X, y, cv)
                    print(json.dumps(transfer, indent=1), flush=True)
                start = time.perf_counter()
                with joblib.parallel_config(backend="dask"):
                    scores[label] = episodic_score(estimator, X, y, cv=cv).scores
                times[label].append(time.perf_counter() - start)
                print(label, times[label][-1], flush=True)
    same = all(np.array_equal(scores[ONE_JOB], v) for v in scores.values())
    report = {
        "date": date.today().isoformat(),
        "case": (
            f"{args.method} Conv4 1x28x28, 5-way 5-shot 15 queries"
            + (f", inner_steps={args.inner_steps}" if args.method != "protonet" else "")
            + f", {args.episodes} episodes"
        ),
        "transfer": transfer,
        "seconds": times,
        "scores_identical": same,
        "load_average_1min_start_end": [load_start, os.getloadavg()[0]],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dask_transfer.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "dask_transfer.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    t = report["transfer"]
    lines = [
        "# Episodic evaluation on Dask: bytes per task, wall time (issue 16, part 2)",
        "",
        f"{report['case']}; `benchmarks/dask_transfer.py`, {report['date']}, "
        "LocalCluster of 2 worker processes (1 thread each) on the shared 2-core "
        "machine (busy: timings noisy). Model pickle: "
        f"{t['model_pickle_bytes']:,} bytes.",
        "",
        "| pickling | batches | tasks | bytes per batch | bytes per task "
        "| sent once per worker | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in ("naive", "ship_once"):
        r = t[label]
        lines.append(
            f"| {label} | {r['batches']} | {r['tasks']} | "
            f"{r['bytes_per_batch_min']:,}-{r['bytes_per_batch_max']:,} | "
            f"{r['bytes_per_task']:,.0f} | {r['once_per_worker_bytes']:,} | "
            f"{r['seconds']:.1f} |"
        )
    lines += [
        "",
        "Both runs above on the first cluster (dask's defaults). Below, wall time "
        "of `episodic_score`, a fresh cluster per round (start-up and warm-up not "
        "counted):",
        "",
        "| run | seconds per round |",
        "|---|---|",
    ]
    for label, values in report["seconds"].items():
        lines.append(f"| {label} | {', '.join(f'{v:.1f}' for v in values)} |")
    load = report["load_average_1min_start_end"]
    lines += [
        "",
        f"Scores identical across runs: {report['scores_identical']}. "
        f"Load average (1 min) at start and end: {load[0]:.1f}, {load[1]:.1f}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
