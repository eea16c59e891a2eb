"""Tabular rows: new kinds of records from a few examples, against plain
scikit-learn baselines on the same episodes (README's feature-rows line).

Three tables from ``make_classification``, each split into base classes (for
meta-training) and new classes (for the episodes):

- ``narrow``: 60 classes of 50 rows in 40 features, 8 informative; base
  classes 0-39; 5-way 3-shot.
- ``wide``: 300 classes of 20 rows in 200 features (30 informative, 20
  redundant), every column scaled by 10**U(-3, 4) and shifted, two columns
  constant; base classes 0-199; 5-way 5-shot. A reviewer's table.
- ``two_modes``: 150 classes of 40 rows in 40 features (10 informative), two
  clusters per class, bent by a non-linear map; base classes 0-99; 5-way
  5-shot.

Rows: 1-NN and nearest centroid on the raw features, nearest centroid and
logistic regression after a scaler fitted on the base classes (a scaler
fitted on each episode's few support rows would cripple them), and skmeta's
ProtoNet at the defaults (an MLP of 256-256 hidden units), ProtoNet with a
linear embedding (``backbone_params={"hidden_sizes": ()}``; also its
embedding before a 1-NN classifier, in a Pipeline), and ``pretrain`` at the
defaults. Every estimator is scored on the same 300 episodes of the
new classes, 10 queries per class. Nothing was tuned on the new classes.

    python benchmarks/tabular.py      # writes results/tabular.{json,md}
    python benchmarks/tabular.py --out /tmp/trial   # a trial, elsewhere
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmeta import FewShotClassifier, MetaFeatureExtractor, episodic_score


def narrow():
    X, y = make_classification(
        n_samples=3000,
        n_features=40,
        n_informative=8,
        n_redundant=0,
        n_classes=60,
        n_clusters_per_class=1,
        class_sep=2.0,
        random_state=0,
    )
    return X, y, y < 40, 3


def wide():
    rng = np.random.default_rng(0)
    X, y = make_classification(
        n_samples=6000,
        n_features=200,
        n_informative=30,
        n_redundant=20,
        n_classes=300,
        n_clusters_per_class=1,
        class_sep=2.0,
        random_state=0,
    )
    scales = 10.0 ** rng.uniform(-3, 4, size=200)
    X = X * scales + rng.normal(0, 1, 200) * scales * 5
    X[:, 5], X[:, 77] = 7.0, 0.0
    return X, y, y < 200, 5


def two_modes():
    X, y = make_classification(
        n_samples=6000,
        n_features=40,
        n_informative=10,
        n_redundant=0,
        n_classes=150,
        n_clusters_per_class=2,
        class_sep=2.5,
        random_state=1,
    )
    X = np.tanh(X / 2) * 3 + 0.3 * X**2 / 4
    return X, y, y < 100, 5


TABLES = {"narrow": narrow, "wide": wide, "two_modes": two_modes}
METHODS = {
    "skmeta ProtoNet, defaults (MLP 256-256)": {},
    "skmeta ProtoNet, linear embedding": {"backbone_params": {"hidden_sizes": ()}},
    "skmeta pretrain, defaults (MLP 256-256)": {"method": "pretrain"},
}


def baselines(X_base):
    scaler = FrozenEstimator(StandardScaler().fit(X_base))
    return {
        "1-NN, raw features": KNeighborsClassifier(1),
        "nearest centroid, raw features": NearestCentroid(),
        "nearest centroid, scaler fitted on base classes": make_pipeline(
            scaler, NearestCentroid()
        ),
        "logistic regression (C=0.1), scaler fitted on base classes": make_pipeline(
            scaler, LogisticRegression(C=0.1, max_iter=1000)
        ),
    }


def run_table(name):
    X, y, base, k_shot = TABLES[name]()
    X = X.astype(np.float32)
    X_base, y_base, X_new, y_new = X[base], y[base], X[~base], y[~base]
    episodes = dict(n_way=5, k_shot=k_shot, n_query=10, n_episodes=300, random_state=0)
    rows = {}
    for label, estimator in baselines(X_base).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NearestCentroid's constant columns
            score = episodic_score(estimator, X_new, y_new, **episodes)
        rows[label] = {"mean": score.mean, "ci95": score.ci95, "seconds": None}
        print(f"{name}: {label}: {score}", flush=True)
    for label, params in METHODS.items():
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning and the like
            model = FewShotClassifier(random_state=0, **params).fit(X_base, y_base)
        seconds = time.perf_counter() - tic
        score = episodic_score(
            FewShotClassifier(pretrained=model.meta_model_), X_new, y_new, **episodes
        )
        rows[label] = {"mean": score.mean, "ci95": score.ci95, "seconds": seconds}
        print(f"{name}: {label}: {score} ({seconds:.1f} s)", flush=True)
        if "linear" in label:  # its embedding in a Pipeline, before 1-NN
            label = "skmeta linear embedding, then 1-NN (a Pipeline)"
            pipeline = make_pipeline(
                MetaFeatureExtractor(pretrained=model.meta_model_),
                KNeighborsClassifier(1),
            )
            score = episodic_score(pipeline, X_new, y_new, **episodes)
            rows[label] = {"mean": score.mean, "ci95": score.ci95, "seconds": None}
            print(f"{name}: {label}: {score}", flush=True)
    return {
        "task": f"5-way {k_shot}-shot, 300 episodes, 10 queries per class",
        "base_classes": int(np.unique(y_base).size),
        "new_classes": int(np.unique(y_new).size),
        "features": int(X.shape[1]),
        "rows": rows,
    }


def markdown(report):
    lines = [
        "# Few-shot classification of table rows against scikit-learn baselines",
        "",
        "`python benchmarks/tabular.py`; every estimator on the same 300 episodes "
        "of the new classes, 10 queries per class, mean ± 95% CI; skmeta's "
        "meta-training (1,000 iterations at the defaults) on the base classes. "
        "Seconds: meta-training.",
        "",
    ]
    for name, table in report.items():
        lines += [
            f"## {name}: {table['features']} features, {table['base_classes']} base "
            f"and {table['new_classes']} new classes; {table['task']}",
            "",
            "| estimator | accuracy | seconds |",
            "|---|---|---|",
        ]
        for label, row in table["rows"].items():
            seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
            lines.append(
                f"| {label} | {100 * row['mean']:.2f} ± {100 * row['ci95']:.2f}% "
                f"| {seconds} |"
            )
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "results",
        help="folder of tabular.json and tabular.md (default: benchmarks/results)",
    )
    args = parser.parse_args()
    report = {name: run_table(name) for name in TABLES}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tabular.json").write_text(json.dumps(report, indent=1))
    (args.out / "tabular.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
