"""Tune MAML's inner loop with GridSearchCV -- without meta-training again.

Meta-train MAML once on some glyph classes. Then ``inner_lr`` and ``inner_steps``
are ordinary hyperparameters of ``FewShotClassifier(pretrained=model)``: they only
change the adaptation that ``fit`` runs on each support set, so a grid search over
them, with episodes of the unseen classes as folds (``EpisodicSplit``), runs no
meta-training and shares one copy of the weights across all candidates.

Run: ``python examples/grid_search_inner_loop.py`` (about a minute on 2 cores).
Set ``SKMETA_EXAMPLE_QUICK=1`` for a few-second smoke run.
"""

import os
import time

from sklearn.model_selection import GridSearchCV

from skmeta import EpisodicSplit, FewShotClassifier, episodic_score
from skmeta.datasets import make_glyphs

QUICK = os.environ.get("SKMETA_EXAMPLE_QUICK") == "1"
N_CLASSES, MAX_ITER, EPISODES = (40, 10, 5) if QUICK else (300, 300, 40)

X, y = make_glyphs(N_CLASSES, 20, 28, random_state=0)
base = y < int(0.7 * N_CLASSES)
tune = (y >= int(0.7 * N_CLASSES)) & (y < int(0.85 * N_CLASSES))
test = y >= int(0.85 * N_CLASSES)  # three class-disjoint parts

maml = FewShotClassifier(
    method="maml",
    input_shape=(1, 28, 28),
    backbone="conv4_strided",
    n_way=5,
    k_shot=1,
    n_query=5,
    meta_batch_size=4,
    inner_lr=0.4,
    inner_steps=1,
    max_iter=MAX_ITER,
    random_state=0,
    verbose=0 if QUICK else 1,
).fit(X[base], y[base])
model = maml.meta_model_

search = GridSearchCV(
    FewShotClassifier(pretrained=model),
    {"inner_lr": [0.1, 0.4, 1.0], "inner_steps": [1, 3, 5]},
    cv=EpisodicSplit(
        n_way=5, k_shot=1, n_query=15, n_episodes=EPISODES, random_state=0
    ),
)
tic = time.perf_counter()
search.fit(X[tune], y[tune])
print(
    f"grid of {len(search.cv_results_['params'])} settings x {EPISODES} episodes "
    f"in {time.perf_counter() - tic:.1f} s, no meta-training"
)
for params, score in zip(
    search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
):
    print(f"  {params}: {score:.1%}")
print("best:", search.best_params_)

for name, clf in [
    ("meta-training setting", FewShotClassifier(pretrained=model)),
    ("tuned", search.best_estimator_),
]:
    result = episodic_score(
        clf,
        X[test],
        y[test],
        n_way=5,
        k_shot=1,
        n_episodes=EPISODES * 5,
        random_state=1,
    )
    print(f"5-way 1-shot on held-out classes, {name}: {result}")
