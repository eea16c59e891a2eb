"""Proto-MAML (Triantafillou et al. 2020): the head starts from the support
prototypes, as the linear layer equivalent to a ProtoNet, then the inner loop
fine-tunes everything. Any number of ways; classification only."""

from __future__ import annotations

from .maml import MAML
from .protonet import prototypes_of_tasks

__all__ = ["ProtoMAML"]


class ProtoMAML(MAML):
    """Proto-MAML: MAML with the head started from the support prototypes.

    Parameters
    ----------
    inner_lr, first_order, inner_batch_size
        As for :class:`~.maml.MAML`.
    inner_steps : int, default=None
        Inner SGD steps. None means 1: the head started from the prototypes
        has a different row per class, so the first step adapts the body too.
    regression : bool, default=False
        Not supported (prototypes need classes).
    """

    name = "protomaml"
    summary = "Proto-MAML: head started from the support prototypes"
    supports_regression = False
    head_from_support = True
    # the head from the prototypes differs between classes: the first step
    # moves the body too
    classification_steps = 1

    def meta_parameters(self, net, embedding_dim, n_classes):
        return {}

    def initial_head(self, params, support_emb, support_y, n_classes):
        # -||q - p||^2 = 2 p.q - ||p||^2 + (a term equal for every class)
        protos = prototypes_of_tasks(support_emb, support_y, n_classes)
        return 2 * protos, -(protos * protos).sum(-1)
