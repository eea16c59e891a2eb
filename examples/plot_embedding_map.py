"""
=====================================================
Novel classes in the meta-learnt embedding vs pixels
=====================================================

A meta-learnt embedding should separate classes it has *never seen*: that is
what lets a classifier learn them from one example each. Here a 2-D PCA map of
six novel glyph classes, computed from the raw pixels and from the embedding
that :class:`~skmeta.MetaFeatureExtractor` meta-trained on other classes.
"""

# %%
# Base and novel classes
# ----------------------
# Classes 0-99 are *base* classes, used for meta-training; classes 100-105
# are *novel*: the network never sees them.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from skmeta import MetaFeatureExtractor
from skmeta.datasets import make_glyphs

X, y = make_glyphs(n_classes=106, n_samples_per_class=15, random_state=0)
base = y < 100
X_novel, y_novel = X[~base], y[~base]

extractor = MetaFeatureExtractor(
    input_shape=(1, 28, 28),
    backbone="conv4_strided",
    n_way=10,
    k_shot=1,
    n_query=5,
    class_augmentation="rot90",
    max_iter=300,
    random_state=0,
).fit(X[base], y[base])

# %%
# Embed the novel classes and project both representations
# --------------------------------------------------------
# ``transform`` embeds rows with the meta-trained network; it is an ordinary
# scikit-learn transformer. The silhouette score (higher: tighter, better
# separated classes) is computed in the full space, not the 2-D projection.
Z_novel = extractor.transform(X_novel)
spaces = {
    f"raw pixels ({X_novel.shape[1]}-d)": X_novel.astype(float),
    f"meta-learnt embedding ({Z_novel.shape[1]}-d)": Z_novel,
}

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for ax, (title, features) in zip(axes, spaces.items(), strict=True):
    points = PCA(n_components=2, random_state=0).fit_transform(features)
    for label in np.unique(y_novel):
        mine = y_novel == label
        ax.scatter(*points[mine].T, s=18, label=f"class {label}")
    silhouette = silhouette_score(features, y_novel)
    ax.set_title(f"{title}\nsilhouette {silhouette:.2f}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
axes[1].legend(fontsize=8, loc="best")
plt.tight_layout()
plt.show()

# %%
# The six novel classes, one image each:
fig, axes = plt.subplots(1, 6, figsize=(6, 1.3))
for ax, label in zip(axes, np.unique(y_novel), strict=True):
    ax.imshow(X_novel[y_novel == label][0].reshape(28, 28), cmap="gray_r")
    ax.set_title(f"class {label}", fontsize=8)
    ax.axis("off")
plt.show()
