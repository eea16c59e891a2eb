"""Meta-learning methods, by name."""

from __future__ import annotations

from .base import Algorithm, LabelledBatch, TaskBatch, map_tensors
from .maml import ANIL, FOMAML, MAML, MetaSGD, ProtoMAML
from .pretrain import Pretrain
from .protonet import ProtoNet
from .reptile import Reptile

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "LabelledBatch",
    "TaskBatch",
    "make_algorithm",
    "map_tensors",
]

ALGORITHMS = {
    "protonet": ProtoNet,
    "pretrain": Pretrain,
    "maml": MAML,
    "fomaml": FOMAML,
    "metasgd": MetaSGD,
    "anil": ANIL,
    "protomaml": ProtoMAML,
    "reptile": Reptile,
}


def make_algorithm(method: str, **settings) -> Algorithm:
    """Instantiate the method called `method` with its settings.

    Examples
    --------
    >>> make_algorithm("protonet", distance="cosine").distance
    'cosine'
    """
    if method not in ALGORITHMS:
        raise ValueError(
            f"method={method!r} is unknown; use one of {list(ALGORITHMS)}."
        )
    return ALGORITHMS[method](**settings)
