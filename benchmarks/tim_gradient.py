"""TIM's gradient: the closed form (``skmeta.meta.accel.tim_gradient``)
against its reference, autograd (``SKMETA_ACCEL`` off), in one TIM fit at the
paper's settings (1,000 Adam steps, float64) on random embeddings.

Tasks: 5-way 1-shot and 20-way 1-shot with 15 queries per class as the
unlabelled rows, embeddings of 64 (Conv4) and 640 (ResNet-12) features.
Median of `--repeats` fits per cell, one thread. Also reports the largest
difference between the two paths' fitted weights.

    OMP_NUM_THREADS=1 python benchmarks/tim_gradient.py
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from skmeta.meta import accel
from skmeta.meta.transductive import make_transductive

RESULTS = Path(__file__).parent / "results"


def _task(n_way, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_way, dim, generator=g, dtype=torch.float64)
    support = centres + 0.5 * torch.randn(n_way, dim, generator=g, dtype=torch.float64)
    queries = centres.repeat_interleave(15, 0)
    queries = queries + 0.5 * torch.randn(
        queries.shape, generator=g, dtype=torch.float64
    )
    return support, torch.arange(n_way), queries


def _time(method, task, repeats):
    seconds, state = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        state = method.fit(*task, len(task[1]))
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in ("tim", "alpha-tim"):
        for n_way in (5, 20):
            for dim in (64, 640):
                method, task = make_transductive(name), _task(n_way, dim)
                fast, fast_state = _time(method, task, args.repeats)
                with accel.disabled():
                    slow, slow_state = _time(method, task, args.repeats)
                diff = (fast_state["weights"] - slow_state["weights"]).abs().max()
                rows.append(
                    {
                        "method": name,
                        "task": f"{n_way}-way 1-shot, 15 queries",
                        "dim": dim,
                        "closed_form_s": round(fast, 3),
                        "autograd_s": round(slow, 3),
                        "speedup": round(slow / fast, 2),
                        "max_weight_difference": float(diff),
                    }
                )
                print(rows[-1], flush=True)
    result = {
        "benchmark": "tim_gradient",
        "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread",
        "repeats": args.repeats,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tim_gradient.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# TIM's gradient: closed form (accel) against autograd (reference)",
        "",
        f"One fit, 1,000 Adam steps, float64; median of {args.repeats}; "
        f"{result['machine']}. `python benchmarks/tim_gradient.py`.",
        "",
        "| method | task | dim | closed form (s) | autograd (s) | speed-up "
        "| max weight difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['task']} | {r['dim']} | {r['closed_form_s']} "
            f"| {r['autograd_s']} | {r['speedup']}x "
            f"| {r['max_weight_difference']:.1e} |"
        )
    (RESULTS / "tim_gradient.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
