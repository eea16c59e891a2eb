"""Supervised pre-training baseline (e.g. Chen et al., "A Closer Look at Few-shot
Classification", 2019).

Meta-training is plain classification of all base classes with a linear head on
the backbone; deployment drops the head and classifies by nearest prototype, as
:class:`~skmeta.meta.algorithms.protonet.ProtoNet` does. It is the baseline every
meta-learning method should beat.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Algorithm, LabelledBatch
from .protonet import ProtoNet

__all__ = ["Pretrain"]


class Pretrain(ProtoNet):
    """Supervised pre-training on all base classes, then nearest prototype.

    Validation (``early_stopping``) is episodic, with prototypes on held-out
    classes, as for ProtoNet. One meta-training iteration is one mini-batch of
    as many rows as one episodic meta-batch holds, so equal ``max_iter`` means
    equal compute.

    Parameters
    ----------
    distance : {"euclidean", "cosine"}, default="euclidean"
        Distance used at deployment (and in validation).
    feature_norm : {None, "l2", "cl2n"}, default=None
        Normalisation of the embeddings at deployment (SimpleShot), see
        :class:`~skmeta.meta.algorithms.protonet.ProtoNet`.
    """

    name = "pretrain"
    summary = "supervised pre-training on all base classes, then prototypes"
    episodic = False
    # ProtoNet's 4e-3 was chosen for episodes; plain mini-batch training
    # (this, Baseline++, RFS) keeps the base rate
    default_learning_rate = Algorithm.default_learning_rate
    settings = ("distance", "feature_norm")  # no margin: not an episodic loss

    def __init__(self, distance: str = "euclidean", feature_norm: str | None = None):
        super().__init__(distance, feature_norm)

    def meta_parameters(self, net, embedding_dim, n_classes):
        head = torch.nn.Linear(embedding_dim, n_classes)
        params = {"head_weight": head.weight.detach(), "head_bias": head.bias.detach()}
        return {**super().meta_parameters(net, embedding_dim, n_classes), **params}

    def head_logits(self, net, x: torch.Tensor) -> torch.Tensor:
        """Scores of rows `x` ``(batch, n_features)`` for every base class,
        ``(batch, n_classes)``: the linear head on the embedding."""
        return F.linear(net(x), net.extra["head_weight"], net.extra["head_bias"])

    def loss(self, net, batch: LabelledBatch):
        logits = self.head_logits(net, batch.x)
        loss = F.cross_entropy(logits, batch.y)
        accuracy = (logits.argmax(1) == batch.y).float().mean().item()
        return loss, {"accuracy": accuracy}
