"""Prototypical Networks (Snell, Swersky & Zemel, 2017).

A class is the mean embedding of its support rows (its prototype); a query is
scored by minus its squared Euclidean distance to each prototype, or by a scaled
cosine similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..net import MetaNet, embed_rows
from ..setting_checks import check_real_setting
from .base import Algorithm, TaskBatch
from .feature_norm import check_feature_norm, normalize_features, stored_base_mean

__all__ = [
    "ProtoNet",
    "embed_support_and_query",
    "prototype_logits",
    "prototypes",
    "prototypes_of_tasks",
]

DISTANCES = ("euclidean", "cosine")


def prototypes(
    embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Mean embedding per class.

    Parameters
    ----------
    embeddings : Tensor of shape (n, dim)
    labels : Tensor of shape (n,), int64 in ``0..n_classes-1``
    n_classes : int

    Returns
    -------
    Tensor of shape (n_classes, dim)
    """
    return prototypes_of_tasks(embeddings.unsqueeze(0), labels, n_classes)[0]


def prototypes_of_tasks(
    embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Mean embedding per class, for several tasks with the same labels.

    Parameters
    ----------
    embeddings : Tensor of shape (n_tasks, n, dim)
    labels : Tensor of shape (n,), int64 in ``0..n_classes-1``
    n_classes : int

    Returns
    -------
    Tensor of shape (n_tasks, n_classes, dim)
    """
    n_tasks, _, dim = embeddings.shape
    sums = embeddings.new_zeros(n_tasks, n_classes, dim)
    sums.index_add_(1, labels, embeddings)
    counts = torch.bincount(labels, minlength=n_classes).clamp_min(1)
    return sums / counts.unsqueeze(1).to(embeddings.dtype)


def embed_support_and_query(net, batch: TaskBatch):
    """Embeddings of a meta-batch's support and query rows, in two passes.

    Two passes (as easyfsl and LibFewShot do), so in training batch norm
    normalises each set with its own statistics. One pass over both is the
    same method, but its activations are twice as large: past glibc's 32 MiB
    mmap ceiling (20-way 5-shot 5-query on 28x28 max-pool Conv4: 40 MB), every
    step then page-faults its memory in afresh, 1.46x slower
    (benchmarks/README.md).

    Returns
    -------
    support : Tensor of shape (n_tasks, n_support, dim)
    query : Tensor of shape (n_tasks, n_query_rows, dim)
    """
    n_tasks, n_support, n_features = batch.support_x.shape
    support = net(batch.support_x.reshape(-1, n_features))
    query = net(batch.query_x.reshape(-1, n_features))
    support = support.view(n_tasks, n_support, -1)
    return support, query.view(n_tasks, -1, support.shape[-1])


def prototype_logits(
    queries: torch.Tensor,
    protos: torch.Tensor,
    distance: str,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits of queries against prototypes, batched over leading dimensions.

    Parameters
    ----------
    queries : Tensor of shape (..., n_query, dim)
    protos : Tensor of shape (..., n_classes, dim)
    distance : {"euclidean", "cosine"}
    scale : Tensor of shape (), optional
        Temperature multiplying cosine similarities.

    Returns
    -------
    Tensor of shape (..., n_query, n_classes)
    """
    if distance == "cosine":
        sims = F.normalize(queries, dim=-1) @ F.normalize(protos, dim=-1).mT
        return sims * scale
    # ||q - p||^2 expanded; clamped at 0 against round-off.
    q2 = (queries * queries).sum(-1, keepdim=True)
    p2 = (protos * protos).sum(-1).unsqueeze(-2)
    return -(q2 - 2 * queries @ protos.mT + p2).clamp_min(0)


class ProtoNet(Algorithm):
    """Prototypical Networks.

    Parameters
    ----------
    distance : {"euclidean", "cosine"}, default="euclidean"
        Squared Euclidean distance as in the paper, or cosine similarity times a
        learnt temperature (meta-parameter ``"scale"``, initialised at 10).
    feature_norm : {None, "l2", "cl2n"}, default=None
        Normalisation of support and query embeddings at deployment (``adapt``
        and ``predict``), as SimpleShot (Wang et al. 2019): ``"l2"`` divides
        each by its norm, ``"cl2n"`` first subtracts the mean embedding of the
        base classes, which meta-training stores with the model
        (:mod:`.feature_norm`). The meta-training loss and its validation are
        unchanged. An adaptation setting: a pretrained model takes it anew.
    margin : float, default=0.0
        Large-margin meta-training (as Wang et al. 2018, "Large margin
        few-shot learning"): the meta-training loss subtracts ``margin``
        from each query's logit for its own class (adds it to the squared
        distance, or to minus the scaled cosine), so an episode is won only
        by that margin. Deployment and validation score the plain logits.
        0 is the paper's ProtoNet. On Omniglot's within-alphabet one-shot
        runs of held-out alphabets: ``benchmarks/RESULTS.md``, forty-second
        try.

    Attributes
    ----------
    keeps_base_mean : bool
        True: meta-training stores the base classes' mean embedding
        (``net.extra["base_mean"]``) for ``feature_norm="cl2n"``.
    """

    name = "protonet"
    summary = "Prototypical Networks: nearest class mean of the embeddings"
    settings = ("distance", "feature_norm", "margin")
    adaptation_settings = ("feature_norm",)
    keeps_base_mean = True
    prototype_deployment = True
    classifies_embeddings = True
    # at the estimators' 1,000 iterations, on 5 alphabets held out from
    # Omniglot background: 20-way 1-shot 85.69% at 1e-3, 87.44% at 2e-3,
    # 88.38% at 4e-3 (benchmarks/results/defaults_select.md)
    default_learning_rate = 4e-3

    def __init__(
        self,
        distance: str = "euclidean",
        feature_norm: str | None = None,
        margin: float = 0.0,
    ) -> None:
        if not isinstance(distance, str) or distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}.")
        check_feature_norm(feature_norm)
        self.margin = check_real_setting("margin", margin, allow_zero=True)
        self.distance = str(distance)
        self.feature_norm = None if feature_norm is None else str(feature_norm)

    @property
    def fixed_embedding_width(self) -> bool:
        return self.feature_norm == "cl2n"  # the stored base mean's width

    def meta_parameters(self, net, embedding_dim, n_classes):
        if self.distance == "cosine":
            return {"scale": torch.tensor(10.0)}
        return {}

    def _scale(self, net: MetaNet) -> torch.Tensor | None:
        return net.extra["scale"] if self.distance == "cosine" else None

    def loss(self, net: MetaNet, batch: TaskBatch):
        logits, targets = self._episode_logits(net, batch)
        accuracy = (logits.argmax(1) == targets).float().mean().item()
        if self.margin:  # each query's own class must win by the margin
            logits = logits - self.margin * F.one_hot(targets, batch.n_way)
        return F.cross_entropy(logits, targets), {"accuracy": accuracy}

    def _episode_logits(self, net: MetaNet, batch: TaskBatch):
        """Plain logits of a meta-batch's queries, shape (n_tasks * n_query_rows,
        n_way), and their targets (n_tasks * n_query_rows,)."""
        n_tasks = batch.n_tasks
        support, query = embed_support_and_query(net, batch)
        # Support rows are class-major with equal shots: mean over the shot axis.
        protos = support.view(n_tasks, batch.n_way, -1, support.shape[-1]).mean(2)
        logits = prototype_logits(query, protos, self.distance, self._scale(net))
        return logits.reshape(-1, batch.n_way), batch.query_y.repeat(n_tasks)

    def normalized(self, net: MetaNet, embeddings: torch.Tensor) -> torch.Tensor:
        """`embeddings` ``(n, dim)`` normalised as ``feature_norm`` says."""
        base_mean = stored_base_mean(net) if self.feature_norm == "cl2n" else None
        return normalize_features(embeddings, self.feature_norm, base_mean)

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        # Per-class sums and counts beside the prototypes, so that `update`
        # adds rows without the old ones: the result equals adapting to all.
        return self.update(net, None, None, support_x, support_y, n_classes, batch_size)

    def update(
        self, net, state, positions, support_x, support_y, n_classes, batch_size=100
    ):
        """Add support rows to an adapted state (online adaptation).

        Parameters
        ----------
        net : MetaNet
            The meta-trained network; never modified.
        state : dict or None
            A state from :meth:`adapt` or :meth:`update`: ``"prototypes"`` and
            ``"sums"`` of shape (n_old, dim), ``"counts"`` of shape (n_old,);
            None for no rows yet.
        positions : Tensor of shape (n_old,), int64, or None
            The class code in ``0..n_classes-1`` of each class of `state`
            (classes may be added anywhere, e.g. to keep labels sorted).
        support_x : Tensor of shape (n_new, n_features)
        support_y : Tensor of shape (n_new,), int64 in ``0..n_classes-1``
        n_classes : int
        batch_size : int, default=100
            Rows per forward pass when embedding.

        Returns
        -------
        dict
            The state of all rows so far: prototypes, sums and counts of
            shape (n_classes, dim), (n_classes, dim) and (n_classes,). A class
            without rows has a zero prototype and count 0.
        """
        with torch.no_grad():
            embeddings = self.normalized(net, embed_rows(net, support_x, batch_size))
            sums = embeddings.new_zeros(n_classes, embeddings.shape[1])
            counts = torch.zeros(n_classes, dtype=torch.int64, device=sums.device)
            if state is not None:
                positions = positions.to(sums.device)
                sums[positions] = state["sums"].to(sums)
                counts[positions] = state["counts"].to(counts)
            sums.index_add_(0, support_y, embeddings)
            counts += torch.bincount(support_y, minlength=n_classes)
            means = sums / counts.clamp_min(1).unsqueeze(1).to(sums.dtype)
            return {"prototypes": means, "sums": sums, "counts": counts}

    def predict(self, net, state, query_x, batch_size=100):
        # Float64 distances: float32 round-off in ||q||^2 - 2 q.p + ||p||^2 would
        # make a row's scores depend on which other rows share its batch.
        scale = self._scale(net)
        return prototype_logits(
            self.normalized(net, embed_rows(net, query_x, batch_size).double()),
            state["prototypes"].double(),
            self.distance,
            None if scale is None else scale.double(),
        )

    def episode_metrics(self, net, batch):
        # ProtoNet's own episode loss without the margin, also for subclasses
        # that train with another one (pretrain): validation scores the
        # deployed prototypes.
        with torch.no_grad():
            logits, targets = ProtoNet._episode_logits(self, net, batch)
            loss = F.cross_entropy(logits, targets).item()
        return loss, (logits.argmax(1) == targets).float().mean().item()
