"""Distributed meta-training throughput: 1 process against 2 under torchrun.

MAML (second order, 1 inner step) on synthetic Omniglot-sized data (1x28x28
float32, 100 classes of 20 rows), strided Conv4, 5-way 1-shot 5-query,
meta-batches of 8 tasks. Three cases, in one run so they see the same machine
(and the first again at the end, to show how much the machine drifted):

- 1 process, 1 thread (``n_jobs=1``, ``torch.set_num_threads(1)``);
- 1 process, 2 worker threads (``n_jobs=2``: the existing speed path);
- 2 processes x 1 thread under ``torchrun --standalone --nproc-per-node 2``
  (gloo), each taking 4 of the 8 tasks, meta-gradients all-reduced.

The first case runs for about ``--seconds`` and sets the number of iterations
the others run. Throughput is meta-training tasks per second of the training
loop (``config["training"]["elapsed"]``: data loading, meta-gradients,
all-reduce, updates; not process start or setup).

Run::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/distributed_training.py

Writes ``benchmarks/results/distributed_training.json`` and ``.md``.
(Not named ``distributed.py``: a script's folder comes first on ``sys.path``,
and that name would hide Dask's ``distributed`` from ``dask_transfer.py``.)
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
ROOT = HERE.parent
RESULTS = HERE / "results"
META_BATCH = 8


def _data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(100), 20)
    X = rng.random((y.size, 28 * 28), dtype=np.float32)
    X += (y[:, None] % 7) / 7.0  # some class structure
    return X, y


def _settings(max_iter: int, n_jobs: int):
    from skmeta.meta.train import TrainSettings

    return TrainSettings(
        n_way=5,
        k_shot=1,
        n_query=5,
        input_shape=(1, 28, 28),
        method="maml",
        backbone="conv4_strided",
        meta_batch_size=META_BATCH,
        max_iter=max_iter,
        learning_rate=1e-3,
        n_jobs=n_jobs,
        seed=0,
    )


def _train(max_iter: int, n_jobs: int, stop_after: float | None = None) -> dict:
    import torch

    from skmeta.meta.callbacks import Callback
    from skmeta.meta.train import meta_train

    class StopAfter(Callback):  # single process only: the stop is not shared
        def on_train_begin(self, loop):
            self.start = time.perf_counter()

        def on_step_end(self, loop, loss, metrics):
            if time.perf_counter() - self.start > stop_after:
                loop.stop = True

    torch.set_num_threads(1)
    X, y = _data()
    callbacks = [] if stop_after is None else [StopAfter()]
    cpu = time.process_time()
    model = meta_train(X, y, _settings(max_iter, n_jobs), callbacks=callbacks)
    training = model.config["training"]
    return {
        "iterations": training["n_iter"],
        "tasks": training["n_iter"] * META_BATCH,
        "elapsed_s": training["elapsed"],
        "tasks_per_s": training["n_iter"] * META_BATCH / training["elapsed"],
        "process_cpu_s": time.process_time() - cpu,
        # CPU time of this process per task it computed (its share)
        "cpu_ms_per_task": 1e3
        * (time.process_time() - cpu)
        / (training["n_iter"] * META_BATCH / training["world_size"]),
        "world_size": training["world_size"],
    }


def _worker(max_iter: int, out: str) -> None:
    """One rank of the torchrun case; rank 0 writes the result."""
    import torch.distributed as dist

    result = _train(max_iter, n_jobs=1)
    if dist.get_rank() == 0:
        Path(out).write_text(json.dumps(result))


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument(
        "--worker", nargs=2, metavar=("MAX_ITER", "OUT"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.worker:
        _worker(int(args.worker[0]), args.worker[1])
        return
    rows = []
    load = [_load()]
    one = _train(10**6, n_jobs=1, stop_after=args.seconds)
    rows.append({"case": "1 process x 1 thread", **one})
    load.append(_load())
    max_iter = one["iterations"]
    rows.append({"case": "1 process x 2 threads (n_jobs=2)", **_train(max_iter, 2)})
    load.append(_load())
    out = RESULTS / "distributed_training_rank0.tmp.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(Path(__file__).resolve()),
        "--worker",
        str(max_iter),
        str(out),
    ]
    subprocess.run(command, env=env, check=True)
    two = json.loads(out.read_text())
    out.unlink()
    rows.append({"case": "2 processes x 1 thread (torchrun, gloo)", **two})
    load.append(_load())
    again = _train(max_iter, n_jobs=1)  # the machine's drift over the run
    rows.append({"case": "1 process x 1 thread, again (drift check)", **again})
    load.append(_load())
    base = rows[0]["tasks_per_s"]
    for row in rows:
        row["speedup"] = row["tasks_per_s"] / base
    result = {
        "benchmark": "distributed_training",
        "setup": "MAML (2nd order, 1 inner step), conv4_strided, synthetic 1x28x28, "
        "5-way 1-shot 5-query, meta_batch_size=8",
        "machine": f"{os.cpu_count()} CPUs, shared with other jobs",
        "load_average_1min": load,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "distributed_training.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )
    lines = [
        "# Distributed meta-training throughput",
        "",
        f"{result['setup']}; {result['machine']} (1-minute load average before "
        f"and after each case: {', '.join(load)}): absolute numbers move with the "
        "other jobs, the cases ran back to back in one run.",
        "",
        "| case | iterations | tasks/s | speed-up | loop s | process CPU s "
        "| CPU ms per task |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['iterations']} | {row['tasks_per_s']:.1f} | "
            f"{row['speedup']:.2f}x | {row['elapsed_s']:.1f} | "
            f"{row['process_cpu_s']:.1f} | {row['cpu_ms_per_task']:.0f} |"
        )
    lines += [
        "",
        "Process CPU s: the measuring process's CPU time (rank 0's for torchrun); "
        "CPU ms per task: that over the tasks that process computed (its share). "
        "On a machine this loaded, tasks/s follows the CPU time the scheduler "
        "grants each process more than the method: compare CPU ms per task too.",
        "Command: `OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python "
        "benchmarks/distributed_training.py`",
    ]
    (RESULTS / "distributed_training.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
