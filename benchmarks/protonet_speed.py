"""ProtoNet meta-training speed next to easyfsl and plain torch (issue 3).

Episodes per second of one training step -- 20-way 5-shot 5-query episode, max-pool
Conv4, Adam(1e-3), 2 torch threads, CPU -- for easyfsl's ``PrototypicalNetworks``,
a plain-torch ProtoNet and skmeta (``ProtoNet.loss`` on a ``TaskBatch``, as in
``skmeta.meta.train``), measured in the same run by the peers harness
(``bench_peers.py``: each case in a fresh process, warm-up, rounds in alternating
order, medians, peak RSS).  The skmeta case lives in ``benchmarks/peers_plugin.py``.

Reproduce (Python 3.11, network access to the package registries):

    # 1. the peers venv (torch 2.13.0 CPU, easyfsl, learn2learn, ...), ~5 min
    bash ../shared/peers/install_peers.sh           # -> /tmp/skmeta-peers/venv
    # 2. skmeta into it, without letting pip touch its torch
    printf 'torch==2.13.0\\n' > /tmp/skmeta-peers/torchpin.txt
    /tmp/skmeta-peers/venv/bin/pip install -c /tmp/skmeta-peers/torchpin.txt \\
        --no-deps -e .
    /tmp/skmeta-peers/venv/bin/pip install -c /tmp/skmeta-peers/torchpin.txt \\
        tqdm safetensors matplotlib scikit-learn
    # 3. measure (~3 min on an idle machine); writes results/protonet_speed.{json,md}
    python benchmarks/protonet_speed.py --rounds 3

Options: ``--python`` / ``$SKMETA_PEERS_PYTHON`` (the peers venv's python),
``--peers-dir`` / ``$SKMETA_PEERS_DIR`` (folder of bench_peers.py), ``--malloc``
(passed to the harness: ``tuned`` sets the same glibc thresholds for every case),
``--ideas`` (also run the ``proto_skmeta_x_*`` prototypes of peers_plugin.py).
Run it on an otherwise idle machine: the harness reports the CPU share other
processes took ("foreign load"), and anything above a few percent spoils the
numbers.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PLUGIN = HERE / "peers_plugin.py"
ROOT = HERE.parent
DEFAULT_PEERS_DIR = os.environ.get(
    "SKMETA_PEERS_DIR", str((ROOT / ".." / "shared" / "peers").resolve())
)
DEFAULT_PYTHON = os.environ.get(
    "SKMETA_PEERS_PYTHON", "/tmp/skmeta-peers/venv/bin/python"
)
CASES = ["proto_easyfsl", "proto_torch", "proto_skmeta"]
IDEAS = [  # prototypes in peers_plugin.py, and easyfsl given the same malloc setting
    "proto_easyfsl_x_nommap",
    "proto_skmeta_x_nommap",
    "proto_skmeta_x_proposed",
    "proto_skmeta_x_proposed_nommap",
]
LABELS = {
    "proto_easyfsl": "easyfsl PrototypicalNetworks",
    "proto_torch": "plain torch (one pass on cat(support, query))",
    "proto_skmeta": "skmeta ProtoNet",
    "proto_easyfsl_x_nommap": "easyfsl + mallopt(M_MMAP_MAX=0)",
    "proto_skmeta_x_nommap": "skmeta + mallopt(M_MMAP_MAX=0) (prototype)",
    "proto_skmeta_x_proposed": "skmeta + proposed Conv4 (prototype)",
    "proto_skmeta_x_proposed_nommap": "skmeta + proposed Conv4 + mallopt (prototype)",
}


def fail(msg: str) -> None:
    sys.exit(f"protonet_speed.py: {msg}\n(see the top of {__file__} to reproduce)")


def check_peers(python: str, peers_dir: str) -> None:
    harness = Path(peers_dir) / "bench_peers.py"
    if not harness.is_file():
        fail(f"the peers harness {harness} is missing; pass --peers-dir.")
    if not Path(python).is_file():
        fail(
            f"the peers venv's python {python} is missing. Build it with\n"
            f"  bash {Path(peers_dir) / 'install_peers.sh'}\n"
            "then install skmeta into it (--no-deps, torch pinned), or pass --python."
        )
    shims = str(Path(peers_dir) / "shims")
    probe = (
        f"import sys; sys.path.insert(0, {shims!r}); import tv_cpu_shim, torch, "
        "easyfsl.methods, skmeta.meta.algorithms; print(torch.__version__)"
    )
    p = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    if p.returncode:
        fail(
            f"{python} cannot import torch, easyfsl and skmeta:\n"
            f"{p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}"
        )


def markdown(rows: list[dict], meta: dict) -> str:
    ref = next(
        (r for r in rows if r["case"] == "proto_easyfsl" and "median" in r), None
    )
    lines = [
        "# ProtoNet meta-training speed (issue 3)",
        "",
        f"{meta['setting']}; Conv4 (max-pool), Adam(1e-3), torch threads: "
        f"{meta['threads']}, CPU; `benchmarks/protonet_speed.py`, {meta['date']}, "
        f"{meta['rounds']} fresh-process rounds per case (alternating order), "
        f"glibc malloc: {meta['malloc']}.",
        "",
        "| implementation | tasks/s (median) | min..max | peak RSS MiB | "
        "vs easyfsl | foreign CPU load |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "median" not in r:
            lines.append(
                f"| {r['label']} | FAILED: {r.get('error', '?')[:80]} | | | | |"
            )
            continue
        ratio = f"{r['median'] / ref['median']:.2f}x" if ref else "–"
        lines.append(
            f"| {r['label']} | {r['median']:.2f} | {r['min']:.2f}..{r['max']:.2f} | "
            f"{r['peak_rss_mib']:.0f} | {ratio} | "
            f"{100 * r['foreign_cpu_frac_max']:.0f}% |"
        )
    lines += [
        "",
        "Same seeded episodes, same initial weights and same optimizer for every "
        "row; tasks/s = training episodes (steps) per second. easyfsl embeds support "
        "and query in two backbone passes, the others in one. Foreign CPU load: "
        "share of the machine other processes used during the case (above ~5% the "
        "numbers are contaminated when the cases use every CPU; with 1 thread on 2 "
        "CPUs, 50% means the other CPU was busy). Rows marked prototype are "
        "`proto_skmeta_x_*` cases of `benchmarks/peers_plugin.py`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--python", default=DEFAULT_PYTHON, help="the peers venv's python")
    ap.add_argument("--peers-dir", default=DEFAULT_PEERS_DIR)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions per round")
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads per case (the harness's default: 2); 1 on a shared machine",
    )
    ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned")
    ap.add_argument(
        "--ideas", action="store_true", help="also the proto_skmeta_x_* cases"
    )
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    check_peers(args.python, args.peers_dir)

    cases = CASES + (IDEAS if args.ideas else [])
    with tempfile.TemporaryDirectory(prefix="protonet_speed_") as tmp:
        cmd = [
            args.python,
            str(Path(args.peers_dir) / "bench_peers.py"),
            "--plugin",
            str(PLUGIN),
            "--cases",
            ",".join(cases),
            "--rounds",
            str(args.rounds),
            "--malloc",
            args.malloc,
            "--threads",
            str(args.threads),
            "--no-check",
            "--out",
            tmp,
        ]
        if args.reps:
            cmd += ["--reps", str(args.reps)]
        print("$ " + " ".join(cmd), flush=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.run(cmd, env=env, cwd=str(ROOT))
        found = glob.glob(os.path.join(tmp, "results_*.json"))
        if p.returncode or not found:
            fail(f"bench_peers.py failed (rc={p.returncode}); its logs were in {tmp}.")
        with open(found[0]) as f:
            raw = json.load(f)

    rows = []
    for r in raw["rows"]:
        row = {"case": r["case"], "label": LABELS.get(r["case"], r["impl"])}
        for k in (
            "median",
            "min",
            "max",
            "round_medians",
            "peak_rss_mib",
            "cpu_s_per_call_median",
            "minor_faults_per_call_median",
            "foreign_cpu_frac_max",
            "failed_rounds",
            "error",
            "rates",
        ):
            if k in r:
                row[k] = r[k]
        rows.append(row)
    ref = next(
        (r for r in rows if r["case"] == "proto_easyfsl" and "median" in r), None
    )
    for r in rows:
        if ref and "median" in r:
            r["ratio_to_easyfsl"] = r["median"] / ref["median"]
    first = next((r for r in raw["rows"] if "versions" in r), {})
    a = raw["args"]
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "setting": f"{a['proto_ways']}-way {a['proto_shots']}-shot "
        f"{a['proto_queries']}-query training episodes",
        "threads": a["threads"],
        "rounds": raw["rounds"],
        "timing_per_round": raw["timing"]["proto"],
        "malloc": raw["malloc"],
        "versions": first.get("versions", {}),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor(),
            "platform": platform.platform(),
        },
        "command": "python benchmarks/protonet_speed.py " + " ".join(sys.argv[1:]),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "protonet_speed.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )
    table = markdown(rows, meta)
    (out / "protonet_speed.md").write_text(table)
    print("\n" + table)
    sk = next((r for r in rows if r["case"] == "proto_skmeta"), {})
    if "ratio_to_easyfsl" in sk:
        print(
            "skmeta / easyfsl = {:.2f}x (target >= 1.5x): {}".format(
                sk["ratio_to_easyfsl"],
                "met" if sk["ratio_to_easyfsl"] >= 1.5 else "NOT met",
            )
        )
    print(f"wrote {out / 'protonet_speed.json'} and {out / 'protonet_speed.md'}")


if __name__ == "__main__":
    main()
