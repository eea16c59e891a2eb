"""Deployment-time ideas for Lake et al.'s within-alphabet runs (issue 15, part 8).

The models of ``lake_runs.py`` (strided Conv4 ProtoNets, 28 px) deployed on the
same runs (``omniglot_methods.within_alphabet_runs``: 20 characters of one
alphabet, the support by one drawer, one query per character by another),
with no new meta-training:

- **test-time augmentation (TTA)**: every image is embedded under small
  affine warps (of the 105 px original, then Lanczos-resampled to 28 px as
  ``load_omniglot`` does) and its embeddings averaged (``emb``), or the
  squared distances averaged over all warp pairs (``dist``);
- **support centring** (inductive): the support's mean embedding subtracted
  from every embedding, then each divided by its norm;
- **ensembles**: the sum of each model's squared distances over their mean;
- **transductive** TIM, PT-MAP (``skmeta.meta.transductive``) on the (TTA)
  embeddings, and per-set centring (support, queries each on their own mean);
- **one-to-one assignment** (``scipy.optimize.linear_sum_assignment`` on the
  distances): uses that each run has exactly one query per character, a prior
  Lake et al.'s subjects did not have (each of their trials was one query on
  its own), so it is reported apart, never as the human comparison.

Stages (settings chosen only on background):

- ``select``: ``lake_select_*`` models (25 background alphabets), runs on the
  5 held-out ones; every variant scored, and the TTA warp set with the best
  mean inductive accuracy over the models recorded as the choice;
- ``final``: ``lake_final_*`` models, runs on ``evaluation``: the baselines
  and the variants built on the chosen warp set only.

    python benchmarks/lake_deploy.py select
    python benchmarks/lake_deploy.py final --models base-28,wg50-28
    python benchmarks/lake_deploy.py select --merge --models base-28,lr4-28

writes ``results/lake_deploy.{json,md}``. With ``--merge`` the stage's
recorded section is added to rather than replaced: only the identity and the
warp set already chosen on select are embedded (the choice is not redone), the
new rows are added, rows already recorded are kept as they were (and whether
they came out the same is logged in the section's ``merged`` list).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from lake_runs import held_out_alphabets
from omniglot_methods import within_alphabet_runs
from PIL import Image
from scipy.optimize import linear_sum_assignment

from skmeta import MetaModel
from skmeta.meta.transductive import make_transductive

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = HERE.parent.parent / "shared" / "data" / "omniglot"
MODELS = Path("/tmp/models")
SOURCE = 105
SIZE = 28
STEP = SOURCE / SIZE  # one 28 px pixel in source pixels


def _shifts(pixels: float) -> list[tuple]:
    """The identity and the 8 shifts of `pixels` (28 px scale)."""
    steps = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    return [(dx * pixels, dy * pixels, 0.0, 1.0) for dx, dy in steps]


def _union(*names: str) -> list[tuple]:
    return sorted({w for name in names for w in WARP_SETS[name]})


# A warp: (dx, dy in 28 px pixels, rotation in degrees, scale).
IDENTITY = (0.0, 0.0, 0.0, 1.0)
WARP_SETS = {f"shift{p:g}": _shifts(p) for p in (0.5, 1.0, 2.0, 3.0)}
WARP_SETS |= {
    "none": [IDENTITY],
    "rot10": [IDENTITY, (0.0, 0.0, -10.0, 1.0), (0.0, 0.0, 10.0, 1.0)],
    "rot5": [IDENTITY, (0.0, 0.0, -5.0, 1.0), (0.0, 0.0, 5.0, 1.0)],
    "scale10": [IDENTITY, (0.0, 0.0, 0.0, 0.9), (0.0, 0.0, 0.0, 1.1)],
    "grid5": [
        (float(x), float(y), 0.0, 1.0) for x in range(-2, 3) for y in range(-2, 3)
    ],
}
for combined in (
    "shift1+rot10+scale10",
    "shift0.5+shift1",
    "shift1+shift2",
    "shift1+shift2+shift3",
    "shift1+shift2+rot10+scale10",
    "grid5+rot10+scale10",
):
    WARP_SETS[combined] = _union(*combined.split("+"))
ALL_WARPS = sorted({w for ws in WARP_SETS.values() for w in ws})


def warp(images: np.ndarray, dx: float, dy: float, angle: float, scale: float):
    """`images` (n, 105, 105) uint8, ink high, moved by (`dx`, `dy`) 28 px
    pixels, turned by `angle` degrees and scaled by `scale` about the centre,
    then Lanczos-resampled to 28 px: float32 rows of shape (n, 784) in [0, 1]."""
    theta = np.deg2rad(angle)
    rotation = np.array(
        [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    )
    inverse = rotation.T / scale  # output pixel -> source pixel
    centre = np.full(2, (SOURCE - 1) / 2)
    offset = centre - inverse @ (centre + STEP * np.array([dx, dy]))
    coeffs = (*inverse[0], offset[0], *inverse[1], offset[1])
    out = np.empty((len(images), SIZE, SIZE), dtype=np.uint8)
    for i, img in enumerate(images):
        moved = Image.fromarray(img)
        if (dx, dy, angle, scale) != IDENTITY:
            moved = moved.transform(
                (SOURCE, SOURCE),
                Image.Transform.AFFINE,
                coeffs,
                resample=Image.Resampling.BILINEAR,
                fillcolor=0,
            )
        out[i] = np.asarray(moved.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    return out.reshape(len(images), -1).astype(np.float32) / np.float32(255)


def squared_distances(queries: np.ndarray, support: np.ndarray) -> np.ndarray:
    """(n_query, n_support) squared Euclidean distances, float64."""
    q, s = queries.astype(np.float64), support.astype(np.float64)
    d = (q * q).sum(1)[:, None] - 2 * q @ s.T + (s * s).sum(1)[None]
    return np.maximum(d, 0.0)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(1e-12)


def distances(embedded: dict, warps: list, kind: str) -> np.ndarray:
    """Query-to-support distances of one model from its embeddings under
    `warps` (``embedded[w] = (support, queries)``, each (20, dim))."""
    support = np.mean([embedded[w][0] for w in warps], axis=0)
    queries = np.mean([embedded[w][1] for w in warps], axis=0)
    if kind == "emb":
        return squared_distances(queries, support)
    if kind == "dist":  # mean over every (query warp, support warp) pair
        pairs = [(embedded[a][1], embedded[b][0]) for a in warps for b in warps]
        return np.mean([squared_distances(q, s) for q, s in pairs], axis=0)
    if kind == "centred":  # inductive: the support's own mean, then unit norm
        mean = support.mean(0)
        return squared_distances(unit(queries - mean), unit(support - mean))
    if kind == "setcentred":  # transductive: each set on its own mean
        return squared_distances(queries - queries.mean(0), support - support.mean(0))
    raise ValueError(f"kind={kind!r} is unknown")


def ensemble(per_model: list[np.ndarray]) -> np.ndarray:
    """Sum of the models' distances, each divided by its mean."""
    return sum(d / d.mean() for d in per_model)


def transductive(name: str, embedded: list[dict], warps: list) -> np.ndarray:
    """Minus the scores of `name` (TIM, PT-MAP) on the TTA-averaged
    embeddings of one or more models (concatenated), shape (20, 20): lower is
    better, as for distances."""
    support = np.hstack([np.mean([e[w][0] for w in warps], axis=0) for e in embedded])
    queries = np.hstack([np.mean([e[w][1] for w in warps], axis=0) for e in embedded])
    state = make_transductive(name).fit(
        torch.from_numpy(support),
        torch.arange(len(support)),
        torch.from_numpy(queries),
        len(support),
    )
    return -state["unlabelled_scores"].numpy()


def accuracy(cost: np.ndarray, assignment: bool = False) -> float:
    """Share of queries (row i is character i) given their own class."""
    chosen = linear_sum_assignment(cost)[1] if assignment else cost.argmin(1)
    return float(np.mean(chosen == np.arange(len(cost))))


def load_split(stage: str, data_home: Path, seed: int):
    """105 px images, labels, alphabets, drawers of the runs' split."""
    raw = np.load(
        data_home
        / ("background_105.npz" if stage == "select" else "evaluation_105.npz")
    )
    images, y = raw["images"], raw["labels"].astype(np.int64)
    groups, drawer = raw["alphabet"].astype(np.int64), raw["drawer"]
    if stage == "select":
        keep = np.isin(groups, held_out_alphabets(groups, y, seed))
        images, y, groups, drawer = images[keep], y[keep], groups[keep], drawer[keep]
    return images, y, groups, drawer


def inductive_rows(
    stage: str, chosen: str | None, names: list[str], merge: bool = False
) -> list[tuple]:
    """(row name, models, warp set, decision, assignment): the inductive rows
    the warp set is chosen on (select; with `merge`, the recorded choice and
    no TTA only) or that it fixes (final)."""
    every_set = stage == "select" and not merge
    sets = list(WARP_SETS) if every_set else list(dict.fromkeys(["none", chosen]))
    kinds = ["emb", "dist", "centred"] if stage == "select" else ["emb"]
    out = []
    for m in names:
        for s in sets:
            for kind in ["emb", "centred"] if s == "none" else kinds:
                out.append((f"{m} | {s} | {kind}", [m], s, kind, False))
    return out


def chosen_rows(chosen: str, names: list[str]) -> list[tuple]:
    """Ensemble, transductive and assignment rows, without TTA and with the
    chosen warp set."""
    out = []
    sets = list(dict.fromkeys(["none", chosen]))
    groups = [names, names[:2]] if len(names) > 2 else [names] if len(names) > 1 else []
    for members in groups:
        ens = f"ensemble {'+'.join(members)}"
        out += [(f"{ens} | {s} | emb", members, s, "emb", False) for s in sets]
        out += [
            (f"{ens} | {s} | ptmap (transductive)", members, s, "ptmap", False)
            for s in sets
        ]
    for m in names:
        for s in sets:
            for t in ("tim", "ptmap", "setcentred"):
                out.append((f"{m} | {s} | {t} (transductive)", [m], s, t, False))
    for members in [[m] for m in names] + groups:
        label = members[0] if len(members) == 1 else f"ensemble {'+'.join(members)}"
        for s in sets:
            out.append(
                (f"{label} | {s} | emb + assignment (prior)", members, s, "emb", True)
            )
    return out


def embed_runs(models: dict, images: np.ndarray, runs: list, warps: list):
    """Embeddings ``[run][model][warp] = (support, queries)`` and the seconds
    (warping and embedding, all runs) of each ``(model, warp)``."""
    seconds = {(n, w): 0.0 for n in models for w in warps}
    embedded = []
    for run, (support, query) in enumerate(runs):
        per_model = {n: {} for n in models}
        for w in warps:
            t0 = time.perf_counter()
            moved = warp(images[np.concatenate([support, query])], *w)
            t_warp = time.perf_counter() - t0
            for n, model in models.items():
                t0 = time.perf_counter()
                e = model.transform(moved)
                seconds[n, w] += t_warp + time.perf_counter() - t0
                per_model[n][w] = (e[: len(support)], e[len(support) :])
        embedded.append(per_model)
        if (run + 1) % 20 == 0:
            print(f"embedded {run + 1} runs", flush=True)
    return embedded, seconds


def score_rows(rows: list, embedded: list, embed_seconds: dict) -> dict:
    """Accuracy (mean, 95% CI over runs) and seconds per run of each row; the
    seconds count warping and embedding the run's images for every model and
    warp the row uses, and its decision."""
    scores = {}
    n_runs = len(embedded)
    for name, members, warp_set, kind, assignment in rows:
        warps = WARP_SETS[warp_set]
        hits = []
        tic = time.perf_counter()
        for per_model in embedded:
            if kind in ("tim", "ptmap"):
                cost = transductive(kind, [per_model[m] for m in members], warps)
            else:
                per = [distances(per_model[m], warps, kind) for m in members]
                cost = per[0] if len(members) == 1 else ensemble(per)
            hits.append(accuracy(cost, assignment))
        decide = time.perf_counter() - tic
        embed = sum(embed_seconds[m, w] for m in members for w in warps)
        h = np.asarray(hits)
        scores[name] = {
            "mean": float(h.mean()),
            "ci95": float(1.96 * h.std(ddof=1) / np.sqrt(h.size)),
            "n_runs": int(h.size),
            "seconds_per_run": (decide + embed) / n_runs,
        }
        print(
            f"{name}: {100 * h.mean():.1f} ± {100 * scores[name]['ci95']:.1f}",
            flush=True,
        )
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["select", "final"])
    ap.add_argument("--models", default=None, help="comma-separated names")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-home", default=str(DATA))
    ap.add_argument(
        "--merge",
        action="store_true",
        help="add to the stage's recorded rows (recorded warp choice only)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    default = "base-28,wg50-28,wg100-28" if args.stage == "select" else "wg50-28"
    names = (args.models or default).split(",")
    paths = {n: MODELS / f"lake_{args.stage}_{n}.safetensors" for n in names}
    models = {n: MetaModel.load(p) for n, p in paths.items()}
    out = RESULTS / "lake_deploy.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    if args.merge:
        check_mergeable(report, args)
    rechoose = args.stage == "select" and not args.merge
    chosen = None if rechoose else report["select"]["chosen_warps"]
    images, y, groups, drawer = load_split(args.stage, Path(args.data_home), args.seed)
    runs = within_alphabet_runs(y, groups, drawer, args.runs, args.seed)
    warps = ALL_WARPS if rechoose else sorted(set(WARP_SETS[chosen]) | {IDENTITY})
    embedded, embed_seconds = embed_runs(models, images, runs, warps)
    rows = inductive_rows(args.stage, chosen, names, args.merge)
    scores = score_rows(rows, embedded, embed_seconds)
    if rechoose:
        chosen = choose(scores, names)
        print(f"chosen warp set: {chosen}", flush=True)
    scores.update(score_rows(chosen_rows(chosen, names), embedded, embed_seconds))
    section = {
        "models": {n: str(p) for n, p in paths.items()},
        "runs": args.runs,
        "seed": args.seed,
        "chosen_warps": chosen,
        "scores": scores,
    }
    if args.merge:
        section = merged(report[args.stage], section)
    report[args.stage] = section
    report["warp_sets"] = {k: [list(w) for w in v] for k, v in WARP_SETS.items()}
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_deploy.md").write_text(table(report))
    print(table(report))


def check_mergeable(report: dict, args) -> None:
    """Exit unless `args` can add to the recorded section of its stage."""
    recorded = report.get(args.stage)
    if recorded is None or "select" not in report:
        raise SystemExit(f"--merge: no recorded {args.stage} section (and select)")
    for key in ("runs", "seed"):
        if recorded[key] != getattr(args, key):
            raise SystemExit(
                f"--merge: --{key} {getattr(args, key)} differs from the "
                f"recorded {args.stage} section's {recorded[key]}"
            )


def merged(recorded: dict, new: dict) -> dict:
    """`recorded` with the rows and models of `new` added; rows already
    recorded are kept, and the mean accuracies recomputed for them compared
    (listed under ``merged``)."""
    out = {**recorded, "scores": dict(recorded["scores"])}
    out["models"] = {**recorded["models"], **new["models"]}
    added, same, differed = [], [], []
    for name, v in new["scores"].items():
        old = recorded["scores"].get(name)
        if old is None:
            out["scores"][name] = v
            added.append(name)
        elif np.isclose(old["mean"], v["mean"]):
            same.append(name)
        else:
            differed.append({"row": name, "recorded": old["mean"], "now": v["mean"]})
            print(f"differs from the record: {name}: {old['mean']} -> {v['mean']}")
    out["merged"] = [
        *recorded.get("merged", []),
        {
            "models": list(new["models"]),
            "warp_sets": sorted({"none", new["chosen_warps"]}),
            "added": len(added),
            "reproduced": len(same),
            "differed": differed,
        },
    ]
    print(f"merged: {len(added)} rows added, {len(same)} reproduced", flush=True)
    return out


def choose(scores: dict, names: list[str]) -> str:
    """The warp set whose embedding-averaged inductive accuracy, averaged over
    the select models, is highest."""
    means = {
        s: np.mean([scores[f"{n} | {s} | emb"]["mean"] for n in names])
        for s in WARP_SETS
    }
    return max(means, key=means.get)


def _group(name: str) -> int:
    return 2 if "prior" in name else 1 if "transductive" in name else 0


def table(report: dict) -> str:
    """Markdown: one table per stage, inductive rows (the human comparison)
    first, then transductive, then the one-to-one assignment rows."""
    lines = [
        "Lake et al. (2015) within-alphabet runs, deployment-time variants "
        "(`benchmarks/lake_deploy.py`; no new meta-training). *select*: "
        "`lake_select_*` models (25 background alphabets), runs on the 5 "
        "held-out background alphabets, where the warp set is chosen; *final*: "
        "`lake_final_*` models (all of background), runs on evaluation. "
        "Accuracy in %, ± 95% CI over runs; s/run: warping and embedding the "
        "run's 40 images (every warp and model the row uses) and the decision, "
        "one thread. Warps: shiftP = the 8 shifts of P px (28 px scale) and the "
        "identity; rot10/rot5 = ±10°/±5°; scale10 = ×0.9, ×1.1. emb: embeddings "
        "averaged over warps; dist: squared distances averaged over warp pairs; "
        "centred: support mean subtracted, unit norm. *Assignment* rows use "
        "that each run has exactly one query per character (a one-to-one "
        "matching), which Lake et al.'s subjects (one query per trial) did not "
        "know: not a human comparison. PT-MAP (Sinkhorn with equal class "
        "sizes) and TIM (marginal entropy) also favour balanced query classes.",
    ]
    for stage in ("select", "final"):
        r = report.get(stage)
        if r is None:
            continue
        lines += [
            "",
            f"**{stage}** ({r['runs']} runs, seed {r['seed']}; models: "
            + ", ".join(f"`{p}`" for p in r["models"].values())
            + f"; chosen warp set: {r['chosen_warps']})",
            "",
            "| deployment | model(s) | warps | decision | accuracy | runs | s/run |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in sorted(r["scores"], key=_group):
            v = r["scores"][name]
            model, warps, decision = name.split(" | ")
            kind = ["inductive", "transductive", "assignment (prior)"][_group(name)]
            lines.append(
                f"| {kind} | {model} | {warps} | {decision} | "
                f"{100 * v['mean']:.1f} ± {100 * v['ci95']:.1f} | {v['n_runs']} | "
                f"{v['seconds_per_run']:.2f} |"
            )
    for d in report.get("decisions", []):
        lines += ["", f"**Decision rule** (recorded {d['recorded']}): {d['rule']}"]
        if "outcome" in d:
            lines += ["", f"Outcome: {d['outcome']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
