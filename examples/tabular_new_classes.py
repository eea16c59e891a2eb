"""Meta-learning on tabular rows: recognise new kinds of records from 3 examples.

Rows are plain feature vectors (no input_shape): backbone="auto" picks an MLP.
Meta-train on some classes, then a FewShotClassifier adapts to classes it never
saw -- compared with a k-nearest-neighbours classifier on the raw features, on
the same episodes.

Run: ``python examples/tabular_new_classes.py`` (a few seconds).
"""

from sklearn.datasets import make_classification
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmeta import FewShotClassifier, episodic_score

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
meta = FewShotClassifier(
    n_way=10, k_shot=3, n_query=10, max_iter=800, random_state=0
).fit(X[base], y[base])

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
print(f"5-way 3-shot on 20 unseen classes: meta-learnt {few_shot}, raw 1-NN {raw}")
