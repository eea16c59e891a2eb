"""RFS (Tian, Wang, Krishnan, Tenenbaum & Isola, "Rethinking Few-Shot Image
Classification: a Good Embedding Is All You Need?", ECCV 2020).

Generation 0 is supervised pre-training on all base classes (:mod:`.pretrain`).
Each later generation trains a new student of the same architecture, from a
fresh initialisation, on ``alpha * cross-entropy + beta * KL(teacher ||
student)`` at temperature ``T`` (born-again self-distillation), the frozen
teacher being the previous generation. The last student is deployed.

Meta-training runs one loop per generation (:func:`skmeta.meta.train.meta_train`
reads :attr:`RFS.generations` and hands each student's loop the method bound to
its teacher, :meth:`RFS.with_teacher`); ``max_iter`` is per generation.

Deployment: nearest prototype on L2-normalised embeddings
(``feature_norm="l2"``), not RFS's per-episode logistic regression: the torch
layer has no solver for one, and deploying as every prototype method does
keeps a comparison of methods a comparison of their training. RFS's own
classifier is a pipeline away: ``make_pipeline(MetaFeatureExtractor(
pretrained=model), Normalizer(), LogisticRegression())`` (not measured here).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..setting_checks import check_int_setting, check_real_setting
from .base import LabelledBatch
from .pretrain import Pretrain

__all__ = ["RFS", "distillation_loss"]


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Hinton et al.'s distillation loss, as RFS computes it.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape (batch, n_classes)
    temperature : float
        ``T``: both distributions are softmaxes of logits / T.

    Returns
    -------
    Tensor of shape ()
        ``T**2 * mean_i KL(softmax(t_i / T) || softmax(s_i / T))``; the ``T**2``
        keeps the gradient's size independent of ``T``.
    """
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    kl = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


class RFS(Pretrain):
    """Supervised pre-training, then born-again self-distillation generations.

    Parameters
    ----------
    distance : {"euclidean", "cosine"}, default="euclidean"
        Distance of the nearest-prototype deployment (and validation).
    feature_norm : {None, "l2", "cl2n"}, default="l2"
        Normalisation of the embeddings at deployment; RFS classifies
        L2-normalised embeddings.
    generations : int, default=1
        Distillation generations after the pre-training (generation 0); 0 is
        plain pre-training. RFS distils for one or two.
    temperature : float, default=4.0
        ``T`` of the distillation loss (RFS: 4).
    alpha : float, default=0.5
        Weight of the cross-entropy with the labels in distillation generations.
    beta : float, default=0.5
        Weight of the distillation loss.

    Attributes
    ----------
    teacher : MetaNet or None
        The frozen network of the previous generation, set by
        :meth:`with_teacher`; None in generation 0 and at deployment.
    """

    name = "rfs"
    summary = (
        "RFS: pre-training, then self-distillation generations; prototypes "
        "of L2-normalised embeddings"
    )
    settings = (
        "distance",
        "feature_norm",
        "generations",
        "temperature",
        "alpha",
        "beta",
    )

    def __init__(
        self,
        distance: str = "euclidean",
        feature_norm: str | None = "l2",
        generations: int = 1,
        temperature: float = 4.0,
        alpha: float = 0.5,
        beta: float = 0.5,
    ) -> None:
        super().__init__(distance=distance, feature_norm=feature_norm)
        self.generations = check_int_setting("generations", generations, minimum=0)
        self.temperature = check_real_setting("temperature", temperature)
        self.alpha = check_real_setting("alpha", alpha, allow_zero=True)
        self.beta = check_real_setting("beta", beta, allow_zero=True)
        if self.alpha + self.beta == 0:
            raise ValueError(
                f"alpha and beta must be >= 0 and not both 0; got alpha={alpha!r}, "
                f"beta={beta!r}."
            )
        self.teacher = None

    def with_teacher(self, teacher) -> RFS:
        """This method, distilling from `teacher` (a copy; this one unchanged).

        Parameters
        ----------
        teacher : MetaNet
            The previous generation's network, with its classification head.
            Put in eval mode with gradients off: it stays frozen.
        """
        bound = copy.copy(self)
        bound.teacher = teacher.eval().requires_grad_(False)
        return bound

    def loss(self, net, batch: LabelledBatch):
        logits = self.head_logits(net, batch.x)
        loss = F.cross_entropy(logits, batch.y)
        if self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.head_logits(self.teacher, batch.x)
            loss = self.alpha * loss + self.beta * distillation_loss(
                logits, teacher_logits.to(logits.dtype), self.temperature
            )
        accuracy = (logits.argmax(1) == batch.y).float().mean().item()
        return loss, {"accuracy": accuracy}
