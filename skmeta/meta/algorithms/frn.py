"""Feature Map Reconstruction Networks (Wertheimer, Tang & Hariharan, CVPR
2021).

A query is classified by how well each class's support feature maps
reconstruct its own, location by location. The backbone's output is read
as a feature map: ``r`` locations of ``channels`` features (the library's
Conv4 returns its last map flattened channel by channel; a backbone that
pools to one vector is one location). With ``S_c`` the ``m x channels``
matrix of all the locations of class ``c``'s support images (``m = shots
x r``) and ``q`` one location of a query, ridge regression reconstructs
``q`` from the rows of ``S_c`` in closed form::

    lam  = (m / channels) exp(alpha)
    H_c  = S_c^T (S_c S_c^T + lam I)^{-1} S_c          (channels, channels)
    dist(query, c) = mean over its locations q of |rho q H_c - q|^2
    logit(query, c) = -scale * dist(query, c),          rho = exp(beta)

``alpha``, ``beta`` (from 0) and ``scale`` (from 1) are learnt beside the
backbone, as in the paper. Classes are reconstructed independently, so a
query's scores depend on the support set and itself only (inductive), and a
class's ``lam`` follows its own number of rows.

Where prototypes average a class's support image into one vector, the
reconstruction keeps each location of each support image: a query location
that no support location of a class can reconstruct (a stroke the class's
drawings lack) costs that class, which is why the paper proposes it for
fine-grained classes. Computed without building the reconstructions: with
``M_c = (rho H_c - I)(rho H_c - I)^T`` and ``G = Q^T Q`` for a query's
``r x channels`` map ``Q``, ``dist = <G, M_c> / r``, one matrix product
over every query and class.

Differences from the paper: no pretraining stage (it meta-trains from
scratch, the paper's "FRN without pre-training"); the support's locations
are not scaled by ``1 / sqrt(channels)`` (the paper scales only its
ResNet-12's).
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from ..backbones import Conv4
from ..net import MetaNet, embed_rows
from .base import Algorithm, TaskBatch
from .protonet import embed_support_and_query

__all__ = ["FRN", "reconstruction_metrics", "reconstruction_logits"]

PARAMETERS = ("frn_alpha", "frn_beta", "frn_scale")


def local_features(embeddings: torch.Tensor, channels: int) -> torch.Tensor:
    """Embeddings read as feature maps flattened channel by channel.

    Parameters
    ----------
    embeddings : Tensor of shape (..., dim)
        ``dim = channels * r``.
    channels : int

    Returns
    -------
    Tensor of shape (..., r, channels)
        Each location's feature vector.
    """
    *lead, dim = embeddings.shape
    return embeddings.reshape(*lead, channels, dim // channels).transpose(-1, -2)


def reconstruction_metrics(
    support: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """Each class's quadratic form ``M_c = (rho H_c - I)(rho H_c - I)^T``.

    Parameters
    ----------
    support : Tensor of shape (..., n_classes, m, channels)
        Every location of every support image of each class (``m`` of them
        a class).
    alpha, beta : Tensor of shape ()
        ``lam = (m / channels) exp(alpha)``, ``rho = exp(beta)``.

    Returns
    -------
    Tensor of shape (..., n_classes, channels, channels)
        ``|rho q H_c - q|^2 = q M_c q^T`` for a location ``q`` (a row).
    """
    m, channels = support.shape[-2:]
    lam = (m / channels) * alpha.exp()
    if m <= channels:  # solve in the smaller of the two equal forms
        gram = support @ support.mT
        eye = torch.eye(m, dtype=support.dtype, device=support.device)
        hat = support.mT @ torch.linalg.solve(gram + lam * eye, support)
    else:
        gram = support.mT @ support
        eye = torch.eye(channels, dtype=support.dtype, device=support.device)
        hat = torch.linalg.solve(gram + lam * eye, gram)
    residual = beta.exp() * hat - torch.eye(
        channels, dtype=support.dtype, device=support.device
    )
    return residual @ residual.mT


def reconstruction_logits(
    query: torch.Tensor, metrics: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Minus ``scale`` times each query's mean squared reconstruction error
    by each class.

    Parameters
    ----------
    query : Tensor of shape (..., n_query, r, channels)
    metrics : Tensor of shape (..., n_classes, channels, channels)
        From :func:`reconstruction_metrics`.
    scale : Tensor of shape ()

    Returns
    -------
    Tensor of shape (..., n_query, n_classes)
    """
    r = query.shape[-2]
    gram = (query.mT @ query).flatten(-2)  # (..., n_query, channels^2)
    dist = gram @ metrics.flatten(-2).mT / r
    return -scale * dist


class FRN(Algorithm):
    """Feature Map Reconstruction Networks: each class's support feature maps
    reconstruct a query's by ridge regression, in closed form; the smaller
    the error, the higher the class's score.

    Parameters
    ----------
    channels : int or None, default=None
        Features per location of the backbone's output map. None: the
        library's Conv4 (``"conv4"``, ``"conv4_strided"``, ``"conv6"``) is
        read as its map (64 channels at ``hidden_channels=64``; its 2x2,
        4x4, ... locations), any other backbone as one location (its whole
        embedding). Give it for another backbone that returns a map
        flattened channel by channel; the embedding's width must be a
        multiple of it.

    Notes
    -----
    On Omniglot at the estimators' defaults and three CPU-minutes of
    meta-training (``benchmarks/all_methods.py``) it scored 96.01% 5-way
    1-shot and 88.03% 20-way 1-shot against ProtoNet's 95.51 and 87.29%,
    the two run the same day. On within-alphabet one-shot runs of held-out
    alphabets it learnt faster than ProtoNet but reached the same accuracy
    at equal CPU time (``benchmarks/RESULTS.md``, forty-fifth try).
    """

    name = "frn"
    summary = "Feature Map Reconstruction Networks: class maps rebuild the query's"
    settings = ("channels",)
    classifies_embeddings = True
    # the embedding is read as a map of `channels` features a location: the
    # wider embeddings of test-time turns (views side by side) are no map
    fixed_embedding_width = True
    default_learning_rate = 1e-3

    def __init__(self, channels: int | None = None) -> None:
        if channels is not None and (
            isinstance(channels, bool)
            or not isinstance(channels, numbers.Integral)
            or channels < 1
        ):
            raise ValueError(
                f"channels must be None or an int >= 1, got channels={channels!r}."
            )
        self.channels = None if channels is None else int(channels)

    def method_params(self) -> dict:
        return {"channels": self.channels}

    def map_channels(self, net: MetaNet, embedding_dim: int) -> int:
        """Features per location of `net`'s embeddings of width
        `embedding_dim` (see ``channels``)."""
        channels = self.channels
        if channels is None:
            backbone = net.backbone
            channels = (
                backbone.features[0].out_channels
                if isinstance(backbone, Conv4)
                else embedding_dim
            )
        if embedding_dim % channels:
            raise ValueError(
                f"FRN reads the embedding as a feature map of channels={channels} "
                f"features a location, and the embedding has {embedding_dim} "
                "features, not a multiple of it: give the backbone's channels "
                "(method_params={'channels': ...})."
            )
        return channels

    def meta_parameters(self, net, embedding_dim, n_classes):
        self.map_channels(net, embedding_dim)  # refuses a width it cannot read
        return {
            "frn_alpha": torch.tensor(0.0),
            "frn_beta": torch.tensor(0.0),
            "frn_scale": torch.tensor(1.0),
        }

    def _parameters(self, net: MetaNet, dtype: torch.dtype):
        return tuple(net.extra[name].to(dtype) for name in PARAMETERS)

    def _episode_logits(self, net: MetaNet, batch: TaskBatch):
        """Logits of a meta-batch's queries, shape (n_tasks * n_query_rows,
        n_way), and their targets."""
        support, query = embed_support_and_query(net, batch)
        n_tasks, _, dim = support.shape
        channels = self.map_channels(net, dim)
        alpha, beta, scale = self._parameters(net, support.dtype)
        # support rows are class-major with equal shots: each class's
        # locations are its images' locations stacked
        local = local_features(support, channels)  # (n_tasks, n_support, r, ch)
        per_class = local.reshape(n_tasks, batch.n_way, -1, channels)
        metrics = reconstruction_metrics(per_class, alpha, beta)
        logits = reconstruction_logits(local_features(query, channels), metrics, scale)
        return logits.reshape(-1, batch.n_way), batch.query_y.repeat(n_tasks)

    def loss(self, net: MetaNet, batch: TaskBatch):
        logits, targets = self._episode_logits(net, batch)
        accuracy = (logits.argmax(1) == targets).float().mean().item()
        return F.cross_entropy(logits, targets), {"accuracy": accuracy}

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        """Each class's quadratic form, from all its support rows.

        Parameters
        ----------
        net : MetaNet
        support_x : Tensor of shape (n_support, n_features)
        support_y : Tensor of shape (n_support,), int64 in ``0..n_classes-1``
        n_classes : int
        batch_size : int, default=100
            Rows per forward pass when embedding.

        Returns
        -------
        dict
            ``"metrics"``: Tensor of shape (n_classes, channels, channels),
            float64 (zero for a class without rows; the estimators mask such
            classes out), and ``"channels"``.
        """
        with torch.no_grad():
            embeddings = embed_rows(net, support_x, batch_size).double()
            channels = self.map_channels(net, embeddings.shape[1])
            alpha, beta, _ = self._parameters(net, torch.float64)
            local = local_features(embeddings, channels)
            metrics = local.new_zeros(n_classes, channels, channels)
            for c in torch.unique(support_y).tolist():
                rows = local[support_y == c].reshape(-1, channels)
                metrics[c] = reconstruction_metrics(rows, alpha, beta)
            return {"metrics": metrics, "channels": channels}

    def predict(self, net, state, query_x, batch_size=100):
        """Scores of query rows: minus ``scale`` times their mean squared
        reconstruction errors by each class.

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
        _, _, scale = self._parameters(net, torch.float64)
        local = local_features(query, state["channels"])
        return reconstruction_logits(local, state["metrics"].double(), scale)

    def episode_metrics(self, net, batch):
        with torch.no_grad():
            logits, targets = self._episode_logits(net, batch)
            loss = F.cross_entropy(logits, targets).item()
        return loss, (logits.argmax(1) == targets).float().mean().item()
