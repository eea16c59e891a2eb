"""skmeta: meta-learning as scikit-learn estimators.

Meta-train a torch backbone on many small N-way K-shot episodes, then use it
through ordinary scikit-learn estimators:

- :class:`MetaFeatureExtractor` -- embeddings that transfer to unseen classes;
- :class:`FewShotClassifier` -- learns new classes from a few examples each;
- :class:`FewShotRegressor` -- follows a new regression task from a few points;
- :class:`EpisodicSplit` and :func:`episodic_score` -- episodic evaluation
  through ``cross_val_score`` / ``GridSearchCV``;
- :class:`MetaTrainingDisplay` and :class:`EpisodicScoreDisplay` -- learning
  curves and accuracy against shots, plotted with matplotlib;
- :class:`MetaModel` -- the immutable, saveable result of meta-training;
- :func:`available_methods` -- the meta-learning methods, with a summary each;
- :func:`show_versions` -- what skmeta runs on, for bug reports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

# Imported on first use (PEP 562), so that ``import skmeta.meta`` -- the torch
# layer alone -- does not load scikit-learn, SciPy and pandas.
_LAZY = {
    "EpisodicScoreDisplay": ".display",
    "EpisodicSplit": ".model_selection",
    "FewShotClassifier": "._classifier",
    "FewShotRegressor": "._regressor",
    "MetaFeatureExtractor": "._extractor",
    "MetaModel": ".meta.model",
    "MetaTrainingDisplay": ".display",
    "TaskSplit": ".model_selection",
    "available_methods": "._tasks",
    "episodic_score": ".model_selection",
    "show_versions": "._show_versions",
}

if TYPE_CHECKING:  # pragma: no cover
    from ._classifier import FewShotClassifier
    from ._extractor import MetaFeatureExtractor
    from ._regressor import FewShotRegressor
    from ._show_versions import show_versions
    from ._tasks import available_methods
    from .display import EpisodicScoreDisplay, MetaTrainingDisplay
    from .meta.model import MetaModel
    from .model_selection import EpisodicSplit, TaskSplit, episodic_score


if not TYPE_CHECKING:  # type checkers see the imports above; a typo stays an error

    def __getattr__(name: str) -> object:
        if name in _LAZY:
            value = getattr(importlib.import_module(_LAZY[name], __name__), name)
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "EpisodicScoreDisplay",
    "EpisodicSplit",
    "FewShotClassifier",
    "FewShotRegressor",
    "MetaFeatureExtractor",
    "MetaModel",
    "MetaTrainingDisplay",
    "TaskSplit",
    "available_methods",
    "episodic_score",
    "show_versions",
    "__version__",
]
