"""Plots in scikit-learn's Display style, drawn with matplotlib.

- :class:`MetaTrainingDisplay` -- learning curves of meta-training (loss,
  metric, validation, the iteration early stopping kept), from an estimator's
  ``history_``;
- :class:`EpisodicScoreDisplay` -- few-shot score against shots or ways, with
  95% confidence bands, for several methods.

Each holds its data; ``plot(ax=None, ...)`` draws it and returns the display
with ``ax_``, ``figure_`` and the artists set, and the ``from_*`` class methods
compute the data and plot in one call.
"""

from ._episodic import EpisodicScoreDisplay
from ._training import MetaTrainingDisplay

__all__ = ["EpisodicScoreDisplay", "MetaTrainingDisplay"]
