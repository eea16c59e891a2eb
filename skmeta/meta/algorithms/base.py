"""The one shape every meta-learning method has.

A method is an :class:`Algorithm`: ``loss`` for meta-training, and ``adapt`` /
``predict`` for deployment. The same ``adapt`` runs in validation during
meta-training and in ``FewShotClassifier.fit``, so what is trained is what is
deployed.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..net import MetaNet
from ..setting_checks import check_real_setting  # re-exported: its former home
from .plugins import class_defined

__all__ = [
    "AdaptationDiverged",
    "AdaptationWarning",
    "Algorithm",
    "LabelledBatch",
    "TaskBatch",
    "check_real_setting",
    "map_tensors",
    "task_targets",
]


class AdaptationDiverged(ValueError):
    """An adaptation whose support loss, state or outputs turned NaN or
    infinite (e.g. an inner learning rate too large for the inner steps).

    A ``ValueError``, so ``fit`` fails with it and scikit-learn's searches
    record the candidate as failed (``error_score``) with its message.
    """


class AdaptationWarning(UserWarning):
    """The support loss rose over the inner steps: the inner loop diverges."""


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

    @property
    def n_tasks(self) -> int:
        return self.support_x.shape[0]

    def tasks(self, rows: slice) -> TaskBatch:
        """The sub-batch of the tasks in `rows`."""

        def part(labels: torch.Tensor) -> torch.Tensor:
            return labels[rows] if labels.dim() == 2 else labels

        return TaskBatch(
            self.support_x[rows],
            part(self.support_y),
            self.query_x[rows],
            part(self.query_y),
            self.n_way,
        )


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


def task_targets(labels: torch.Tensor, task: int) -> torch.Tensor:
    """Labels of one task of a :class:`TaskBatch`: the ways shared by every task
    (1-D), or that task's row of per-task regression targets (2-D)."""
    return labels[task] if labels.dim() == 2 else labels


class Algorithm(ABC):
    """Interface of a meta-learning method.

    A method is one small class in its own module, registered by name in
    ``skmeta.meta.algorithms``. Class attributes say what the estimators show
    and what meta-training draws:

    - ``name``, ``summary``: the ``method=`` value and a one-line description;
    - ``settings``: constructor arguments the estimators may set;
    - ``adaptation_settings``: those of them a meta-trained model takes anew
      when it adapts (e.g. the inner loop's); the others are fixed by
      meta-training;
    - ``supports_regression``: whether ``regression=True`` is accepted;
    - ``episodic``: meta-training draws episodes (:class:`TaskBatch`), or plain
      mini-batches over all base classes (:class:`LabelledBatch`);
    - ``task_norm``: batch norm with support statistics (:mod:`..norm`);
    - ``parallel_tasks``: the meta-gradient is taken task by task, so worker
      threads (the estimators' ``n_jobs``) can share a meta-batch;
    - ``fixed_way``: the method's output layer has one unit per way of the
      meta-training episodes, so :meth:`meta_parameters` is given
      ``n_classes = n_way`` (not the number of base classes) and the model
      classifies at most that many classes.
    - ``prototype_deployment``: deployment is nearest prototype on the
      embedding, so the transductive methods (``skmeta.meta.transductive``)
      apply to its models.
    - ``default_learning_rate``: Adam's initial rate when the estimators'
      ``learning_rate`` is None.
    - ``classifies_embeddings``: :meth:`adapt` and :meth:`predict` call the
      network only on whole rows (``net(x)``, e.g. by
      :func:`~..net.embed_rows`) and read its ``extra``, so a network
      averaging shifted views (:class:`~..views.ViewAveraged`) serves them:
      test-time augmentation applies.
    - ``fixed_embedding_width``: a setting ties adaptation to the
      embedding's width (a learnt vector or layer of that size), so the
      wider embeddings of test-time turns (:class:`~..views.QuarterTurns`)
      cannot serve it.
    - ``support_length_bound``: a sequence learner reads support sets well
      only up to about this many times the rows of its meta-training
      episodes' support sets; :func:`~..inference.adapt` warns beyond (None:
      any size).

    :meth:`loss` is the one reference computation of the meta-gradient (its
    ``backward``); speed paths (``skmeta.meta.accel``) are tested equal to it.
    :meth:`adapt` and :meth:`predict` are what validation and the estimators
    deploy. None of them writes into the network.
    """

    name: str = ""
    summary: str = ""
    settings: tuple[str, ...] = ()
    adaptation_settings: tuple[str, ...] = ()
    supports_regression: bool = False
    prototype_deployment: bool = False
    episodic: bool = True
    regression: bool = False
    metric: str = "accuracy"  # reported beside the loss: "accuracy" or "mse"
    default_learning_rate: float = 1e-3
    task_norm: bool = False
    parallel_tasks: bool = False
    fixed_way: bool = False
    classifies_embeddings: bool = False
    fixed_embedding_width: bool = False
    support_length_bound: float | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        class_defined(cls)  # a plugin's class whose module imported skmeta first

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
            Number of base classes meta-training sees; for a ``fixed_way``
            method, the ``n_way`` of its episodes.

        Returns
        -------
        dict of str to Tensor
            Initial values, stored in ``net.extra`` under these names.
        """
        return {}

    @abstractmethod
    def loss(self, net: MetaNet, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Meta-training loss of a batch, and metrics (``{self.metric: value}``).

        For a :class:`TaskBatch`, the mean over its tasks of each task's loss.
        """

    @abstractmethod
    def adapt(
        self,
        net: MetaNet,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        n_classes: int,
        batch_size: int = 100,
    ) -> dict:
        """Adapt to one support set.

        Parameters
        ----------
        net : MetaNet
            The meta-trained network; never modified.
        support_x : Tensor of shape (n_support, n_features)
        support_y : Tensor of shape (n_support,)
            int64 in ``0..n_classes-1``, or float targets for regression.
        n_classes : int
            Any number of classes, not only the ``n_way`` of meta-training.
        batch_size : int, default=100
            Rows per forward pass when embedding.

        Returns
        -------
        state : dict
            What :meth:`predict` needs (e.g. the prototypes), detached: tensors,
            possibly nested in dicts, lists and tuples.
        """

    @abstractmethod
    def predict(
        self, net: MetaNet, state: dict, query_x: torch.Tensor, batch_size: int = 100
    ) -> torch.Tensor:
        """Outputs for query rows ``(n_query, n_features)``: logits of shape
        ``(n_query, n_classes)``, or ``(n_query, 1)`` for regression. Rows are
        embedded `batch_size` at a time."""

    def evaluate(
        self, outputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[float, float]:
        """Loss and metric of outputs from :meth:`predict`: cross-entropy and
        accuracy here."""
        outputs = outputs.float()
        loss = F.cross_entropy(outputs, targets).item()
        return loss, (outputs.argmax(1) == targets).float().mean().item()

    def method_params(self) -> dict:
        """The settings that rebuild this method (saved in the model's config)."""
        return {name: getattr(self, name) for name in self.settings}

    def episode_metrics(self, net: MetaNet, batch: TaskBatch) -> tuple[float, float]:
        """Mean query loss and metric of the deployed :meth:`adapt` and
        :meth:`predict`, task by task: validation during meta-training."""
        losses, scores = [], []
        for task in range(batch.n_tasks):
            try:
                with warnings.catch_warnings():  # a half-trained model's, expected
                    warnings.simplefilter("ignore", AdaptationWarning)
                    state = self.adapt(
                        net,
                        batch.support_x[task],
                        task_targets(batch.support_y, task),
                        batch.n_way,
                    )
                with torch.no_grad():
                    outputs = self.predict(net, state, batch.query_x[task])
            except AdaptationDiverged:  # recorded as such: NaN loss and metric
                losses.append(float("nan"))
                scores.append(float("nan"))
                continue
            loss, score = self.evaluate(outputs, task_targets(batch.query_y, task))
            losses.append(loss)
            scores.append(score)
        return sum(losses) / len(losses), sum(scores) / len(scores)
