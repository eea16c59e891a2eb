"""The torch layer of skmeta: episodes, backbones, methods, the training loop and
:class:`MetaModel`. It imports no scikit-learn, so it can serve other front ends.
"""

from .model import MetaModel
from .train import TrainSettings, meta_train

__all__ = ["MetaModel", "TrainSettings", "meta_train"]
