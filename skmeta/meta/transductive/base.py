"""The one shape every transductive inference method has.

A transductive method classifies with a support set (labelled embeddings) and
an unlabelled set (embeddings of rows to label) together: the unlabelled rows
move the class estimates. It works on embeddings, never on the network, so it
applies to any model whose deployment is nearest prototype on the embedding
(``Algorithm.prototype_deployment``).

:meth:`TransductiveMethod.fit` returns a state (a dict of tensors, picklable,
and movable with ``map_tensors``) holding ``"unlabelled_scores"``, the scores
of the unlabelled rows from the joint inference, and whatever
:meth:`TransductiveMethod.predict` needs to score new rows with what the
unlabelled rows taught. Everything runs in float64 and draws nothing at
random, so results are deterministic and do not depend on batch composition.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

__all__ = [
    "TransductiveMethod",
    "check_embeddings",
    "class_means",
    "one_hot",
    "squared_distances",
]


class TransductiveMethod(ABC):
    """Interface of a transductive few-shot inference method.

    Class attributes:

    - ``name``, ``summary``: the ``transductive=`` value and a one-line
      description;
    - ``settings``: constructor arguments the estimators' ``transductive_params``
      may set;
    - ``needs_base_mean``: whether :meth:`fit` takes the base classes' mean
      embedding, shape (dim,), as the keyword ``base_mean`` (the estimators
      pass the model's).
    """

    name: str = ""
    summary: str = ""
    settings: tuple[str, ...] = ()
    needs_base_mean: bool = False

    @abstractmethod
    def fit(
        self,
        support: torch.Tensor,
        support_y: torch.Tensor,
        unlabelled: torch.Tensor,
        n_classes: int,
    ) -> dict:
        """Infer the classes from the support and unlabelled embeddings.

        Parameters
        ----------
        support : Tensor of shape (n_support, dim)
        support_y : Tensor of shape (n_support,), int64 in ``0..n_classes-1``
            Every class has at least one row.
        unlabelled : Tensor of shape (n_unlabelled, dim)
            May have no rows.
        n_classes : int

        Returns
        -------
        dict of tensors
            ``"unlabelled_scores"`` of shape (n_unlabelled, n_classes), float64,
            and what :meth:`predict` needs.
        """

    @abstractmethod
    def predict(self, state: dict, queries: torch.Tensor) -> torch.Tensor:
        """Scores of new rows with the fitted state.

        Parameters
        ----------
        state : dict
            The output of :meth:`fit`.
        queries : Tensor of shape (n_query, dim)

        Returns
        -------
        Tensor of shape (n_query, n_classes), float64
            Class scores (logits), higher for more likely classes.
        """


def check_embeddings(
    support: torch.Tensor,
    support_y: torch.Tensor,
    unlabelled: torch.Tensor,
    n_classes: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked float64 support, int64 labels and float64 unlabelled rows.

    Raises
    ------
    ValueError
        On shapes that do not fit, labels outside ``0..n_classes-1``, or a class
        without a labelled row.
    """
    if support.dim() != 2 or unlabelled.dim() != 2:
        raise ValueError(
            "support and unlabelled must be 2-D (n, dim); got shapes "
            f"{tuple(support.shape)} and {tuple(unlabelled.shape)}."
        )
    if unlabelled.shape[0] and unlabelled.shape[1] != support.shape[1]:
        raise ValueError(
            f"unlabelled rows have {unlabelled.shape[1]} features, the support "
            f"rows {support.shape[1]}."
        )
    if support_y.shape != (support.shape[0],):
        raise ValueError(
            f"support_y has shape {tuple(support_y.shape)}; expected "
            f"({support.shape[0]},)."
        )
    support_y = support_y.long()
    if support_y.numel() and (support_y.min() < 0 or support_y.max() >= n_classes):
        raise ValueError(f"support_y must lie in 0..{n_classes - 1}.")
    counts = torch.bincount(support_y, minlength=n_classes)
    if bool((counts == 0).any()):
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"Every class needs at least one labelled row; classes {missing} have none."
        )
    return (
        support.double(),
        support_y,
        unlabelled.double().reshape(-1, support.shape[1]),
    )


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Float64 one-hot rows, shape (n, n_classes)."""
    return F.one_hot(labels, n_classes).double()


def class_means(
    embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """Mean embedding of each class, shape (n_classes, dim); every class has a
    row (:func:`check_embeddings`)."""
    weights = one_hot(labels, n_classes)
    return (weights.T @ embeddings) / weights.sum(0).unsqueeze(1)


def squared_distances(rows: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """``||r - o||^2`` for every pair, shape (n_rows, n_others)."""
    sq = (rows * rows).sum(1, keepdim=True) - 2 * rows @ others.T
    return (sq + (others * others).sum(1)).clamp_min(0)
