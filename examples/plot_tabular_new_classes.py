"""
=============================================
New kinds of records in tabular data
=============================================

Meta-learning is not only for images. Rows of plain features (no
``input_shape``) get an MLP backbone (``backbone="auto"``). Meta-trained on
some classes, a :class:`~skmeta.FewShotClassifier` recognises classes it never
saw from a few labelled rows each -- compared here, on the same episodes, with
plain scikit-learn classifiers. On tables of few rows per class, the default
MLP (256-256 hidden units) overfits the base classes; a linear embedding
(``backbone_params={"hidden_sizes": ()}``, a learnt metric) transfers better,
and the baselines are strong: always compare (``benchmarks/results/tabular.md``).
"""

# %%
# Data: 60 classes, only 8 of 40 features informative
# ---------------------------------------------------
# Meta-training on classes 0-39 must learn which directions separate classes;
# classes 40-59 are new.
import matplotlib.pyplot as plt
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmeta import EpisodicScoreDisplay, FewShotClassifier

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
    n_way=10, k_shot=3, n_query=10, max_iter=300, random_state=0
).fit(X[base], y[base])
linear = FewShotClassifier(
    n_way=10,
    k_shot=3,
    n_query=10,
    max_iter=300,
    backbone_params={"hidden_sizes": ()},
    random_state=0,
).fit(X[base], y[base])
print(linear.meta_model_)

# %%
# Accuracy on the new classes against the number of classes per episode
# ---------------------------------------------------------------------
# ``n_way`` as a list varies the number of classes per episode instead of the
# shots; 3 labelled rows per class throughout. A scaler for the baselines is
# fitted on the base classes and frozen: fitted on each episode's few support
# rows, it would cripple them.
scaler = FrozenEstimator(StandardScaler().fit(X[base]))
display = EpisodicScoreDisplay.from_estimators(
    {
        "meta-learnt (protonet, MLP)": FewShotClassifier(pretrained=meta.meta_model_),
        "meta-learnt (protonet, linear)": FewShotClassifier(
            pretrained=linear.meta_model_
        ),
        "raw features, 1-NN": KNeighborsClassifier(n_neighbors=1),
        "raw features, nearest centroid": NearestCentroid(),
        "base-scaled, logistic regression": make_pipeline(
            scaler, LogisticRegression(max_iter=500)
        ),
    },
    X[~base],
    y[~base],
    k_shot=3,
    n_way=[2, 5, 10, 20],
    n_query=10,
    n_episodes=40,
    random_state=0,
)
display.ax_.set_title("3-shot accuracy on 20 unseen classes")
plt.show()
