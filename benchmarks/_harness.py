"""Running the peers harness (../shared/peers/bench_peers.py) from a benchmark.

Shared by protonet_speed.py and maml_speed.py: find the peers venv, run the
harness with an skmeta plugin, and turn its JSON into result rows.
"""

from __future__ import annotations

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
ROOT = HERE.parent
RESULTS = HERE / "results"
DEFAULT_PEERS_DIR = os.environ.get(
    "SKMETA_PEERS_DIR", str((ROOT / ".." / "shared" / "peers").resolve())
)
DEFAULT_PYTHON = os.environ.get(
    "SKMETA_PEERS_PYTHON", "/tmp/skmeta-peers/venv/bin/python"
)
ROW_KEYS = (
    "median",
    "min",
    "max",
    "round_medians",
    "peak_rss_mib",
    "rss_after_setup_mib",
    "cpu_s_per_call_median",
    "minor_faults_per_call_median",
    "foreign_cpu_frac_max",
    "failed_rounds",
    "error",
    "rates",
)


def fail(script: str, msg: str) -> None:
    sys.exit(f"{Path(script).name}: {msg}\n(see the top of {script} to reproduce)")


def add_arguments(ap) -> None:
    """The options every harness-driven benchmark takes."""
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
    ap.add_argument("--out", default=str(RESULTS))


def check_peers(script: str, python: str, peers_dir: str, modules: str) -> None:
    """Fail with a clear message unless `python` imports torch and `modules`."""
    harness = Path(peers_dir) / "bench_peers.py"
    if not harness.is_file():
        fail(script, f"the peers harness {harness} is missing; pass --peers-dir.")
    if not Path(python).is_file():
        fail(
            script,
            f"the peers venv's python {python} is missing. Build it with\n"
            f"  bash {Path(peers_dir) / 'install_peers.sh'}\n"
            "then install skmeta into it (--no-deps, torch pinned), or pass --python.",
        )
    shims = str(Path(peers_dir) / "shims")
    probe = (
        f"import sys; sys.path.insert(0, {shims!r}); import tv_cpu_shim, torch, "
        f"{modules}; print(torch.__version__)"
    )
    p = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    if p.returncode:
        last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode
        fail(script, f"{python} cannot import torch and {modules}:\n{last}")


def run_harness(script: str, args, plugin: Path, cases: list[str]) -> dict:
    """Run bench_peers.py on `cases` with `plugin`; returns its JSON."""
    with tempfile.TemporaryDirectory(prefix="skmeta_peers_") as tmp:
        cmd = [
            args.python,
            str(Path(args.peers_dir) / "bench_peers.py"),
            "--plugin",
            str(plugin),
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
            fail(script, f"bench_peers.py failed (rc={p.returncode}).")
        with open(found[0]) as f:
            return json.load(f)


def result_rows(raw: dict, labels: dict[str, str]) -> list[dict]:
    rows = []
    for r in raw["rows"]:
        row = {"case": r["case"], "label": labels.get(r["case"], r["impl"])}
        row.update({k: r[k] for k in ROW_KEYS if k in r})
        rows.append(row)
    return rows


def add_ratios(rows: list[dict], reference: str, key: str) -> dict | None:
    """Set row[key] = speed / the reference case's speed; returns the reference."""
    ref = next((r for r in rows if r["case"] == reference and "median" in r), None)
    for r in rows:
        if ref and "median" in r:
            r[key] = r["median"] / ref["median"]
    return ref


def run_meta(raw: dict, group: str, setting: str, command: str) -> dict:
    first = next((r for r in raw["rows"] if "versions" in r), {})
    a = raw["args"]
    return {
        "date": time.strftime("%Y-%m-%d"),
        "setting": setting,
        "threads": a["threads"],
        "rounds": raw["rounds"],
        "timing_per_round": raw["timing"][group],
        "malloc": raw["malloc"],
        "versions": first.get("versions", {}),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor(),
            "platform": platform.platform(),
        },
        "command": command,
    }


def write_results(out: str, name: str, rows: list[dict], meta: dict, table: str):
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    (path / f"{name}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )
    (path / f"{name}.md").write_text(table)
    print("\n" + table)
    print(f"wrote {path / (name + '.json')} and {path / (name + '.md')}")
