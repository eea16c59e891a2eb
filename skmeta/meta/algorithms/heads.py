"""Output heads of the gradient-based methods: what differs between
classification and regression (the head's start, loss and metric).

A head's meta-parameters live in ``net.extra`` as ``head_weight`` and
``head_bias``; the inner loop adapts per-task copies of them. Outputs are
``emb @ weight.T + bias``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ClassificationHead", "RegressionHead"]


def _per_task(weight, bias, n_tasks):
    return weight.expand(n_tasks, *weight.shape), bias.expand(n_tasks, *bias.shape)


class ClassificationHead:
    """Any number of classes: one meta-learnt weight vector and bias shared by
    every class, zero at first (as in "unicorn" MAML). A network whose
    ``head_weight`` is a matrix, one row per way, has the fixed-way head of
    Finn et al. instead (adapts to exactly that many classes)."""

    metric = "accuracy"

    def meta_parameters(self, embedding_dim: int) -> dict[str, torch.Tensor]:
        return {
            "head_weight": torch.zeros(embedding_dim),
            "head_bias": torch.zeros(()),
        }

    def initial(self, weight, bias, n_tasks: int, n_classes: int):
        """Per-task head ``(T, n_classes, dim)``, ``(T, n_classes)`` from the
        meta-parameters `weight` ``(dim,)`` and `bias` ``()``."""
        if weight.dim() == 2:  # fixed-way
            if weight.shape[0] != n_classes:
                raise ValueError(
                    f"This network's head has {weight.shape[0]} ways; it cannot "
                    f"adapt to {n_classes} classes."
                )
            return _per_task(weight, bias, n_tasks)
        return _per_task(weight.expand(n_classes, -1), bias.expand(n_classes), n_tasks)

    @staticmethod
    def to_meta(weight, bias, meta_weight):
        """The meta-parameters adapted heads ``(T, ways, dim)``, ``(T, ways)``
        stand for: the mean over classes for the shared head."""
        if meta_weight.dim() == 1:
            return weight.mean(1), bias.mean(1)
        return weight, bias

    @staticmethod
    def loss_sum(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Sum over tasks of each task's mean cross-entropy.

        Parameters
        ----------
        outputs : Tensor of shape (n_tasks, n_rows, n_classes)
        targets : Tensor of shape (n_rows,), the ways shared by every task
        """
        n_tasks, n_rows = outputs.shape[:2]
        flat = outputs.reshape(n_tasks * n_rows, -1)
        targets = targets.expand(n_tasks, n_rows).reshape(-1)
        return F.cross_entropy(flat, targets, reduction="sum") / n_rows

    @staticmethod
    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of one task's outputs ``(n_rows, n_classes)``."""
        return F.cross_entropy(outputs, targets)

    @staticmethod
    def score(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Accuracy."""
        return (outputs.argmax(1) == targets).float().mean()


class RegressionHead:
    """One real output: a linear layer with a meta-learnt initialisation (as
    ``nn.Linear``'s), mean squared error."""

    metric = "mse"

    def meta_parameters(self, embedding_dim: int) -> dict[str, torch.Tensor]:
        head = torch.nn.Linear(embedding_dim, 1)
        return {"head_weight": head.weight.detach(), "head_bias": head.bias.detach()}

    def initial(self, weight, bias, n_tasks: int, n_classes: int):
        """Per-task head ``(T, 1, dim)``, ``(T, 1)``."""
        return _per_task(weight, bias, n_tasks)

    @staticmethod
    def to_meta(weight, bias, meta_weight):
        return weight, bias

    @staticmethod
    def loss_sum(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Sum over tasks of each task's mean squared error.

        Parameters
        ----------
        outputs : Tensor of shape (n_tasks, n_rows, 1)
        targets : Tensor of shape (n_tasks, n_rows)
        """
        return (outputs.squeeze(-1) - targets).pow(2).sum() / outputs.shape[1]

    @staticmethod
    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean squared error of one task's outputs ``(n_rows, 1)``."""
        return F.mse_loss(outputs.squeeze(-1), targets)

    @classmethod
    def score(cls, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean squared error, detached."""
        return cls.loss(outputs, targets).detach()
