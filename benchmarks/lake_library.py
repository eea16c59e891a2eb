"""Lake et al.'s within-alphabet runs with the library's own test-time
augmentation (issue 15, part 8): ``FewShotClassifier(pretrained=...,
test_time_shifts=...)``, inductive and with ``transductive="ptmap"``.

``lake_deploy.py`` measured test-time augmentation by warping the 105 px
originals (sub-pixel shifts of the 28 px rows); this script uses only the
public API on the 28 px rows a user has: whole-pixel shifts, edges
replicated. The shift set is chosen on ``select`` (the ``lake_select_*``
model, runs on the 5 alphabets held out from ``background``) by inductive
accuracy, and ``final`` reports it and no augmentation on ``evaluation``
(``lake_final_*`` models).

    python benchmarks/lake_library.py select --model base-28
    python benchmarks/lake_library.py final --model base-28
    python benchmarks/lake_library.py final --model wg50-28
    python benchmarks/lake_library.py select-transductive --model lr4-28
    python benchmarks/lake_library.py final-transductive --model lr4-28-full

``select-transductive`` chooses the transductive deployment among
:data:`TRANSDUCTIVE` with the chosen shifts, on the held-out runs of
``lake_select_<model>``: **rule, written before scoring: the best mean
accuracy**; ``final-transductive`` scores it and PT-MAP on ``evaluation``.

writes ``results/lake_library.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import omniglot_methods
import torch
from lake_runs import held_out_alphabets
from omniglot_methods import within_alphabet_runs

from skmeta import MetaModel
from skmeta.datasets import load_omniglot

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
MODELS = Path("/tmp/models")
CANDIDATES = {"none": None, "1": (1,), "1,2": (1, 2), "1,2,3": (1, 2, 3)}
TRANSDUCTIVE = ("ptmap", "tim", "alpha-tim")


def load(stage: str, data_home: str, seed: int, image_size: int = 28):
    """Rows of `image_size` px, labels, alphabets and drawers of the stage's
    runs."""
    split = "background" if stage == "select" else "evaluation"
    data = load_omniglot(split, data_home=data_home, image_size=image_size)
    raw = np.load(Path(data_home) / f"{split}.npz")
    if not np.array_equal(raw["labels"], data.target):
        raise SystemExit("the data file's rows are not in load_omniglot's order")
    X, y, groups, drawer = data.data, data.target, data.groups, raw["drawer"]
    if stage == "select":
        keep = np.isin(groups, held_out_alphabets(groups, y, seed))
        X, y, groups, drawer = X[keep], y[keep], groups[keep], drawer[keep]
    return X, y, groups, drawer


def score(model, X, y, runs, shifts, transductive) -> dict:
    """Accuracy over the runs of the public-API deployment
    (``omniglot_methods.score``), keyed by runs."""
    s = omniglot_methods.score(model, transductive, X, y, runs, shifts)
    return {
        "mean": s["mean"],
        "ci95": s["ci95"],
        "runs": s["n_episodes"],
        "seconds_per_run": s["seconds_per_episode"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "stage",
        choices=["select", "final", "select-transductive", "final-transductive"],
    )
    ap.add_argument("--model", default="base-28", help="name of lake_<stage>_<name>")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(DATA))
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = RESULTS / "lake_library.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    stage = args.stage.split("-")[0]
    path = MODELS / f"lake_{stage}_{args.model}.safetensors"
    model = MetaModel.load(path)
    X, y, groups, drawer = load(stage, args.data_home, args.seed)
    runs = within_alphabet_runs(y, groups, drawer, args.runs, args.seed)
    if args.stage.endswith("transductive"):
        return transductive_stage(args, report, path, model, X, y, runs)
    if args.stage == "select":
        names = list(CANDIDATES)
    else:
        names = list(dict.fromkeys(["none", report["select"]["chosen"]]))
    scores = {}
    for name in names:
        for transductive in (None, "ptmap"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                s = score(model, X, y, runs, CANDIDATES[name], transductive)
            scores[f"{name} | {transductive or 'inductive'}"] = s
            print(name, transductive, f"{100 * s['mean']:.1f} ± {100 * s['ci95']:.1f}")
    key = "select" if args.stage == "select" else f"final {args.model}"
    report[key] = {"model": str(path), "runs": args.runs, "scores": scores}
    if args.stage == "select":
        report["select"]["chosen"] = max(
            names, key=lambda n: scores[f"{n} | inductive"]["mean"]
        )
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_library.md").write_text(table(report))
    print(table(report))


def transductive_stage(args, report, path, model, X, y, runs) -> None:
    """The ``*-transductive`` stages: every deployment of :data:`TRANSDUCTIVE`
    on the held-out runs (select), or the chosen one and PT-MAP (final),
    with the shifts chosen by ``select``."""
    shifts = report["select"]["chosen"]
    if args.stage == "select-transductive":
        names, key = TRANSDUCTIVE, "select transductive"
    else:
        chosen = report["select transductive"]["chosen_deployment"]
        names = tuple(dict.fromkeys(["ptmap", chosen]))
        key = f"final transductive {args.model}"
    scores = {}
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            s = score(model, X, y, runs, CANDIDATES[shifts], name)
        scores[f"{shifts} | {name}"] = s
        print(name, f"{100 * s['mean']:.1f} ± {100 * s['ci95']:.1f}", flush=True)
    report[key] = {"model": str(path), "runs": args.runs, "scores": scores}
    if args.stage == "select-transductive":
        report[key]["chosen_deployment"] = max(
            names, key=lambda n: scores[f"{shifts} | {n}"]["mean"]
        )
    (RESULTS / "lake_library.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_library.md").write_text(table(report))
    print(table(report))


def table(report: dict) -> str:
    lines = [
        "Lake et al.'s within-alphabet 20-way 1-shot runs through the public "
        "API: `FewShotClassifier(pretrained=model, test_time_shifts=...)`, "
        'inductive and `transductive="ptmap"` (`benchmarks/lake_library.py`). '
        "Shifts: the identity and the 8 whole-pixel shifts (28 px rows, edges "
        "replicated) of each distance listed; chosen on *select* (5 alphabets "
        "held out from background) by inductive accuracy. Accuracy in % ± 95% "
        "CI over runs; s/run on one thread.",
    ]
    for stage in sorted(report, key=lambda k: (k != "select", k)):
        r = report[stage]
        chosen = report.get("select", {}).get("chosen")
        if "transductive" in stage:
            deployment = report.get("select transductive", {})
            chosen += f"; deployment: {deployment.get('chosen_deployment')}"
        lines += [
            "",
            f"**{stage}** (`{r['model']}`, {r['runs']} runs; chosen: {chosen})",
            "",
            "| test_time_shifts | deployment | accuracy | s/run |",
            "|---|---|---|---|",
        ]
        for name, v in r["scores"].items():
            shifts, deployment = name.split(" | ")
            lines.append(
                f"| {shifts} | {deployment} | {100 * v['mean']:.1f} ± "
                f"{100 * v['ci95']:.1f} | {v['seconds_per_run']:.2f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
