"""
================================================
Meta-training learning curves from ``history_``
================================================

Every fitted skmeta estimator keeps a record of its meta-training in
``history_``: the training loss and accuracy (averaged over the episodes since
the previous record), and, with ``early_stopping=True``, the same on episodes
of *validation classes* that meta-training never sees.
:class:`~skmeta.MetaTrainingDisplay` draws them, and marks the iteration whose
weights early stopping kept.
"""

# %%
# Meta-train Prototypical Networks on glyphs
# ------------------------------------------
# :func:`~skmeta.datasets.make_glyphs` renders characters from the fonts that
# ship with matplotlib: an Omniglot-like data set with no download. Here 80
# classes of 28x28 images, 15 images each; a quarter of the classes is held out
# for validation (``validation_fraction``), class-disjoint from training.
import matplotlib.pyplot as plt

from skmeta import MetaFeatureExtractor, MetaTrainingDisplay
from skmeta.datasets import make_glyphs

X, y = make_glyphs(n_classes=80, n_samples_per_class=15, random_state=0)
extractor = MetaFeatureExtractor(
    input_shape=(1, 28, 28),
    backbone="conv4_strided",
    n_way=5,
    k_shot=1,
    n_query=5,
    max_iter=150,
    early_stopping=True,
    validation_fraction=0.25,
    n_iter_no_change=10,
    random_state=0,
).fit(X, y)
print(f"{extractor.n_iter_} iterations; first records of history_:")
for record in extractor.history_[:3]:
    print({key: round(value, 3) for key, value in record.items()})

# %%
# Plot the curves
# ---------------
# One Axes per quantity: the loss, and the method's metric (accuracy for
# classification, MSE for regression). Validation curves are dashed.
display = MetaTrainingDisplay.from_estimator(extractor, name="protonet")
display.figure_.set_size_inches(9, 3.5)
plt.show()

# %%
# Several models on the same Axes
# -------------------------------
# ``ax=`` draws into existing Axes, and ``name=`` tells the models apart. Here
# the same meta-training with a four times smaller learning rate than
# ProtoNet's default (4e-3): same seed, hence the same validation classes and
# episodes, so the validation curves compare.
slower = MetaFeatureExtractor(
    input_shape=(1, 28, 28),
    backbone="conv4_strided",
    n_way=5,
    k_shot=1,
    n_query=5,
    max_iter=150,
    learning_rate=1e-3,
    early_stopping=True,
    validation_fraction=0.25,
    n_iter_no_change=10,
    random_state=0,
).fit(X, y)
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, estimator in [("lr 4e-3", extractor), ("lr 1e-3", slower)]:
    MetaTrainingDisplay.from_estimator(estimator, name=name, curves=["accuracy"], ax=ax)
ax.set_ylim(0, 1)
plt.tight_layout()
plt.show()
