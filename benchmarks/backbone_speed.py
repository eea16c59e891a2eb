"""Meta-training speed and peak memory of Conv4 against ResNet-12 (issue 13).

ProtoNet meta-training on 84x84 RGB images (random 0-255 values, float32
rows), 5-way 5-shot 15-query episodes, one episode per meta-update. Each
backbone runs in a fresh process (its peak RSS is its own): one warm-up
episode, then the median time of the timed ones, as episodes/s.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/backbone_speed.py
    # writes results/backbone_speed.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
CASES = {"conv4": 10, "resnet12": 3}  # backbone: timed episodes
SHAPE = (3, 84, 84)


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_case(backbone: str, episodes: int) -> dict:
    """Meta-train `episodes` + 1 ProtoNet steps with `backbone`, in this
    process; returns the timings."""
    import numpy as np
    import torch

    from skmeta.meta.callbacks import Callback
    from skmeta.meta.train import TrainSettings, meta_train

    class StepTimes(Callback):
        def on_train_begin(self, loop):
            self.times = [time.perf_counter()]

        def on_step_end(self, loop, loss, metrics):
            self.times.append(time.perf_counter())

    rng = np.random.default_rng(0)
    n_classes, per_class = 20, 20
    X = rng.integers(0, 256, (n_classes * per_class, int(np.prod(SHAPE))))
    X = X.astype(np.float32)
    y = np.repeat(np.arange(n_classes), per_class)
    settings = TrainSettings(
        n_way=5,
        k_shot=5,
        n_query=15,
        input_shape=SHAPE,
        backbone=backbone,
        max_iter=episodes + 1,
        seed=0,
    )
    timer = StepTimes()
    model = meta_train(X, y, settings, callbacks=[timer])
    steps = np.diff(timer.times)[1:]  # the first is the warm-up
    return {
        "backbone": backbone,
        "embedding_dim": model.embedding_dim,
        "parameters": sum(p.numel() for p in model.network().parameters()),
        "timed_episodes": int(steps.size),
        "seconds_per_episode_median": float(statistics.median(steps)),
        "seconds_per_episode_min": float(steps.min()),
        "seconds_per_episode_max": float(steps.max()),
        "episodes_per_s": float(1 / statistics.median(steps)),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "torch_threads": torch.get_num_threads(),
    }


def _markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Meta-training speed: Conv4 vs ResNet-12",
        "",
        f"ProtoNet, {meta['task']}, RGB {meta['shape']}, one episode per step, "
        f"CPU ({meta['machine']}), torch {meta['torch']}, "
        f"{rows[0]['torch_threads']} threads. {meta['note']}",
        "",
        "| backbone | dim | parameters | episodes/s | s/episode (median, min-max) "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backbone']} | {r['embedding_dim']} | {r['parameters']:,} | "
            f"{r['episodes_per_s']:.3f} | {r['seconds_per_episode_median']:.2f} "
            f"({r['seconds_per_episode_min']:.2f}-{r['seconds_per_episode_max']:.2f})"
            f" | {r['peak_rss_mib']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--episodes", type=int, default=None, help="timed episodes")
    ap.add_argument("--note", default="", help="a remark for the result file")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.episodes)))
        return
    import torch

    rows = []
    for backbone, episodes in CASES.items():
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                backbone,
                "--episodes",
                str(args.episodes or episodes),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    meta = {
        "task": "5-way 5-shot 15-query",
        "shape": "x".join(map(str, SHAPE)),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "note": args.note,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backbone_speed.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n"
    )
    (RESULTS / "backbone_speed.md").write_text(_markdown(rows, meta))


if __name__ == "__main__":
    main()
