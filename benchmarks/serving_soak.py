"""Serving soak (issue 16, part 7): many ``fit``/``predict`` calls from threads
sharing one ``MetaModel``.

Two tiny models are meta-trained once: ProtoNet on a small Conv4 (16x16 grey
"images") and second-order MAML (``inner_steps=2``) on an MLP. Job ``i`` is a
few-shot episode drawn from a seed of its own (model ``i % 2``, 2-5 ways, 1-3
shots, novel classes): ``FewShotClassifier(pretrained=model).fit(support)``
then ``predict_proba(queries)``, two calls. The jobs run once in one thread
(the reference) and then from ``--threads`` threads taking jobs from a shared
counter; each job's probabilities are hashed (SHA-1 of the float32 bytes) into
a preallocated array, so the check stores nothing that grows, and the two runs
must agree on every job, bit for bit.

Memory: the resident set (``/proc/self/statm``) is sampled every
``--sample-every`` jobs; after a warm-up (the first ``--warmup`` share of the
jobs) a least-squares line through the samples gives the slope in MiB per
1,000 calls. A leak of one kilobyte per call would show as about 1 MiB per
1,000 calls.

    OMP_NUM_THREADS=1 nice python benchmarks/serving_soak.py --calls 20000 \\
        --threads 4 --sample-every 50    # the committed results

Results: ``benchmarks/results/serving_soak.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mib() -> float:
    """Resident set size of this process now, MiB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_MIB


def make_data(seed: int = 0):
    """40 classes of 12 noisy 16x16 patterns; classes 0-19 meta-train, 20-39
    are the novel classes the jobs adapt to."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((40, 256)) > 0.7
    y = np.repeat(np.arange(40), 12)
    X = patterns[y] * 1.0 + 0.3 * rng.standard_normal((y.size, 256))
    return X.astype(np.float32), y


def make_models(X, y):
    from sklearn.exceptions import ConvergenceWarning

    from skmeta import FewShotClassifier

    # a few iterations suffice: the weights do not change what a call costs
    warnings.simplefilter("ignore", ConvergenceWarning)

    base = y < 20
    common = {"max_iter": 20, "random_state": 0, "n_way": 5, "k_shot": 2}
    protonet = FewShotClassifier(
        method="protonet",
        backbone="conv4",
        backbone_params={"hidden_channels": 8},
        input_shape=(1, 16, 16),
        **common,
    ).fit(X[base], y[base])
    maml = FewShotClassifier(
        method="maml",
        backbone="mlp",
        backbone_params={"hidden_sizes": (32,)},
        inner_steps=2,
        **common,
    ).fit(X[base], y[base])
    return {"protonet": protonet.meta_model_, "maml": maml.meta_model_}


class Jobs:
    """Job ``i``: one episode on the novel classes, drawn from seed ``i``."""

    def __init__(self, X, y, models):
        self.X, self.y = X, y
        self.models = list(models.values())
        self.by_class = [np.flatnonzero(y == c) for c in range(20, 40)]

    def run(self, i: int) -> bytes:
        from skmeta import FewShotClassifier

        rng = np.random.default_rng(i)
        n_way, k_shot = int(rng.integers(2, 6)), int(rng.integers(1, 4))
        ways = rng.choice(len(self.by_class), n_way, replace=False)
        rows = [rng.choice(self.by_class[c], k_shot + 4, replace=False) for c in ways]
        support = np.concatenate([r[:k_shot] for r in rows])
        query = np.concatenate([r[k_shot:] for r in rows])
        clf = FewShotClassifier(pretrained=self.models[i % len(self.models)])
        clf.fit(self.X[support], self.y[support])
        proba = clf.predict_proba(self.X[query])
        return hashlib.sha1(np.ascontiguousarray(proba).tobytes()).digest()


def run_jobs(jobs: Jobs, n_jobs: int, n_threads: int, sample_every: int):
    """Run jobs ``0..n_jobs-1`` from `n_threads` threads; their digests, the
    RSS samples ``(jobs done, MiB)`` and the seconds taken."""
    digests = np.full((n_jobs, 20), 255, dtype=np.uint8)  # touched: no growth
    samples = np.full((n_jobs // sample_every + 1, 2), np.nan)
    lock, state = threading.Lock(), {"next": 0, "done": 0}
    errors = []

    def worker():
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n_jobs or errors:
                return
            try:
                digests[i] = np.frombuffer(jobs.run(i), dtype=np.uint8)
            except BaseException as exc:  # reported after the join
                errors.append(exc)
                return
            with lock:
                state["done"] += 1
                done = state["done"]
                if done % sample_every == 0:
                    samples[done // sample_every] = done, rss_mib()

    samples[0] = 0, rss_mib()
    tic = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - tic
    if errors:
        raise errors[0]
    return digests, samples[~np.isnan(samples[:, 0])], seconds


def slope(samples: np.ndarray, warmup: float) -> dict:
    """Least-squares RSS slope after the warm-up, MiB per 1,000 calls (a job
    is two calls: fit and predict)."""
    jobs_done, mib = samples[:, 0], samples[:, 1]
    keep = jobs_done >= warmup * jobs_done.max()
    calls = 2 * jobs_done[keep]
    per_call, _ = np.polyfit(calls, mib[keep], 1)
    return {
        "mib_per_1000_calls": float(per_call * 1000),
        "rss_start_mib": float(mib[keep][0]),
        "rss_end_mib": float(mib[-1]),
        "rss_max_mib": float(mib.max()),
        "n_samples_fitted": int(keep.sum()),
    }


def soak(args) -> dict:
    import torch

    import skmeta

    X, y = make_data()
    tic = time.perf_counter()
    models = make_models(X, y)
    train_seconds = time.perf_counter() - tic
    jobs = Jobs(X, y, models)
    n_jobs = args.calls // 2
    for i in range(2 * args.threads):  # warm the per-thread and per-model caches
        jobs.run(i)
    phases = {}
    for name, threads in (("sequential", 1), ("threaded", args.threads)):
        digests, samples, seconds = run_jobs(jobs, n_jobs, threads, args.sample_every)
        phases[name] = {
            "threads": threads,
            "seconds": seconds,
            "calls_per_second": 2 * n_jobs / seconds,
            "rss": slope(samples, args.warmup),
            "samples": samples.tolist(),
        }
        phases[name]["digests"] = digests
        print(name, {k: v for k, v in phases[name].items() if k != "samples"
                     and k != "digests"}, flush=True)  # fmt: skip
    same = phases["sequential"]["digests"] == phases["threaded"]["digests"]
    identical = same.all(axis=1)
    for phase in phases.values():
        del phase["digests"]
    return {
        "date": time.strftime("%Y-%m-%d"),
        "command": f"python benchmarks/serving_soak.py --calls {args.calls} "
        f"--threads {args.threads} --sample-every {args.sample_every}",
        "calls_per_phase": 2 * n_jobs,
        "jobs_per_phase": n_jobs,
        "jobs_identical": int(identical.sum()),
        "all_identical": bool(identical.all()),
        "first_differing_jobs": np.flatnonzero(~identical)[:10].tolist(),
        "warmup_share": args.warmup,
        "models": {name: repr(model) for name, model in models.items()},
        "meta_training_seconds": train_seconds,
        "phases": phases,
        "environment": {
            "skmeta": skmeta.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "loadavg_end": os.getloadavg(),
        },
    }


def table(report: dict) -> str:
    lines = [
        "# Serving soak (issue 16, part 7)",
        "",
        f"`{report['command']}`, {report['date']}, on a shared 2-core machine "
        f"(load average at the end {report['environment']['loadavg_end'][0]:.1f}; "
        "timings noisy). Jobs: `FewShotClassifier(pretrained=model).fit` on a "
        "2-5-way 1-3-shot support set, then `predict_proba` on 4 queries per "
        "class; models " + ", ".join(report["models"].values()) + ".",
        "",
        f"Threaded results identical to sequential: **{report['jobs_identical']} "
        f"of {report['jobs_per_phase']} jobs** (bit for bit).",
        "",
        "| phase | threads | calls | calls/s | RSS start MiB | RSS end MiB | "
        "slope MiB / 1,000 calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, phase in report["phases"].items():
        rss = phase["rss"]
        lines.append(
            f"| {name} | {phase['threads']} | {report['calls_per_phase']} | "
            f"{phase['calls_per_second']:.0f} | {rss['rss_start_mib']:.1f} | "
            f"{rss['rss_end_mib']:.1f} | {rss['mib_per_1000_calls']:+.3f} |"
        )
    lines += [
        "",
        f"Slope: least squares over RSS samples taken every few jobs, after the "
        f"first {100 * report['warmup_share']:.0f}% of each phase.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="per phase")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--sample-every", type=int, default=50, help="jobs")
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    report = soak(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serving_soak.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "serving_soak.md").write_text(table(report))
    print(table(report))


if __name__ == "__main__":
    main()
