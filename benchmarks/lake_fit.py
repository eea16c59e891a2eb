"""Does a Lake select model underfit or overfit? Its within-alphabet runs
on the select stage's own training alphabets against the held-out ones.

The select stage (``lake_augment.py select``) meta-trains on 25 of
``background``'s alphabets and scores Lake's within-alphabet one-shot runs
(20 characters of one alphabet, support and queries from two drawers) on
the 5 it held out. This script draws the same kind of runs on the 25
training alphabets too, whose very images the model meta-trained on, and
scores both inductively without test-time shifts. Far higher on the
training alphabets: the model overfits, and transfer is the limit; about
as high: it underfits, and more of the same meta-training or a model that
tells one alphabet's characters apart better is the lever.

    python benchmarks/lake_fit.py w40q2-boxa-el16-s4-20k w40q2-boxa-el16-s4-80k

The models are ``/tmp/models/lake_select_<name>.safetensors`` (written by
``lake_augment.py select``, whose ``--ink box-adaptive`` rows they expect).
Prints one line per model and split; nothing is written (the figures are
in ``RESULTS.md``, forty-first try).

``--ensemble`` scores instead every subset of the named models as one, on
the held-out alphabets' runs (300, run seed 0 unless ``--runs`` and
``--run-seed`` say otherwise; inductive without shifts):
each member's squared distances divided by their mean over the run's
queries and support, then summed (cosine models: of L2-normalised
embeddings). Paired against the first name (``RESULTS.md``, forty-second
round):

    python benchmarks/lake_fit.py --ensemble w40q2-boxa-el16-s4-20k \
        w40q2-boxa-el16-s4-80k w40q2-boxa-el16-s4-w96
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import lake_augment
import lake_runs
import numpy as np
import torch
from omniglot_methods import score, within_alphabet_runs

from skmeta import MetaModel


def training_drawers(data_home: str, held_out_groups, y) -> np.ndarray:
    """The drawer of each meta-training row of the select stage
    (``lake_augment.data`` returns the held-out rows' only), from the data
    file, whose rows ``load_omniglot`` keeps in order (checked on `y`)."""
    raw = np.load(f"{data_home}/background.npz")
    training = ~np.isin(raw["alphabet"], np.unique(held_out_groups))
    if not np.array_equal(raw["labels"][training], y):
        raise SystemExit("the data file's rows are not in load_omniglot's order")
    return raw["drawer"][training]


def ensembles(args, held_out) -> None:
    """Every subset of ``args.names`` as one model on the held-out runs."""
    X, y, groups, drawer = held_out
    embeddings = {}
    for name in args.names:
        model = MetaModel.load(lake_runs.MODELS / f"lake_select_{name}.safetensors")
        E = torch.from_numpy(model.transform(X))
        if model.config["method_params"].get("distance") == "cosine":
            E = torch.nn.functional.normalize(E, dim=1)
        embeddings[name] = E
    runs = within_alphabet_runs(y, groups, drawer, args.runs, args.run_seed)

    def accuracies(members) -> np.ndarray:
        out = []
        for support, query in runs:
            total = 0
            for name in members:
                E = embeddings[name]
                d = torch.cdist(E[query], E[support]).pow(2)
                total = total + d / d.mean()
            truth = torch.arange(len(query))
            out.append((total.argmin(1) == truth).float().mean().item())
        return np.array(out)

    first = accuracies(args.names[:1])
    for k in range(1, len(args.names) + 1):
        for members in itertools.combinations(args.names, k):
            acc = accuracies(members)
            diff = acc - first
            margin = 196 * diff.std(ddof=1) / np.sqrt(diff.size) if k > 1 else 0.0
            print(
                f"{' + '.join(members)}: {100 * acc.mean():.2f}% "
                f"(paired {100 * diff.mean():+.2f}, margin {margin:.2f})",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help="select models' names")
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    ap.add_argument("--runs", type=int, help="100; with --ensemble 300")
    ap.add_argument("--run-seed", type=int, help="131; with --ensemble 0")
    ap.add_argument("--ink", default="box-adaptive")
    ap.add_argument("--ensemble", action="store_true")
    args = ap.parse_args()
    defaults = (300, 0) if args.ensemble else (100, 131)
    args.runs = defaults[0] if args.runs is None else args.runs
    args.run_seed = defaults[1] if args.run_seed is None else args.run_seed
    torch.set_num_threads(1)
    (X, y, groups), held_out = lake_augment.data(
        "select", args.data_home, 0, 28, args.ink
    )
    if args.ensemble:
        return ensembles(args, held_out)
    drawer = training_drawers(args.data_home, held_out[2], y)
    splits = {"training alphabets": (X, y, groups, drawer), "held-out": held_out}
    for name in args.names:
        model = MetaModel.load(lake_runs.MODELS / f"lake_select_{name}.safetensors")
        for split, (Xs, ys, gs, ds) in splits.items():
            runs = within_alphabet_runs(ys, gs, ds, args.runs, args.run_seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                s = score(model, None, Xs, ys, runs, None)
            print(
                f"{name} {split}: {100 * s['mean']:.2f} ± {100 * s['ci95']:.2f}% "
                f"({s['n_episodes']} runs)",
                flush=True,
            )


if __name__ == "__main__":
    main()
