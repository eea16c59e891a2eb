"""Meta-learning methods, by name: the one registry.

Each method is one module of this package; this list is where it is
registered. Everything the estimators show about methods (the ``method``
options, their one-line summaries, which settings apply, which methods do
regression) is read from :data:`ALGORITHMS`.

Methods of other distributions join it through the ``skmeta.methods`` entry
points, loaded at the end of this module (:mod:`.plugins`).
"""

from __future__ import annotations

from .anil import ANIL
from .base import (
    AdaptationDiverged,
    AdaptationWarning,
    Algorithm,
    LabelledBatch,
    TaskBatch,
    map_tensors,
    task_targets,
)
from .baselinepp import BaselinePlusPlus
from .feat import FEAT
from .fomaml import FOMAML
from .frn import FRN
from .inner_loop import InnerLoopMethod
from .maml import MAML
from .mann import MANN
from .matching import MatchingNetworks
from .metaoptnet import MetaOptNet
from .metasgd import MetaSGD
from .plugins import load_plugins, settle_pending
from .pretrain import Pretrain
from .protomaml import ProtoMAML
from .protonet import ProtoNet
from .r2d2 import R2D2
from .relation import RelationNetworks
from .reptile import Reptile
from .rfs import RFS

__all__ = [
    "ALGORITHMS",
    "AdaptationDiverged",
    "AdaptationWarning",
    "Algorithm",
    "InnerLoopMethod",
    "LabelledBatch",
    "TaskBatch",
    "make_algorithm",
    "map_tensors",
    "settle_pending",
    "task_targets",
]

ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls
    for cls in (
        ProtoNet,
        Pretrain,
        BaselinePlusPlus,
        RFS,
        MAML,
        FOMAML,
        MetaSGD,
        ANIL,
        ProtoMAML,
        Reptile,
        MatchingNetworks,
        RelationNetworks,
        FEAT,
        FRN,
        R2D2,
        MetaOptNet,
        MANN,
    )
}


def make_algorithm(method: str, **settings) -> Algorithm:
    """Instantiate the method called `method` with its settings.

    Examples
    --------
    >>> make_algorithm("protonet", distance="cosine").distance
    'cosine'
    """
    settle_pending()
    if method not in ALGORITHMS:
        raise ValueError(
            f"method={method!r} is unknown; use one of {list(ALGORITHMS)}."
        )
    return ALGORITHMS[method](**settings)


# Last: a plugin's module imports this package (Algorithm, ProtoNet, ...).
load_plugins(ALGORITHMS, Algorithm)
