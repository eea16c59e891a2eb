"""Meta-learning methods, by name."""

from __future__ import annotations

from .base import Algorithm, LabelledBatch, TaskBatch
from .pretrain import Pretrain
from .protonet import ProtoNet

__all__ = ["ALGORITHMS", "Algorithm", "LabelledBatch", "TaskBatch", "make_algorithm"]

ALGORITHMS = {"protonet": ProtoNet, "pretrain": Pretrain}


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
