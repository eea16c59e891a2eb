"""Baseline++ (Chen, Liu, Kira, Wang & Huang, "A Closer Look at Few-shot
Classification", ICLR 2019).

Supervised pre-training on all base classes, as :mod:`.pretrain`, but with a
cosine classifier: the score of class ``j`` is a learnt scale times the cosine
between the embedding and the class's weight vector. Bounding the scores this
way makes the classifier reduce intra-class variation of the embedding. At
deployment the head is dropped and queries go to the nearest prototype by
cosine similarity, scaled by the same learnt temperature. That departs from
the paper, which trains a new cosine classifier on the support set's
embeddings at test time (the prototypes need no step size, iterations or
seed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .pretrain import Pretrain

__all__ = ["BaselinePlusPlus", "cosine_classifier_logits"]

INITIAL_SCALE = 10.0


def cosine_classifier_logits(
    embeddings: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Scaled cosine similarities of embeddings and class weight vectors.

    Parameters
    ----------
    embeddings : Tensor of shape (batch, dim)
    weight : Tensor of shape (n_classes, dim)
    scale : Tensor of shape ()

    Returns
    -------
    Tensor of shape (batch, n_classes)
        ``scale * <x / ||x||, w_j / ||w_j||>``.
    """
    return scale * (F.normalize(embeddings, dim=-1) @ F.normalize(weight, dim=-1).T)


class BaselinePlusPlus(Pretrain):
    """Baseline++: cosine-classifier pre-training, then cosine prototypes.

    Meta-parameters: ``head_weight`` (one row per base class, initialised as
    ``torch.nn.Linear``'s weight; no bias) and ``scale``, the classifier's
    temperature, learnt from 10. Chen et al. fix the scale (2 below 200 base
    classes, 10 above, with weight normalisation); here it is learnt, and the
    learnt value also scales the cosine prototype scores at deployment, so
    ``predict_proba`` has the temperature the classifier found.

    Parameters
    ----------
    distance : {"cosine", "euclidean"}, default="cosine"
        Distance of the nearest-prototype deployment (and validation).
    feature_norm : {None, "l2", "cl2n"}, default=None
        Normalisation of the embeddings at deployment (SimpleShot), see
        :class:`~skmeta.meta.algorithms.protonet.ProtoNet`.
    """

    name = "baseline++"
    summary = (
        "Baseline++: pre-training with a cosine classifier, then cosine prototypes"
    )

    def __init__(self, distance: str = "cosine", feature_norm: str | None = None):
        super().__init__(distance=distance, feature_norm=feature_norm)

    def meta_parameters(self, net, embedding_dim, n_classes):
        head = torch.nn.Linear(embedding_dim, n_classes, bias=False)
        return {
            "head_weight": head.weight.detach(),
            "scale": torch.tensor(INITIAL_SCALE),
        }

    def head_logits(self, net, x):
        return cosine_classifier_logits(
            net(x), net.extra["head_weight"], net.extra["scale"]
        )
