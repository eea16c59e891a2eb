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
"""

from __future__ import annotations

import argparse
import warnings

import lake_augment
import lake_runs
import numpy as np
import torch
from omniglot_methods import score, within_alphabet_runs

from skmeta import MetaModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help="select models' names")
    ap.add_argument("--data-home", default=str(lake_runs.DATA))
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--run-seed", type=int, default=131)
    ap.add_argument("--ink", default="box-adaptive")
    args = ap.parse_args()
    torch.set_num_threads(1)
    (X, y, groups), held_out = lake_augment.data(
        "select", args.data_home, 0, 28, args.ink
    )
    # the training rows' drawers (data() returns the held-out rows' only),
    # from the data file whose rows load_omniglot keeps in order
    raw = np.load(f"{args.data_home}/background.npz")
    training = ~np.isin(raw["alphabet"], np.unique(held_out[2]))
    if not np.array_equal(raw["labels"][training], y):
        raise SystemExit("the data file's rows are not in load_omniglot's order")
    drawer = raw["drawer"][training]
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
