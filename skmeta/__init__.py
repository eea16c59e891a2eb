"""skmeta: meta-learning as scikit-learn estimators.

Meta-train a torch backbone on many small N-way K-shot episodes, then use it
through ordinary scikit-learn estimators:

- :class:`MetaFeatureExtractor` -- embeddings that transfer to unseen classes;
- :class:`FewShotClassifier` -- learns new classes from a few examples each;
- :class:`FewShotRegressor` -- follows a new regression task from a few points;
- :class:`EpisodicSplit` and :func:`episodic_score` -- episodic evaluation
  through ``cross_val_score`` / ``GridSearchCV``;
- :class:`MetaModel` -- the immutable, saveable result of meta-training.
"""

from ._classifier import FewShotClassifier
from ._extractor import MetaFeatureExtractor
from ._regressor import FewShotRegressor
from .meta.model import MetaModel
from .model_selection import EpisodicSplit, episodic_score

__version__ = "0.1.0.dev0"

__all__ = [
    "EpisodicSplit",
    "FewShotClassifier",
    "FewShotRegressor",
    "MetaFeatureExtractor",
    "MetaModel",
    "episodic_score",
    "__version__",
]
