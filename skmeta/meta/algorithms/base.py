"""The one shape every meta-learning method has.

A method is an :class:`Algorithm`: ``loss`` for meta-training, and ``adapt`` /
``predict`` for deployment. The same ``adapt`` runs in validation during
meta-training and in ``FewShotClassifier.fit``, so what is trained is what is
deployed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..net import MetaNet

__all__ = ["Algorithm", "LabelledBatch", "TaskBatch", "map_tensors"]


def map_tensors(fn, value):
    """Apply `fn` to every tensor in nested dicts, lists and tuples.

    Adaptation states are such nests (e.g. adapted weights and per-layer batch
    norm statistics); the estimators use this to move them between devices.
    """
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_tensors(fn, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(map_tensors(fn, v) for v in value)
    return value


@dataclass(frozen=True)
class TaskBatch:
    """A meta-batch of episodes with the same N, K and Q.

    Attributes
    ----------
    support_x : Tensor of shape (n_tasks, n_way * k_shot, n_features)
    support_y : Tensor of shape (n_way * k_shot,), int64
        Way of each support row (class-major), the same for every task. For
        regression, shape (n_tasks, k_shot), float: each row's target.
    query_x : Tensor of shape (n_tasks, n_way * n_query, n_features)
    query_y : Tensor of shape (n_way * n_query,), int64
        Or (n_tasks, n_query), float, for regression.
    n_way : int
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    n_way: int


@dataclass(frozen=True)
class LabelledBatch:
    """A plain supervised mini-batch over all base classes.

    Attributes
    ----------
    x : Tensor of shape (batch, n_features)
    y : Tensor of shape (batch,), int64 base-class codes
    """

    x: torch.Tensor
    y: torch.Tensor


class Algorithm(ABC):
    """Interface of a meta-learning method.

    Subclasses set ``name`` and ``episodic`` (whether meta-training draws episodes,
    :class:`TaskBatch`, or plain mini-batches, :class:`LabelledBatch`).
    """

    name: str = ""
    summary: str = ""  # one line: what the method does (docs, error messages)
    settings: tuple[str, ...] = ()  # constructor arguments the estimators expose
    supports_regression: bool = False  # can be built with regression=True
    episodic: bool = True
    regression: bool = False  # targets are real values, one task per episode
    metric: str = "accuracy"  # reported beside the loss: "accuracy" or "mse"
    task_norm: bool = False  # batch norm with support statistics (norm.py)

    def meta_parameters(
        self, net: MetaNet, embedding_dim: int, n_classes: int
    ) -> dict[str, torch.Tensor]:
        """Method-specific meta-parameters learnt beside the backbone.

        Parameters
        ----------
        net : MetaNet
            The freshly built network (its backbone's parameter shapes).
        embedding_dim : int
            Width of the backbone's output.
        n_classes : int
            Number of base classes meta-training sees.
        """
        return {}

    @abstractmethod
    def loss(self, net: MetaNet, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Meta-training loss of a batch, and metrics (``{self.metric: value}``)."""

    def meta_gradient(self, net: MetaNet, batch) -> tuple[float, dict[str, float]]:
        """Add the meta-gradient of `batch` to the ``.grad`` of `net`'s parameters.

        What the training loop calls each iteration (between ``zero_grad`` and the
        optimiser step). The default differentiates :meth:`loss`; methods whose
        tasks are independent graphs override it to take the gradient task by
        task (less memory) and in parallel.

        Returns
        -------
        loss : float
            The batch's meta-training loss.
        metrics : dict
            ``{self.metric: value}``.
        """
        loss, metrics = self.loss(net, batch)
        if torch.isfinite(loss):  # the training loop reports a non-finite loss
            loss.backward()
        return loss.item(), metrics

    @abstractmethod
    def adapt(
        self,
        net: MetaNet,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        n_classes: int,
        batch_size: int = 100,
    ) -> dict[str, torch.Tensor]:
        """Adapt to one support set.

        Parameters
        ----------
        net : MetaNet
            The meta-trained network; never modified.
        support_x : Tensor of shape (n_support, n_features)
        support_y : Tensor of shape (n_support,), int64 in ``0..n_classes-1``
        n_classes : int
            Any number of classes, not only the ``n_way`` of meta-training.
        batch_size : int, default=100
            Rows per forward pass when embedding.

        Returns
        -------
        state : dict
            What ``predict`` needs (e.g. the prototypes), detached: tensors,
            possibly nested in dicts, lists and tuples.
        """

    @abstractmethod
    def predict(
        self,
        net: MetaNet,
        state: dict[str, torch.Tensor],
        query_x: torch.Tensor,
        batch_size: int = 100,
    ) -> torch.Tensor:
        """Logits of shape (n_query, n_classes) for query rows (n_query, n_features).

        Rows are embedded `batch_size` at a time.
        """

    def method_params(self) -> dict:
        """The settings that rebuild this method (saved in the model's config)."""
        return {name: getattr(self, name) for name in self.settings}

    def episode_metrics(self, net: MetaNet, batch: TaskBatch) -> tuple[float, float]:
        """Mean query cross-entropy and accuracy of deployed adapt + predict.

        Used for validation during meta-training; runs every task of the batch
        through :meth:`adapt` and :meth:`predict`.
        """
        losses, hits = [], []
        for support_x, query_x in zip(batch.support_x, batch.query_x, strict=True):
            state = self.adapt(net, support_x, batch.support_y, batch.n_way)
            logits = self.predict(net, state, query_x)
            losses.append(F.cross_entropy(logits, batch.query_y).item())
            hits.append((logits.argmax(1) == batch.query_y).float().mean().item())
        return sum(losses) / len(losses), sum(hits) / len(hits)
