"""Tabular rows: new kinds of records from 3 examples (README's feature-rows line).

60 classes of ``make_classification`` in 40 features, 8 of them informative;
ProtoNet with the MLP backbone (``backbone="auto"``) meta-trained on classes
0-39 (800 iterations), then 5-way 3-shot episodes of the 20 unseen classes
(300 episodes, 10 queries per class) against a 1-nearest-neighbour classifier
on the standardised raw features, on the same episodes. The gallery's
``plot_tabular_new_classes.py`` is the same workflow, smaller and plotted.

    python benchmarks/tabular.py      # writes results/tabular.{json,md}
    python benchmarks/tabular.py --out /tmp/trial   # a trial, elsewhere
"""

import argparse
import json
import time
from pathlib import Path

from sklearn.datasets import make_classification
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmeta import FewShotClassifier, episodic_score

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument(
    "--out",
    type=Path,
    default=Path(__file__).parent / "results",
    help="folder of tabular.json and tabular.md (default: benchmarks/results)",
)
args = parser.parse_args()

# 60 classes in a 40-feature space where only 8 directions carry class signal.
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
base = y < 40
tic = time.perf_counter()
meta = FewShotClassifier(
    n_way=10, k_shot=3, n_query=10, max_iter=800, random_state=0
).fit(X[base], y[base])
seconds = time.perf_counter() - tic

kwargs = dict(n_way=5, k_shot=3, n_query=10, n_episodes=300, random_state=0)
few_shot = episodic_score(
    FewShotClassifier(pretrained=meta.meta_model_), X[~base], y[~base], **kwargs
)
raw = episodic_score(
    make_pipeline(StandardScaler(), KNeighborsClassifier(1)),
    X[~base],
    y[~base],
    **kwargs,
)
line = f"5-way 3-shot on 20 unseen classes: meta-learnt {few_shot}, raw 1-NN {raw}"
print(line)
results = args.out
results.mkdir(parents=True, exist_ok=True)
report = {
    "task": "5-way 3-shot, 300 episodes, 10 queries per class",
    "meta_training_seconds": seconds,
    "meta_learnt": {"mean": few_shot.mean, "ci95": few_shot.ci95},
    "raw_1nn": {"mean": raw.mean, "ci95": raw.ci95},
}
(results / "tabular.json").write_text(json.dumps(report, indent=1))
(results / "tabular.md").write_text(
    "| 5-way 3-shot on 20 unseen classes | accuracy |\n|---|---|\n"
    f"| ProtoNet, MLP, 800 iterations ({seconds:.0f} s) | {few_shot} |\n"
    f"| 1-NN on the raw features | {raw} |\n"
)
