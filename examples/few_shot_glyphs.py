"""Few-shot classification of characters never seen in training.

Meta-trains Prototypical Networks on 400 glyph classes (characters rendered from
the fonts that ship with matplotlib), then:

1. classifies 5 new characters from one example each with FewShotClassifier;
2. evaluates 5-way 1-shot accuracy over 200 episodes, as papers report it;
3. plugs the meta-learnt embedding into an ordinary scikit-learn Pipeline;
4. saves the model to a file and loads it back.

Run: ``python examples/few_shot_glyphs.py`` (about a minute on 2 CPU cores).
Set ``SKMETA_EXAMPLE_QUICK=1`` for a few-second smoke run.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from skmeta import FewShotClassifier, MetaFeatureExtractor, MetaModel, episodic_score
from skmeta.datasets import make_glyphs

QUICK = os.environ.get("SKMETA_EXAMPLE_QUICK") == "1"
N_CLASSES, MAX_ITER = (60, 20) if QUICK else (500, 1500)

X, y, characters = make_glyphs(
    N_CLASSES, 20, 28, random_state=0, return_characters=True
)
base = y < int(0.8 * N_CLASSES)  # meta-train on 80% of the characters
X_base, y_base, X_new, y_new = X[base], y[base], X[~base], y[~base]

extractor = MetaFeatureExtractor(
    input_shape=(1, 28, 28),
    backbone="conv4_strided",
    k_shot=1,
    n_query=5,
    max_iter=MAX_ITER,
    random_state=0,
    verbose=0 if QUICK else 1,
).fit(X_base, y_base)
model = extractor.meta_model_
print(model, f"meta-trained in {model.config['training']['elapsed']:.0f} s")

# 1. One example of each of five new characters is enough.
labels = np.array([characters[c] for c in y_new])  # string labels work too
five = np.unique(labels)[:5]
support = [np.flatnonzero(labels == c)[0] for c in five]
queries = np.flatnonzero(np.isin(labels, five))
queries = np.setdiff1d(queries, support)
clf = FewShotClassifier(pretrained=model).fit(X_new[support], labels[support])
print(
    "classes:",
    " ".join(clf.classes_),
    f"| accuracy on {len(queries)} queries: "
    f"{clf.score(X_new[queries], labels[queries]):.1%}",
)

# 2. The paper protocol: mean accuracy and 95% CI over random episodes.
result = episodic_score(
    FewShotClassifier(pretrained=model),
    X_new,
    y_new,
    n_way=5,
    k_shot=1,
    n_query=15,
    n_episodes=200,
    random_state=0,
)
print("5-way 1-shot on new characters:", result)

# 3. The embedding in a Pipeline; FrozenEstimator keeps it from being refit.
pipe = make_pipeline(FrozenEstimator(extractor), LogisticRegression(max_iter=1000))
scores = cross_val_score(pipe, X_new, y_new, cv=3)
print(f"logistic regression on meta-learnt features, 3-fold CV: {scores.mean():.1%}")

# 4. Save and load: weights in safetensors, nothing executed at load time.
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "glyphs.safetensors"
    model.save(path)
    reloaded = MetaModel.load(path)
    same = np.array_equal(reloaded.transform(X_new[:10]), model.transform(X_new[:10]))
    print(f"saved {path.stat().st_size / 1e6:.1f} MB; reloaded model identical: {same}")
