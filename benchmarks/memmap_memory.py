"""Memory of meta-training on a memory-mapped uint8 data set (issue 13).

Writes a 2 GB ``uint8`` ``.npy`` of ``(N, 3*84*84)`` rows (N = 94,500 colour
images of 1,890 classes, 50 each; random class patterns plus noise), then, in a
fresh process, fits ``MetaFeatureExtractor`` on ``np.load(path, mmap_mode="r")``
with rotation class augmentation and early stopping, and reports:

- the footprint: peak RSS of the process after imports, the estimator built
  and the data set opened (``VmHWM`` of ``/proc/self/status``);
- the peak RSS of the whole run (``VmHWM`` at the end), and its rise over the
  footprint (target: under 1.5 GB);
- the peak of anonymous memory (``RssAnon``: what the process allocated) and
  of file-backed pages (``RssFile``: pages of the memory map the run touched,
  which the kernel can drop at any time), sampled every 20 ms.

    python benchmarks/memmap_memory.py      # writes results/memmap_memory.{json,md}
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
SIDE = 84
WIDTH = 3 * SIDE * SIDE
PER_CLASS = 50


def write_data(path: Path, gigabytes: float) -> tuple[int, int]:
    n_classes = int(gigabytes * 1e9 / WIDTH / PER_CLASS)
    n = n_classes * PER_CLASS
    if path.exists() and np.load(path, mmap_mode="r").shape == (n, WIDTH):
        return n, n_classes
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, WIDTH))
    for c in range(n_classes):
        pattern = rng.integers(0, 256, WIDTH, dtype=np.uint8)
        noise = rng.integers(0, 40, (PER_CLASS, WIDTH), dtype=np.uint8)
        out[c * PER_CLASS : (c + 1) * PER_CLASS] = pattern + noise
    out.flush()
    del out
    return n, n_classes


CHILD = r"""
import json, sys, threading, time
import numpy as np

def status():
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) / 1024  # MiB
    return fields

from skmeta import MetaFeatureExtractor
path, iters, method, backbone = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
X = np.load(path, mmap_mode="r")
y = np.repeat(np.arange(X.shape[0] // 50), 50)
extractor = MetaFeatureExtractor(
    method=method, backbone=backbone, input_shape=(3, 84, 84), n_way=5, k_shot=5,
    n_query=15, class_augmentation="rot90", early_stopping=True,
    max_iter=iters, random_state=0,
)
footprint = status()
peaks = {"RssAnon": 0.0, "RssFile": 0.0}
done = threading.Event()

def sample():
    while not done.is_set():
        now = status()
        for key in peaks:
            peaks[key] = max(peaks[key], now[key])
        time.sleep(0.02)

thread = threading.Thread(target=sample, daemon=True)
thread.start()
tic = time.perf_counter()
extractor.fit(X, y)
seconds = time.perf_counter() - tic
done.set()
thread.join()
end = status()
print(json.dumps({
    "footprint_peak_rss_mib": footprint["VmHWM"],
    "peak_rss_mib": end["VmHWM"],
    "rise_mib": end["VmHWM"] - footprint["VmHWM"],
    "peak_anon_mib": peaks["RssAnon"],
    "peak_file_backed_mib": peaks["RssFile"],
    "fit_seconds": seconds,
    "iterations": extractor.n_iter_,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--path", default="/tmp/skmeta_memmap_2gb.npy")
    parser.add_argument("--method", default="protonet")
    parser.add_argument("--backbone", default="conv4")
    args = parser.parse_args()
    path = Path(args.path)
    tic = time.perf_counter()
    n, n_classes = write_data(path, args.gigabytes)
    print(
        f"data: {path} ({n} rows, {path.stat().st_size / 1e9:.2f} GB), "
        f"{time.perf_counter() - tic:.0f} s",
        flush=True,
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(path),
            str(args.iters),
            args.method,
            args.backbone,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    report = {
        "data": {
            "rows": n,
            "classes": n_classes,
            "width": WIDTH,
            "bytes": path.stat().st_size,
            "dtype": "uint8",
        },
        "setting": f"{args.method}, {args.backbone}, 5-way 5-shot 15-query, rot90, "
        "early stopping",
        "date": time.strftime("%Y-%m-%d"),
        **result,
        "target_rise_mib": 1536,
        "met": result["rise_mib"] < 1536,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memmap_memory.json").write_text(json.dumps(report, indent=1))
    lines = [
        "# Meta-training on a memory-mapped uint8 data set",
        "",
        f"{report['data']['bytes'] / 1e9:.2f} GB `uint8` memory map, {n} rows of "
        f"3x84x84, {n_classes} classes; {report['setting']}; "
        f"{result['iterations']} iterations in {result['fit_seconds']:.0f} s; "
        f"`benchmarks/memmap_memory.py`, {report['date']}.",
        "",
        "| footprint (peak RSS before fit) | peak RSS | rise | peak anonymous | "
        "peak file-backed | target rise |",
        "|---|---|---|---|---|---|",
        f"| {result['footprint_peak_rss_mib']:.0f} MiB | "
        f"{result['peak_rss_mib']:.0f} MiB | **{result['rise_mib']:.0f} MiB** | "
        f"{result['peak_anon_mib']:.0f} MiB | {result['peak_file_backed_mib']:.0f} "
        f"MiB | < 1536 MiB: {'met' if report['met'] else 'NOT met'} |",
    ]
    (RESULTS / "memmap_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
