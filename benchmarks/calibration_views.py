"""Does the calibrated temperature carry over to test-time views? (issue 15,
part 7, with the views of issue 13's image rows.)

A ProtoNet meta-trained on Omniglot's ``background`` with ``calibrate=True``
records a temperature fitted on held-out classes' episodes, scored without
test-time views. This scores random 20-way 1-shot episodes of ``evaluation``
(15 queries a class) with and without ``test_time_shifts`` /
``test_time_turns``, and reports the expected calibration error (15 bins)
and the negative log-likelihood of ``softmax(scores / T)`` and of
``softmax(scores)``. The estimators drop the temperature where views are
given (``_classifier_outputs.py``); this is the measurement behind it.

    python benchmarks/calibration_views.py --data-home ../shared/data/omniglot
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.datasets import load_omniglot

RESULTS = Path(__file__).parent / "results"
VIEWS = {
    "none": {},
    "shifts 1": {"test_time_shifts": (1,)},
    "shifts 1-3": {"test_time_shifts": (1, 2, 3)},
    "dihedral turns": {"test_time_turns": "dihedral"},
}


def expected_calibration_error(proba, labels, bins=15) -> float:
    confidence, correct = proba.max(1), proba.argmax(1) == labels
    edges, total = np.linspace(0, 1, bins + 1), 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs(confidence[inside].mean() - correct[inside].mean())
            total += inside.mean() * gap
    return float(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default="../shared/data/omniglot")
    parser.add_argument("--max-iter", type=int, default=800)
    parser.add_argument("--episodes", type=int, default=60)
    parser.add_argument("--out", default=str(RESULTS / "calibration_views.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # the temperature-1 warning, on purpose
    background = load_omniglot("background", data_home=args.data_home)
    evaluation = load_omniglot("evaluation", data_home=args.data_home)
    tic = time.process_time()
    model = (
        MetaFeatureExtractor(
            calibrate=True,
            max_iter=args.max_iter,
            n_way=20,
            k_shot=1,
            n_query=5,
            input_shape=(1, 28, 28),
            random_state=0,
        )
        .fit(background.data, background.target)
        .meta_model_
    )
    temperature = model.config["calibration"]["temperature"]
    rows = []
    classes = np.unique(evaluation.target)
    for name, views in VIEWS.items():
        rng = np.random.default_rng(0)  # the same episodes for every row
        scores, labels = [], []
        for _ in range(args.episodes):
            chosen = rng.choice(classes, 20, replace=False)
            support, queries = [], []
            for c in chosen:
                order = rng.permutation(np.flatnonzero(evaluation.target == c))
                support.append(order[:1])
                queries.append(order[1:16])
            support, queries = np.concatenate(support), np.concatenate(queries)
            clf = FewShotClassifier(pretrained=model, **views)
            clf.fit(evaluation.data[support], evaluation.target[support])
            scores.append(clf.decision_function(evaluation.data[queries]))
            labels.append(np.searchsorted(clf.classes_, evaluation.target[queries]))
        scores, labels = np.concatenate(scores), np.concatenate(labels)
        row = {"views": name, "accuracy": float((scores.argmax(1) == labels).mean())}
        for key, t in (("T", temperature), ("1", 1.0)):
            proba = softmax(scores / t, axis=1)
            picked = proba[np.arange(len(labels)), labels]
            row[f"ece_{key}"] = expected_calibration_error(proba, labels)
            row[f"nll_{key}"] = float(-np.log(picked + 1e-12).mean())
        rows.append(row)
        print(row, flush=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "temperature": temperature,
        "max_iter": args.max_iter,
        "episodes": args.episodes,
        "cpu_seconds": time.process_time() - tic,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    lines = [
        f"# Calibration with test-time views ({report['date']}; T = "
        f"{temperature:.3f}, {args.max_iter} iterations, {args.episodes} "
        "20-way 1-shot episodes of evaluation)",
        "",
        "| views | accuracy | ECE with T | ECE with 1 | NLL with T | NLL with 1 |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['views']} | {100 * r['accuracy']:.2f}% | {100 * r['ece_T']:.2f}% | "
        f"{100 * r['ece_1']:.2f}% | {r['nll_T']:.3f} | {r['nll_1']:.3f} |"
        for r in rows
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
