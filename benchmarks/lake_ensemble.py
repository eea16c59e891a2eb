"""Two half-budget models as one, on Lake et al.'s runs (issue 15, part 8).

The ninth try at the within-alphabet one-shot target (95.5%). The budget
(2,400 CPU s of meta-training) is split between two members of the
``lake_runs.py`` recipe (lr 4e-3, strided Conv4, rot90, 28 px, one thread)
with other seeds, each with half the iterations, deployed as one model:
``MetaModel.from_module`` of a module that concatenates the members'
embeddings (:class:`Concatenated`), so that ``test_time_shifts``, the
inductive nearest-prototype rule and PT-MAP run on the joint embedding
through the public API. Ensembles of few-shot networks (Dvornik et al.
2019) gained more than longer training of one network at equal cost; a
two-model ensemble here, at twice the budget, gained 0.2 points
(``lake_deploy.py``).

- ``train``: one member (``--seed``), so that the two train side by side on
  two cores: ``--max-iter`` iterations (select), or within ``2,400 / 2`` CPU
  s priced by ``lake_runs.probe_budget``'s probes (final).
- ``select``: the ensemble of the members of ``--name`` (seeds 0 and 1,
  10,000 iterations each, 25 background alphabets) against the single
  model of the same episodes and 20,000 iterations (``--single``, from
  ``lake_augment.py``) on 400 runs of the 5 held-out alphabets (run seeds 0
  to 3), deployed inductive+shifts and PT-MAP+shifts at
  ``lake_transductive.py``'s chosen settings. **Rule, written before
  scoring:** the ensemble passes when it beats the single model by more
  than 1 point on both; of the episode shapes that pass (20-way 5-query
  against ``lr4-28-20k``, 40-way 2-query against ``w40q2-20k``), the best
  mean of the two goes to ``final``.
  Neither passed: on the 400 held-out runs the 20-way ensemble lost 1.38
  and 0.66 points to its single model, the 40-way one 1.71 and 0.49; two
  networks of half the iterations each were weaker than one trained twice
  as long, so ``final`` was not run.
- ``final``: the ensemble of the final members (all of ``background``) on
  200 ``evaluation`` runs (run seeds 0 and 1): inductive+shifts, PT-MAP+shifts
  and TIM+shifts at the chosen settings; and 300 random 5-way and 20-way
  1-shot episodes, inductive+shifts.

    python benchmarks/lake_ensemble.py train --stage select --name e20-10k \\
        --seed 0 --max-iter 10000  # and --seed 1, side by side
    python benchmarks/lake_ensemble.py select --name e20-10k --single lr4-28-20k
    python benchmarks/lake_ensemble.py train --stage final --name e20-full --seed 0
    python benchmarks/lake_ensemble.py final --name e20-full

Writes ``results/lake_ensemble.{json,md}``; members go to
``/tmp/models/lake_<stage>_<name>-m<seed>.safetensors`` (not in git).
"""

from __future__ import annotations

import argparse
import json
import warnings

import lake_augment
import lake_runs
import torch
from omniglot_methods import random_episodes, score

from skmeta import MetaModel

RESULTS = lake_augment.RESULTS
SHIFTS = (1, 2, 3)
MEMBERS = (0, 1)  # the members' seeds
RUN_SEEDS = {"select": (0, 1, 2, 3), "final": (0, 1)}


class Concatenated(torch.nn.Module):
    """The members' embeddings side by side: ``(batch, C, H, W) ->
    (batch, sum of the members' embedding widths)``.

    Parameters
    ----------
    nets : list of MetaNet
        The members' networks (:meth:`MetaModel.network`), each taking flat
        rows.
    """

    def __init__(self, nets) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.flatten(1)
        return torch.cat([net(rows) for net in self.nets], dim=1)


def member_path(stage: str, name: str, seed: int):
    return lake_runs.MODELS / f"lake_{stage}_{name}-m{seed}.safetensors"


def ensemble(stage: str, name: str) -> MetaModel:
    """The members of `name` as one model (protonet deployment)."""
    members = [MetaModel.load(member_path(stage, name, s)) for s in MEMBERS]
    nets = [m.network() for m in members]
    return MetaModel.from_module(Concatenated(nets), members[0].input_shape)


def train(args) -> None:
    """Meta-train one member and record its cost."""
    members = len(MEMBERS)
    recipe = argparse.Namespace(
        stage=args.stage,
        name=f"{args.name}-m{args.seed}",
        within=0.0,
        image_size=28,
        width=None,
        n_way=args.n_way,
        n_query=args.n_query,
        lr=4e-3,
        cpu_budget=args.cpu_budget / members,
        max_iter=args.max_iter,
        probe_iter=60,
        seed=args.seed,
        segment_minutes=None,
    )
    train_rows, _ = lake_augment.data(args.stage, args.data_home, 0)
    model, training = lake_runs.train(recipe, *train_rows)
    model.meta_model_.save(member_path(args.stage, args.name, args.seed))
    member = {"n_way": args.n_way, "n_query": args.n_query, **training}
    update(("members", f"{args.stage}/{recipe.name}"), member)


def deployments() -> dict:
    chosen = lake_augment.chosen_transductive()
    return {
        "inductive+shifts": (None, None),
        "ptmap+shifts": ("ptmap", chosen["ptmap"]),
        "tim+shifts": ("tim", chosen["tim"]),
    }


def evaluate(args) -> None:
    """``select`` or ``final``: score the ensemble (and, for select, the
    single model) on the stage's runs, and apply the rule."""
    _, (X, y, groups, drawer) = lake_augment.data(args.stage, args.data_home, 0)
    runs = lake_augment.runs_of(y, groups, drawer, RUN_SEEDS[args.stage], 100)
    models = {f"ensemble {args.name}": ensemble(args.stage, args.name)}
    used = dict(deployments())
    if args.stage == "select":
        path = lake_runs.MODELS / f"lake_select_{args.single}.safetensors"
        models[f"single {args.single}"] = MetaModel.load(path)
        del used["tim+shifts"]
    record = {"runs": len(runs), "run_seeds": list(RUN_SEEDS[args.stage])}
    for label, model in models.items():
        scores = record.setdefault("scores", {}).setdefault(label, {})
        for deployment, (transductive, params) in used.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                s = score(model, transductive, X, y, runs, SHIFTS, params)
            scores[f"lake {deployment}"] = s
            print(f"  {label} lake {deployment}: {100 * s['mean']:.2f}%", flush=True)
        if args.stage == "final":
            for task, way in (("20w1s", 20), ("5w1s", 5)):
                episodes = random_episodes(y, way, 1, 300, 0)
                s = score(model, None, X, y, episodes, SHIFTS)
                scores[f"{task} inductive+shifts"] = s
                print(f"  {label} {task}: {100 * s['mean']:.2f}%", flush=True)
    if args.stage == "select":
        ens, single = record["scores"].values()
        gains = {k: ens[k]["mean"] - single[k]["mean"] for k in single}
        record["gains"] = gains
        record["passed"] = all(g > 0.01 for g in gains.values())
    update((f"{args.stage}/{args.name}",), record)


def update(keys: tuple, record: dict) -> None:
    """Set `record` at the path `keys` of the report read afresh (another
    member may have written since this run began), and write it."""
    out = RESULTS / "lake_ensemble.json"
    report = json.loads(out.read_text()) if out.exists() else {}
    node = report
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = record
    out.write_text(json.dumps(report, indent=1))
    (RESULTS / "lake_ensemble.md").write_text(table(report))
    print(table(report))


def table(report: dict) -> str:
    lines = [
        "Two half-budget models as one (`benchmarks/lake_ensemble.py`): the "
        "members' embeddings concatenated (`MetaModel.from_module`), with "
        "`test_time_shifts=(1, 2, 3)`. *select*: 25 background alphabets, "
        "scored on 400 runs of 5 held-out ones; *final*: all of background, "
        "200 evaluation runs. Accuracy in % ± 95% CI; s/run on one thread.",
        "",
        "Members:",
        "",
        "| member | episodes | it | CPU s |",
        "|---|---|---|---|",
    ]
    for name, m in report.get("members", {}).items():
        lines.append(
            f"| {name} | {m['n_way']}-way, {m['n_query']} queries | "
            f"{m['iterations']} | {m['cpu_seconds']:.0f} |"
        )
    for stage, r in report.items():
        if stage == "members":
            continue
        verdict = ""
        if "passed" in r:
            gains = ", ".join(f"{k} {100 * g:+.2f}" for k, g in r["gains"].items())
            verdict = f"; gains {gains}; passed: {r['passed']}"
        lines += [
            "",
            f"**{stage}** ({r['runs']} runs{verdict})",
            "",
            "| model | deployment | accuracy | s/run |",
            "|---|---|---|---|",
        ]
        for label, scores in r["scores"].items():
            for deployment, s in scores.items():
                lines.append(
                    f"| {label} | {deployment} | {100 * s['mean']:.2f} ± "
                    f"{100 * s['ci95']:.2f} | {s['seconds_per_episode']:.2f} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["train", "select", "final"])
    ap.add_argument("--stage", choices=["select", "final"], default=None)
    ap.add_argument("--name", required=True)
    ap.add_argument("--seed", type=int, default=0, help="train: the member's seed")
    ap.add_argument("--max-iter", type=int, default=None)
    ap.add_argument("--cpu-budget", type=float, default=2400.0)
    ap.add_argument("--n-way", type=int, default=20)
    ap.add_argument("--n-query", type=int, default=5)
    ap.add_argument("--single", default="lr4-28-20k", help="select's single model")
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.action == "train":
        if args.stage is None:
            ap.error("train needs --stage select or final")
        return train(args)
    args.stage = args.action
    evaluate(args)


if __name__ == "__main__":
    main()
