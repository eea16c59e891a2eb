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
fine-grained classes. With ``R_c = rho H_c - I`` and a query's ``r x
channels`` map ``Q``, ``dist = |Q R_c|^2 / r``; when the classes' maps
outnumber the channels (``n_classes * r >= channels``, e.g. a Conv4's 4x4
map) it is computed without building the errors, as ``<Q^T Q, R_c
R_c^T> / r``, one matrix product over every query and class. A class
without rows reconstructs nothing (``H_c = 0``): its error is the query's
own squared norm. The ridge solves run in float32 at least, outside any
mixed-precision autocast (16-bit Gram matrices lose the small errors that
tell classes apart).

Differences from the paper: no pretraining stage (it meta-trains from
scratch, the paper's "FRN without pre-training"); no auxiliary loss (the
paper's code adds, with weight 0.03, a loss keeping the support
locations of different classes apart); the support's locations are not
scaled by ``1 / sqrt(channels)`` (the paper scales only its ResNet-12's);
no ``1e-6`` added to ``lam``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..backbones import Conv4
from ..net import MetaNet, embed_rows
from ..resnet12 import ResNet12
from ..setting_checks import check_int_setting
from .base import Algorithm, TaskBatch
from .protonet import embed_support_and_query

__all__ = ["FRN", "reconstruction_logits", "reconstruction_residuals"]

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


def reconstruction_residuals(
    support: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """Each class's ``R_c = rho H_c - I``: a query location ``q`` (a row)
    is reconstructed with error ``q R_c``.

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
    eye = torch.eye(channels, dtype=support.dtype, device=support.device)
    return beta.exp() * hat - eye


def reconstruction_logits(
    query: torch.Tensor, residuals: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Minus ``scale`` times each query's mean squared reconstruction error
    by each class.

    Parameters
    ----------
    query : Tensor of shape (..., n_query, r, channels)
    residuals : Tensor of shape (..., n_classes, channels, channels)
        From :func:`reconstruction_residuals`.
    scale : Tensor of shape ()

    Returns
    -------
    Tensor of shape (..., n_query, n_classes)
    """
    r, channels = query.shape[-2:]
    if residuals.shape[-3] * r < channels:  # the errors are the smaller
        errors = query.unsqueeze(-3) @ residuals.unsqueeze(-4)
        dist = errors.pow(2).sum((-2, -1)) / r
    else:  # |Q R|^2 = <Q^T Q, R R^T>: (n_query + n_classes) x channels^2
        gram = (query.mT @ query).flatten(-2)
        dist = gram @ (residuals @ residuals.mT).flatten(-2).mT / r
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
        4x4, ... locations), the ResNet-12 as its last block's (640
        channels: 25 locations with ``pooling="flatten"`` at 84 px, one
        with ``"avg"``), any other backbone as one location (its whole
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
        self.channels = check_int_setting("channels", channels, allow_none=True)

    def method_params(self) -> dict:
        return {"channels": self.channels}

    def map_channels(self, net: MetaNet, embedding_dim: int) -> int:
        """Features per location of `net`'s embeddings of width
        `embedding_dim` (see ``channels``)."""
        channels = self.channels
        if channels is None:
            backbone = net.backbone
            if isinstance(backbone, Conv4):
                channels = backbone.features[0].out_channels
            elif isinstance(backbone, ResNet12):  # a 640-d map, or its mean
                channels = backbone.blocks[-1].conv1.out_channels
            else:
                channels = embedding_dim
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
        # float32 at least, outside autocast: 16-bit Gram matrices and solves
        # lose the small reconstruction errors that tell classes apart
        dtype = torch.promote_types(support.dtype, torch.float32)
        with torch.autocast(support.device.type, enabled=False):
            support, query = support.to(dtype), query.to(dtype)
            alpha, beta, scale = self._parameters(net, dtype)
            # support rows are class-major with equal shots: each class's
            # locations are its images' locations stacked
            local = local_features(support, channels)  # (n_tasks, n_support, r, ch)
            per_class = local.reshape(n_tasks, batch.n_way, -1, channels)
            residuals = reconstruction_residuals(per_class, alpha, beta)
            query = local_features(query, channels)
            logits = reconstruction_logits(query, residuals, scale)
        return logits.reshape(-1, batch.n_way), batch.query_y.repeat(n_tasks)

    def loss(self, net: MetaNet, batch: TaskBatch):
        logits, targets = self._episode_logits(net, batch)
        accuracy = (logits.argmax(1) == targets).float().mean().item()
        return F.cross_entropy(logits, targets), {"accuracy": accuracy}

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        """Each class's reconstruction residual map, from all its support
        rows (its ``lam`` by its own number of rows).

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
            ``"residuals"``: Tensor of shape (n_classes, channels,
            channels), float64, ``rho H_c - I`` (``-I`` for a class without
            rows, which reconstructs nothing: its error is the query's
            squared norm; the estimators mask such classes out), and
            ``"channels"``.
        """
        with torch.no_grad():
            embeddings = embed_rows(net, support_x, batch_size).double()
            channels = self.map_channels(net, embeddings.shape[1])
            alpha, beta, _ = self._parameters(net, torch.float64)
            local = local_features(embeddings, channels)
            residuals = -torch.eye(
                channels, dtype=local.dtype, device=local.device
            ).repeat(n_classes, 1, 1)
            for c in torch.unique(support_y).tolist():
                rows = local[support_y == c].reshape(-1, channels)
                residuals[c] = reconstruction_residuals(rows, alpha, beta)
            return {"residuals": residuals, "channels": channels}

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
            Rows embedded and scored at a time (the scoring's memory grows
            with ``batch_size * channels^2`` or ``batch_size * n_classes *
            r * channels``).

        Returns
        -------
        Tensor of shape (n_query, n_classes), float64
            In float64 so that a row's scores do not depend on its batch.
        """
        _, _, scale = self._parameters(net, torch.float64)
        residuals = state["residuals"].double()
        scores = [residuals.new_zeros(0, len(residuals))]
        for chunk in query_x.split(batch_size):
            local = local_features(net(chunk).double(), state["channels"])
            scores.append(reconstruction_logits(local, residuals, scale))
        return torch.cat(scores)

    def episode_metrics(self, net, batch):
        with torch.no_grad():  # the loss is the deployed prediction's
            loss, metrics = self.loss(net, batch)
        return loss.item(), metrics["accuracy"]
