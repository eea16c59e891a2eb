"""
=============================================
Hard episodes: new classes of one group
=============================================

Random episodes mix classes from everywhere: a Greek letter beside an arrow
beside a box-drawing symbol. A deployed model often meets the harder case, new
classes that resemble each other: characters of one alphabet, products of one
department, species of one genus.
:class:`~skmeta.model_selection.EpisodicSplit` draws such episodes when it is
given ``groups``: each episode's classes then come from one group. (With a
second column, the *source* of each row, the support also comes from one
source and the queries from another: Lake et al.'s one-shot runs on Omniglot
are ``groups=np.c_[alphabet, drawer]``, see :doc:`/user_guide/evaluation`.)
"""

# %%
# Glyphs, and the script of each character
# ----------------------------------------
# :func:`~skmeta.datasets.make_glyphs` returns the character of each class; its
# Unicode name gives its script (Latin, Greek, Cyrillic, ...). Everything else
# (arrows, boxes, mathematical signs) forms one group of symbols.
import unicodedata

import matplotlib.pyplot as plt
import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from skmeta import EpisodicScoreDisplay, FewShotClassifier, MetaFeatureExtractor
from skmeta.datasets import make_glyphs

X, y, characters = make_glyphs(
    n_classes=200, n_samples_per_class=15, random_state=0, return_characters=True
)
SCRIPTS = ("LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "GEORGIAN")
script_of_class = np.array(
    [
        next((s for s in SCRIPTS if unicodedata.name(c, "").startswith(s)), "symbol")
        for c in characters
    ]
)
base = y < 120
X_new, y_new = X[~base], y[~base]
script = script_of_class[y_new]  # the group of each row
print({s: len(np.unique(y_new[script == s])) for s in np.unique(script)})

# %%
# Meta-train on the base classes
# ------------------------------
# A short ProtoNet run; the benchmarks train far longer.
model = (
    MetaFeatureExtractor(
        input_shape=(1, 28, 28),
        backbone="conv4_strided",
        n_way=10,
        k_shot=1,
        n_query=5,
        max_iter=250,
        random_state=0,
    )
    .fit(X[base], y[base])
    .meta_model_
)
estimators = {
    "protonet": FewShotClassifier(pretrained=model),
    "raw pixels (1-NN)": KNeighborsClassifier(1),
}

# %%
# Random episodes against episodes within one script
# --------------------------------------------------
# The same estimators, 5-way episodes at 1, 2 and 5 shots, drawn first from all
# the new classes, then from the classes of one script at a time (a script
# with fewer than 5 new classes is never drawn).
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
settings = dict(k_shot=[1, 2, 5], n_way=5, n_query=5, n_episodes=60, random_state=0)
EpisodicScoreDisplay.from_estimators(estimators, X_new, y_new, ax=axes[0], **settings)
EpisodicScoreDisplay.from_estimators(
    estimators, X_new, y_new, ax=axes[1], groups=script, **settings
)
axes[0].set_title("random 5-way episodes")
axes[1].set_title("5-way episodes within one script")
fig.tight_layout()
plt.show()

# %%
# Within one script the characters look more alike; here accuracy is lower at
# every shot, for the meta-trained model and for the pixels alike. That is the
# figure to report when the deployed classes resemble each other.
# ``cross_val_score(..., groups=script)`` and ``GridSearchCV(...).fit(X, y,
# groups=script)`` with an ``EpisodicSplit`` draw the same kind of episodes.
# Under scikit-learn's metadata routing pass ``params={"groups": script}``
# instead, after ``clf.set_fit_request(groups=False)`` (the skmeta estimators'
# ``fit`` takes groups too; :doc:`/user_guide/evaluation`).
