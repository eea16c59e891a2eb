"""FEAT: few-shot embedding adaptation with a set-to-set function (Ye, Hu,
Zhan & Sha, CVPR 2020).

ProtoNet's prototypes are adapted to the task before queries are scored:
one self-attention layer over the task's prototypes (the paper's chosen
set function, a Transformer layer with one head) lets each class's
prototype move according to the other classes of the same task, e.g. to
stress what tells two similar characters of one alphabet apart. Queries are
not transformed, as in the paper::

    N = LayerNorm(P)                                   (n_classes, d)
    A = softmax((N W_q^T)(N W_k^T)^T / sqrt(d))        (n_classes, n_classes)
    P' = P + (A N W_v^T) W_o^T + b_o                   (n_classes, d)
    logit(q, c) = -||q - P'_c||^2 / temperature

Adaptation uses the support set only, so the method is inductive: each
query is scored alone against the adapted prototypes.

In meta-training the paper adds a contrastive regulariser weighted by
``balance`` (off by default here, see below): the set function is applied
to all the rows of each class of an episode (support and queries), their
means are the classes' centres, and each row's embedding is classified
against its episode's centres with ``aux_temperature`` (as the paper's code
does it).

Differences from the paper, which adapts a pretrained backbone:

- The layer norm comes before the attention (a pre-norm residual, Xiong et
  al. 2020), not after the residual sum, and the output layer starts at
  zero, so the set function starts as the identity: a fresh model scores
  as ProtoNet does. The paper's
  post-norm layer normalises the adapted prototypes but not the queries;
  meta-trained from scratch on Omniglot (40-way episodes, a Conv4 ending
  in a 4x4 map, 1,024 features) it reached 18% training accuracy after 300
  iterations, where ProtoNet reached 86% and this form 85%
  (``benchmarks/RESULTS.md``).
- The attention's matrices are used divided by ``sqrt(dim)`` (stored
  larger), so that Adam's steps move them as slowly as the backbone's
  normalised layers; stored as used they diverged at 4e-3.
- No dropout in the attention layer (a method's loss here has no
  train-only randomness).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..net import MetaNet, embed_rows
from ..setting_checks import check_real_setting
from .base import Algorithm, TaskBatch
from .protonet import (
    embed_support_and_query,
    prototype_logits,
    prototypes,
    prototypes_of_tasks,
)

__all__ = ["FEAT", "set_to_set"]

WEIGHTS = ("query", "key", "value", "out")


def set_to_set(extra, sets: torch.Tensor) -> torch.Tensor:
    """FEAT's set function: one self-attention layer over each set, added to
    the set's members (pre-norm residual).

    Parameters
    ----------
    extra : mapping of str to Tensor
        The meta-parameters ``feat_query``, ``feat_key``, ``feat_value``,
        ``feat_out`` (each of shape (dim, dim), used divided by ``sqrt(dim)``),
        ``feat_out_bias``, ``feat_norm_weight`` and ``feat_norm_bias`` (each
        of shape (dim,)).
    sets : Tensor of shape (n_sets, set_size, dim)
        Each set's members (e.g. one task's prototypes); sets are
        transformed independently, and a set's result does not depend on
        the order of its members.

    Returns
    -------
    Tensor of shape (n_sets, set_size, dim)
    """
    dtype = sets.dtype
    dim = sets.shape[-1]
    # the matrices are stored sqrt(dim) times larger than used, so that an
    # Adam step (about the learning rate on every entry) moves their outputs
    # as little as a layer with batch norm after it: stored as used, the
    # layer diverged at the recipe's rate of 4e-3 (benchmarks/RESULTS.md)
    w = {k: extra[f"feat_{k}"].to(dtype) / math.sqrt(dim) for k in WEIGHTS}
    normed = F.layer_norm(
        sets,
        (dim,),
        extra["feat_norm_weight"].to(dtype),
        extra["feat_norm_bias"].to(dtype),
    )
    scores = (normed @ w["query"].mT) @ (normed @ w["key"].mT).mT / math.sqrt(dim)
    attended = torch.softmax(scores, -1) @ (normed @ w["value"].mT)
    return sets + F.linear(attended, w["out"], extra["feat_out_bias"].to(dtype))


class FEAT(Algorithm):
    """FEAT: prototypes adapted to each task by self-attention.

    Parameters
    ----------
    temperature : float, default=1.0
        Squared distances are divided by it before the softmax (the paper
        uses 32-64 for ResNet features of width 640; 1 keeps ProtoNet's
        logits for the small backbones here).
    balance : float, default=0.0
        Weight of the contrastive regulariser in the meta-training loss
        (0: none). The paper's code uses 0.01 to 1 by backbone and shots.
        Off by default: on Omniglot it cost 1.8 times an iteration and lost
        1.7 points at 1,500 iterations (``benchmarks/RESULTS.md``, FEAT).
    aux_temperature : float, default=16.0
        Temperature of the regulariser's logits (the paper's code's value
        for its ConvNet at 1 shot); another value needs ``balance > 0``.

    Notes
    -----
    The set function's weights are meta-parameters sized by the embedding
    (``net.extra["feat_*"]``, ``4 dim^2 + 3 dim`` numbers), so test-time
    quarter turns (wider embeddings) cannot serve this method; test-time
    shifts (averaged embeddings) can. The transductive methods refuse it:
    they would score the unadapted prototypes.
    """

    name = "feat"
    summary = "FEAT: prototypes adapted to the task by self-attention (set-to-set)"
    settings = ("temperature", "balance", "aux_temperature")
    classifies_embeddings = True
    fixed_embedding_width = True

    def __init__(
        self,
        temperature: float = 1.0,
        balance: float = 0.0,
        aux_temperature: float = 16.0,
    ) -> None:
        self.temperature = check_real_setting("temperature", temperature)
        self.balance = check_real_setting("balance", balance, allow_zero=True)
        self.aux_temperature = check_real_setting("aux_temperature", aux_temperature)
        if self.aux_temperature != 16.0 and not self.balance:
            raise ValueError(
                f"aux_temperature={aux_temperature!r} scales the regulariser's "
                "logits, and the regulariser is off (balance=0): give balance > 0 "
                "with it, or leave aux_temperature at its default."
            )

    def meta_parameters(self, net, embedding_dim, n_classes):
        d = embedding_dim
        # used divided by sqrt(d) (set_to_set): standard normal entries are
        # the paper's projections (std about sqrt(1 / d)); the output layer
        # starts at zero, so the set function starts as the identity and the
        # model's first scores are ProtoNet's
        params = {f"feat_{k}": torch.randn(d, d) for k in ("query", "key", "value")}
        params["feat_out"] = torch.zeros(d, d)
        params["feat_out_bias"] = torch.zeros(d)
        params["feat_norm_weight"] = torch.ones(d)
        params["feat_norm_bias"] = torch.zeros(d)
        return params

    def _logits(self, query: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
        """Scores ``(..., n_query, n_classes)`` of queries against adapted
        prototypes."""
        return prototype_logits(query, protos, "euclidean") / self.temperature

    def _episode_logits(self, net: MetaNet, batch: TaskBatch):
        """Logits of a meta-batch's queries against its adapted prototypes.

        Returns
        -------
        logits : Tensor of shape (n_tasks * n_query_rows, n_way)
        targets : Tensor of shape (n_tasks * n_query_rows,)
        support : Tensor of shape (n_tasks, n_way * k_shot, dim)
        query : Tensor of shape (n_tasks, n_query_rows, dim)
            The embeddings, for the regulariser.
        """
        support, query = embed_support_and_query(net, batch)
        protos = prototypes_of_tasks(support, batch.support_y, batch.n_way)
        logits = self._logits(query, set_to_set(net.extra, protos))
        targets = batch.query_y.repeat(batch.n_tasks)
        return logits.reshape(-1, batch.n_way), targets, support, query

    def _contrastive(self, net, batch, support, query) -> torch.Tensor:
        """The paper's regulariser, as its code computes it: all the rows of
        a class (support and queries) transformed as one set, their mean the
        class's centre, and each row's embedding (untransformed) classified
        against its episode's centres.

        Parameters
        ----------
        net : MetaNet
        batch : TaskBatch
        support : Tensor of shape (n_tasks, n_way * k_shot, dim)
        query : Tensor of shape (n_tasks, n_query_rows, dim)

        Returns
        -------
        Tensor of shape ()
            The mean cross-entropy over every row of every task.
        """
        n_tasks, dim = batch.n_tasks, support.shape[-1]
        rows = torch.cat([support, query], 1)  # (n_tasks, n_rows, dim)
        labels = torch.cat([batch.support_y, batch.query_y])
        order = torch.argsort(labels, stable=True)  # class-major, equal counts
        per_class = rows[:, order].reshape(n_tasks * batch.n_way, -1, dim)
        moved = set_to_set(net.extra, per_class)
        centres = moved.view(n_tasks, batch.n_way, -1, dim).mean(2)
        logits = prototype_logits(rows, centres, "euclidean") / self.aux_temperature
        return F.cross_entropy(logits.reshape(-1, batch.n_way), labels.repeat(n_tasks))

    def loss(self, net: MetaNet, batch: TaskBatch):
        """ProtoNet's loss on the adapted prototypes, plus ``balance`` times
        the regulariser; returns the loss (a scalar Tensor) and the queries'
        accuracy."""
        logits, targets, support, query = self._episode_logits(net, batch)
        accuracy = (logits.argmax(1) == targets).float().mean().item()
        loss = F.cross_entropy(logits, targets)
        if self.balance:
            loss = loss + self.balance * self._contrastive(net, batch, support, query)
        return loss, {"accuracy": accuracy}

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        """Embed the support, average each class, adapt the prototypes.

        Parameters
        ----------
        net : MetaNet
        support_x : Tensor of shape (n_support, n_features)
        support_y : Tensor of shape (n_support,), int64 in ``0..n_classes-1``
        n_classes : int
            Classes without rows (declared by ``partial_fit``'s ``classes``)
            take no part in the attention: the other classes' prototypes are
            those of a support set without them.
        batch_size : int, default=100
            Rows per forward pass when embedding.

        Returns
        -------
        dict
            ``"prototypes"``: Tensor of shape (n_classes, dim), float64, the
            adapted prototypes (zero for a class without rows).
        """
        with torch.no_grad():
            embeddings = embed_rows(net, support_x, batch_size).double()
            protos = prototypes(embeddings, support_y, n_classes)
            has_rows = torch.bincount(support_y, minlength=n_classes) > 0
            protos[has_rows] = set_to_set(net.extra, protos[has_rows][None])[0]
            return {"prototypes": protos}

    def predict(self, net, state, query_x, batch_size=100):
        """Scores of query rows: minus their squared distances to the adapted
        prototypes over ``temperature``.

        Parameters
        ----------
        net : MetaNet
        state : dict
            From :meth:`adapt`.
        query_x : Tensor of shape (n_query, n_features)
        batch_size : int, default=100

        Returns
        -------
        Tensor of shape (n_query, n_classes), float64
            In float64 so that a row's scores do not depend on its batch.
        """
        query = embed_rows(net, query_x, batch_size).double()
        return self._logits(query, state["prototypes"].double())

    def episode_metrics(self, net, batch):
        # the deployed scores, without the regulariser
        with torch.no_grad():
            logits, targets, _, _ = self._episode_logits(net, batch)
            loss = F.cross_entropy(logits, targets).item()
        return loss, (logits.argmax(1) == targets).float().mean().item()
