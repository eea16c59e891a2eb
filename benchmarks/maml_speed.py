"""MAML-family meta-training speed and memory next to learn2learn and higher (issue 4).

Tasks per second and peak resident memory of one meta-training step -- the MAML
paper's Omniglot Conv4 (stride-2 convs, batch norm with batch statistics), 5-way
1-shot 15-query tasks, meta-batch 32, 1 inner SGD step with lr 0.4, Adam(1e-3)
(skmeta: its ``CosineAdam``, the same update without importing ``torch._dynamo``),
2 torch threads, CPU -- measured in the same run by the peers harness
(``bench_peers.py``: each case in a fresh process, warm-up, rounds in alternating
order, medians, peak RSS): learn2learn's ``l2l.algorithms.MAML``, ``higher``,
the harness's plain ``torch.func`` loop, and skmeta's ``MAML.meta_gradient``;
first-order MAML and ANIL beside them. The skmeta and ANIL cases live in
``benchmarks/peers_maml_plugin.py``; ``python benchmarks/peers_maml_plugin.py
--check`` (peers venv) verifies that skmeta starts from the same weights and
computes the same meta-gradients as the plain loop (float64: ~3e-15 relative).

Reproduce: build the peers venv as in protonet_speed.py, then

    python benchmarks/maml_speed.py --rounds 7       # ~10 min on an idle machine

(the committed result; single rounds spread widely on a 2-core machine, and
3 rounds did not rank skmeta's variants).

Writes results/maml_speed.{json,md}. Options as protonet_speed.py.
"""

from __future__ import annotations

import argparse
import sys

from _harness import (
    HERE,
    add_arguments,
    check_peers,
    result_rows,
    run_harness,
    run_meta,
    write_results,
)

PLUGIN = HERE / "peers_maml_plugin.py"
CASES = [
    "maml_so_l2l",
    "maml_so_higher",
    "maml_so_func_loop",
    "maml_so_skmeta",
    "maml_so_skmeta_x_sequential",
    "maml_so_skmeta_x_group1",
    "maml_so_skmeta_x_group2",
    "maml_so_skmeta_x_group3",
    "maml_so_skmeta_x_group8",
    "maml_fo_l2l",
    "maml_fo_skmeta",
    "anil_so_l2l",
    "anil_so_skmeta",
    "anil_fo_l2l",
    "anil_fo_skmeta",
]
LABELS = {
    "maml_so_l2l": "learn2learn MAML",
    "maml_so_higher": "higher innerloop_ctx",
    "maml_so_func_loop": "plain torch.func loop",
    "maml_so_skmeta": "skmeta MAML",
    "maml_so_skmeta_x_sequential": "skmeta MAML, tasks in one thread",
    "maml_so_skmeta_x_group1": "skmeta MAML, tasks adapted one by one",
    "maml_so_skmeta_x_group2": "skmeta MAML, groups of 2 tasks",
    "maml_so_skmeta_x_group3": "skmeta MAML, groups of 3 tasks",
    "maml_so_skmeta_x_group8": "skmeta MAML, groups of 8 tasks",
    "maml_fo_l2l": "learn2learn MAML (first order)",
    "maml_fo_skmeta": "skmeta FOMAML",
    "anil_so_l2l": "learn2learn MAML on the head (ANIL)",
    "anil_so_skmeta": "skmeta ANIL",
    "anil_fo_l2l": "learn2learn MAML on the head (ANIL), first order",
    "anil_fo_skmeta": "skmeta ANIL, first order",
}
# the learn2learn row each row is compared with
REFERENCE = {
    "maml_so": "maml_so_l2l",
    "maml_fo": "maml_fo_l2l",
    "anil_so": "anil_so_l2l",
    "anil_fo": "anil_fo_l2l",
}


def _reference(case: str) -> str:
    return REFERENCE["_".join(case.split("_")[:2])]


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# MAML-family meta-training speed and memory (issue 4)",
        "",
        f"{meta['setting']}; torch threads: {meta['threads']}, CPU; "
        f"`benchmarks/maml_speed.py`, {meta['date']}, {meta['rounds']} fresh-process "
        f"rounds per case (alternating order), glibc malloc: {meta['malloc']}.",
        "",
        "| implementation | order | tasks/s (median) | min..max | peak RSS MiB | "
        "RSS after set-up MiB | speed vs learn2learn | memory vs learn2learn | "
        "foreign CPU load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        order = r["case"].split("_")[1].upper()
        if "median" not in r:
            lines.append(
                f"| {r['label']} | {order} | FAILED: {r.get('error', '?')[:80]} "
                "| | | | | | |"
            )
            continue
        speed = r.get("speed_vs_l2l")
        memory = r.get("memory_vs_l2l")
        lines.append(
            f"| {r['label']} | {order} | {r['median']:.1f} | "
            f"{r['min']:.1f}..{r['max']:.1f} | {r['peak_rss_mib']:.0f} | "
            f"{r.get('rss_after_setup_mib', float('nan')):.0f} | "
            f"{f'{speed:.2f}x' if speed else '–'} | "
            f"{f'{memory:.2f}x' if memory else '–'} | "
            f"{100 * r['foreign_cpu_frac_max']:.0f}% |"
        )
    lines += [
        "",
        "Same seeded tasks, same initial weights, the same Adam update (lr 1e-3) "
        "for every row; tasks/s = tasks of the meta-batch per second of "
        "meta-training step. Peak RSS is the whole process's (imports included: "
        "learn2learn loads torchvision and more). The peers step with "
        "`torch.optim.Adam`, which imports `torch._dynamo` and sympy (~70 MiB); "
        "skmeta steps with its own `CosineAdam` (torch's functional Adam, the same "
        "update to the bit), as its training loop does, and does not import them. "
        "SO: second order; FO: first order. ANIL "
        "adapts the linear head only. Foreign CPU load: share of the machine other "
        "processes used meanwhile (above ~5% the numbers are contaminated).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(ap)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated")
    args = ap.parse_args()
    check_peers(__file__, args.python, args.peers_dir, "learn2learn, skmeta.meta")
    raw = run_harness(__file__, args, PLUGIN, args.cases.split(","))
    rows = result_rows(raw, LABELS)
    by_case = {r["case"]: r for r in rows}
    for r in rows:
        ref = by_case.get(_reference(r["case"]))
        if ref and "median" in ref and "median" in r:
            r["speed_vs_l2l"] = r["median"] / ref["median"]
            r["memory_vs_l2l"] = r["peak_rss_mib"] / ref["peak_rss_mib"]
    a = raw["args"]
    setting = (
        f"MAML-paper Omniglot Conv4, {a['maml_ways']}-way {a['maml_shots']}-shot "
        f"{a['maml_queries']}-query tasks, meta-batch {a['maml_meta_batch']}, "
        f"{a['maml_inner_steps']} inner step(s) with lr {a['maml_inner_lr']}"
    )
    command = "python benchmarks/maml_speed.py " + " ".join(sys.argv[1:])
    meta = run_meta(raw, "maml", setting, command)
    write_results(args.out, "maml_speed", rows, meta, markdown(rows, meta))
    sk = by_case.get("maml_so_skmeta", {})
    if "speed_vs_l2l" in sk:
        print(
            f"skmeta / learn2learn, second-order MAML: {sk['speed_vs_l2l']:.2f}x "
            f"tasks/s (target >= 1.5x), {sk['memory_vs_l2l']:.2f}x peak memory "
            "(target <= 0.75x)"
        )


if __name__ == "__main__":
    main()
