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
``--ideas`` (also run the ``proto_skmeta_x_*`` variants of peers_plugin.py).
Run it on an otherwise idle machine: the harness reports the CPU share other
processes took ("foreign load"), and anything above a few percent spoils the
numbers.
"""

from __future__ import annotations

import argparse
import sys

from _harness import (
    HERE,
    add_arguments,
    add_ratios,
    check_peers,
    result_rows,
    run_harness,
    run_meta,
    write_results,
)

PLUGIN = HERE / "peers_plugin.py"
CASES = [
    "proto_easyfsl",
    "proto_torch",
    "proto_skmeta",
    "proto_skmeta_x_malloc",  # skmeta's opt-in allocator setting (SKMETA_MALLOC=1)
    "proto_easyfsl_x_nommap",  # easyfsl with the same allocator setting
]
IDEAS = [  # variants in peers_plugin.py
    "proto_skmeta_x_nommap",
    "proto_skmeta_x_textbook",
]
LABELS = {
    "proto_easyfsl": "easyfsl PrototypicalNetworks",
    "proto_torch": "plain torch (one pass on cat(support, query))",
    "proto_skmeta": "skmeta ProtoNet (default: glibc malloc left alone)",
    "proto_skmeta_x_malloc": "skmeta ProtoNet, SKMETA_MALLOC=1 (opt-in)",
    "proto_easyfsl_x_nommap": "easyfsl + mallopt(M_MMAP_MAX=0)",
    "proto_skmeta_x_nommap": "skmeta + mallopt(M_MMAP_MAX=0) (variant)",
    "proto_skmeta_x_textbook": "skmeta on the harness's NCHW Conv4 (variant)",
}


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
        "row; tasks/s = training episodes (steps) per second. easyfsl and skmeta "
        "embed support and query in two backbone passes, plain torch in one. "
        "Foreign CPU load: "
        "share of the machine other processes used during the case (above ~5% the "
        "numbers are contaminated when the cases use every CPU; with 1 thread on 2 "
        "CPUs, 50% means the other CPU was busy). Rows marked variant are "
        "`proto_skmeta_x_*` cases of `benchmarks/peers_plugin.py`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(ap)
    ap.add_argument("--ideas", action="store_true", help="also the proto_*_x_* cases")
    args = ap.parse_args()
    check_peers(__file__, args.python, args.peers_dir, "easyfsl.methods, skmeta.meta")
    raw = run_harness(__file__, args, PLUGIN, CASES + (IDEAS if args.ideas else []))
    rows = result_rows(raw, LABELS)
    add_ratios(rows, "proto_easyfsl", "ratio_to_easyfsl")
    a = raw["args"]
    setting = (
        f"{a['proto_ways']}-way {a['proto_shots']}-shot "
        f"{a['proto_queries']}-query training episodes"
    )
    command = "python benchmarks/protonet_speed.py " + " ".join(sys.argv[1:])
    meta = run_meta(raw, "proto", setting, command)
    write_results(args.out, "protonet_speed", rows, meta, markdown(rows, meta))
    sk = next((r for r in rows if r["case"] == "proto_skmeta"), {})
    if "ratio_to_easyfsl" in sk:
        print(
            "skmeta / easyfsl = {:.2f}x (target >= 1.5x): {}".format(
                sk["ratio_to_easyfsl"],
                "met" if sk["ratio_to_easyfsl"] >= 1.5 else "NOT met",
            )
        )


if __name__ == "__main__":
    main()
