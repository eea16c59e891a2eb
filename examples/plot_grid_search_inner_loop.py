"""
=====================================================
Heat map of a grid search over MAML's inner loop
=====================================================

Gradient-based methods (MAML and its family) adapt to a new task by a few SGD
steps on its support set, in ``fit``. With a meta-trained model,
``FewShotClassifier(pretrained=model)`` exposes that inner loop as ordinary
hyperparameters, ``inner_lr`` and ``inner_steps``, so
:class:`~sklearn.model_selection.GridSearchCV` can tune them -- with
:class:`~skmeta.model_selection.EpisodicSplit` folds, each an N-way K-shot episode of
classes unseen in meta-training. The search runs no meta-training: every
candidate shares one copy of the meta-learnt weights.
"""

# %%
# Meta-train MAML once
# --------------------
# Three class-disjoint parts: base classes for meta-training, tuning classes
# for the grid search, test classes for the final check.
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV

from skmeta import EpisodicSplit, FewShotClassifier, episodic_score
from skmeta.datasets import make_glyphs

X, y = make_glyphs(n_classes=90, n_samples_per_class=15, random_state=0)
base, tune, test = y < 60, (y >= 60) & (y < 75), y >= 75

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
    max_iter=60,
    random_state=0,
).fit(X[base], y[base])
model = maml.meta_model_

# %%
# Grid search on episodes of the tuning classes
# ---------------------------------------------
inner_lr = [0.1, 0.4, 1.0]
inner_steps = [1, 3, 5]
search = GridSearchCV(
    FewShotClassifier(pretrained=model),
    {"inner_lr": inner_lr, "inner_steps": inner_steps},
    cv=EpisodicSplit(n_way=5, k_shot=1, n_query=10, n_episodes=10, random_state=0),
)
tic = time.perf_counter()
search.fit(X[tune], y[tune])
print(
    f"{len(search.cv_results_['params'])} settings x 10 episodes in "
    f"{time.perf_counter() - tic:.1f} s; best: {search.best_params_}"
)

# %%
# The heat map
# ------------
# ``cv_results_`` lists the candidates in the order of ``ParameterGrid``
# (sorted parameter names, the last one varying fastest): here ``inner_lr``
# outer, ``inner_steps`` inner.
#
# In the first column the accuracy does not depend on ``inner_lr``. The head of
# the gradient-based classifiers starts the same for every class (one
# meta-learnt vector shared by all), so one inner step changes only the head,
# and the classes then differ by a step proportional to ``inner_lr``: the
# order of the logits, hence every prediction, is the same for any
# ``inner_lr``. More
# steps adapt the whole network (:doc:`/user_guide/tuning`).
scores = search.cv_results_["mean_test_score"].reshape(len(inner_lr), len(inner_steps))
fig, ax = plt.subplots(figsize=(5, 4))
image = ax.imshow(scores, cmap="viridis", origin="lower")
ax.set_xticks(range(len(inner_steps)), labels=inner_steps)
ax.set_yticks(range(len(inner_lr)), labels=inner_lr)
ax.set_xlabel("inner_steps")
ax.set_ylabel("inner_lr")
for (i, j), score in np.ndenumerate(scores):
    ax.text(j, i, f"{score:.0%}", ha="center", va="center", color="white")
fig.colorbar(image, ax=ax, label="mean 5-way 1-shot accuracy")
ax.set_title("MAML inner loop (meta-trained with lr 0.4, 1 step)", fontsize=10)
plt.tight_layout()
plt.show()

# %%
# Check on classes that took no part in the choice
# ------------------------------------------------
# The grid search saw the tuning classes; the test classes give an unbiased
# estimate of the chosen setting against the meta-training one.
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
        n_query=10,
        n_episodes=30,
        random_state=1,
    )
    print(f"5-way 1-shot on test classes, {name}: {result}")
