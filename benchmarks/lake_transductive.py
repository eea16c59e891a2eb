"""Transductive settings for Lake et al.'s runs, chosen on held-out alphabets
(issue 15, part 8).

With ``test_time_shifts=(1, 2, 3)``, PT-MAP and TIM are the best deployments
of the within-alphabet one-shot runs so far (``lake_augment.py``'s final:
94.9% and 94.6% on evaluation), both at the settings of their papers, tuned
on miniImageNet features with 15 queries per class; Lake's runs have 20
classes and one query per character.

- ``select``: every candidate of the method's grid (:data:`METHODS`) on 100
  runs of the 5 alphabets held out from ``background``
  (``lake_select_<model>``, meta-trained on the other 25). **Rule, written
  before scoring: the best mean accuracy;** the paper's settings stay if
  nothing beats them.
- ``final``: the chosen settings and the paper's on 100 ``evaluation`` runs
  (``lake_final_<model>``).

    python benchmarks/lake_transductive.py select --method ptmap --model lr4-28-20k
    python benchmarks/lake_transductive.py final --method ptmap --model lr4-28-full
    python benchmarks/lake_transductive.py final --method ptmap --model lr4-28-full \
        --seed 1  # another 100 runs

``--grid wide`` (PT-MAP only) scores a second grid, recorded as ``select
wide``, and ``final --grid wide`` takes its choice. **Rule, written
before scoring (twelfth try):** the held-out runs preferred ``beta=1`` (no
power transform) to the paper's 0.5 by 0.5 points and ``lam`` no longer
mattered from 20 on, so ``beta`` in (1, 1.25, 1.5, 2) and ``alpha`` in (0.2,
0.4) at ``lam=40``, on 100 held-out runs of ``lake_select_w40q2-20k`` (the
select model of the 40-way final); the best mean is chosen, and the current
choice (``beta=1, lam=40, alpha=0.4``) stays unless beaten. Its figure on
200 ``evaluation`` runs (seeds 0 and 1) of ``lake_final_w40q2-full`` is
reported whichever way it falls:

    python benchmarks/lake_transductive.py select --method ptmap \
        --model w40q2-20k --grid wide
    python benchmarks/lake_transductive.py final --method ptmap \
        --model w40q2-full --grid wide [--seed 1]

PT-MAP's grid: the power transform's ``beta``, the Sinkhorn entropy weight
``lam`` and the prototype step ``alpha``. TIM's: the temperature, and Adam's
learning rate with its iterations (the paper's ``1e-4`` for 1,000 moves the
classifier little on L2-normalised features); the loss weights stay TIM's
for 20 classes (``alpha_tim_select.py`` chose them).

PT-MAP's selection scored the ``lr4-28-20k`` file of ``lake_augment.py``'s
second round; TIM's a retraining of it with the same settings and seed (the
file was lost with ``/tmp``), not the same weights: 84.1% inductive on the
held-out runs against 84.6%.

Writes ``results/lake_transductive.{json,md}``, one section per method.
"""

from __future__ import annotations

import argparse
import itertools
import json
import warnings

import torch
from lake_library import DATA, MODELS, RESULTS, load
from omniglot_methods import score, within_alphabet_runs

from skmeta import MetaModel

SHIFTS = (1, 2, 3)
METHODS = {
    "ptmap": {
        "paper": {"beta": 0.5, "lam": 10.0, "alpha": 0.2},
        "grid": [
            {"beta": b, "lam": lam, "alpha": a}
            for b, lam, a in itertools.product(
                (0.5, 1.0), (10.0, 20.0, 40.0), (0.2, 0.4)
            )
        ],
        "wide": [
            {"beta": b, "lam": 40.0, "alpha": a}
            for b, a in itertools.product((1.0, 1.25, 1.5, 2.0), (0.2, 0.4))
        ],
    },
    "tim": {
        "paper": {"temperature": 15.0, "n_iter": 1000, "lr": 1e-4},
        "grid": [
            {"temperature": t, "n_iter": n, "lr": lr}
            for t, (n, lr) in itertools.product(
                (15.0, 30.0), ((1000, 1e-4), (1000, 1e-3), (300, 1e-3))
            )
        ],
    },
}


def key(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in params.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["select", "final"])
    ap.add_argument("--method", choices=sorted(METHODS), required=True)
    ap.add_argument("--model", required=True, help="name of lake_<stage>_<name>")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(DATA))
    ap.add_argument("--grid", choices=["base", "wide"], default="base")
    args = ap.parse_args()
    wide = args.grid == "wide"
    if wide and "wide" not in METHODS[args.method]:
        ap.error(f"--grid wide: {args.method} has no second grid")
    torch.set_num_threads(1)
    out = RESULTS / "lake_transductive.json"
    section = read_report(out).get(args.method, {})
    paper = METHODS[args.method]["paper"]
    selection = "select" + (" wide" if wide else "")
    # the second grid's reference is the first grid's choice
    reference = section["select"]["chosen"] if wide else paper
    path = MODELS / f"lake_{args.stage}_{args.model}.safetensors"
    model = MetaModel.load(path)
    X, y, groups, drawer = load(
        args.stage, args.data_home, args.seed, model.input_shape[-1]
    )
    runs = within_alphabet_runs(y, groups, drawer, args.runs, args.seed)
    if args.stage == "select":
        candidates = METHODS[args.method]["wide" if wide else "grid"]
    else:
        chosen = section[selection]["chosen"]
        candidates = [reference] + ([chosen] if chosen != reference else [])
    scores = {}
    for params in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            s = score(model, args.method, X, y, runs, SHIFTS, params)
        scores[key(params)] = {"params": params, **s}
        print(
            f"{key(params)}: {100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}%", flush=True
        )
    record = {"model": str(path), "runs": len(runs), "scores": scores}
    if args.stage == "select":
        best = max(scores.values(), key=lambda s: s["mean"])
        record["chosen"] = (
            best["params"]
            if best["mean"] > scores[key(reference)]["mean"]
            else reference
        )
    name = selection if args.stage == "select" else f"final {args.model}"
    name += " wide" if wide and args.stage == "final" else ""
    # read again: another method's run may have written since this one began
    report = read_report(out)
    section = report.setdefault(args.method, {})
    section[name + (f" seed {args.seed}" if args.seed else "")] = record
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_transductive.md").write_text(table(report))
    print(table(report))


def read_report(path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def table(report: dict) -> str:
    lines = [
        "Transductive settings on Lake et al.'s within-alphabet runs, with "
        "`test_time_shifts=(1, 2, 3)` (`benchmarks/lake_transductive.py`): "
        "chosen on *select* (5 alphabets held out from background) by mean "
        "accuracy; the paper's settings stay unless beaten. Accuracy in % "
        "± 95% CI over runs.",
    ]
    for method, section in report.items():
        paper = key(METHODS[method]["paper"])
        lines += ["", f"## {method} (paper: {paper})"]
        for stage, r in section.items():
            selection = "select wide" if "wide" in stage else "select"
            chosen = section.get(selection, {}).get("chosen")
            lines += [
                "",
                f"**{stage}** (`{r['model']}`, {r['runs']} runs; chosen: "
                f"{key(chosen) if chosen else '-'})",
                "",
                "| settings | accuracy | s/run |",
                "|---|---|---|",
            ]
            for name, s in r["scores"].items():
                lines.append(
                    f"| {name} | {100 * s['mean']:.2f} ± {100 * s['ci95']:.2f} | "
                    f"{s['seconds_per_episode']:.2f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
