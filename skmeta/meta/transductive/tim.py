"""TIM and alpha-TIM: transductive information maximisation.

TIM (Boudiaf, Ziko, Rony, Dolz, Piantanida & Ben Ayed, "Transductive
Information Maximization for Few-Shot Learning", NeurIPS 2020), the gradient
version TIM-GD: a classifier of weights ``W`` (one row per class, started at
the support class means) scores L2-normalised embeddings by
``-T / 2 * ||x - w_c||^2`` and is trained on

    loss = l_ce * CE(support) - (l_marg * H(Y_Q) - l_cond * H(Y_Q | X_Q)),

the support cross-entropy, minus the mutual information between unlabelled
rows and their predicted labels (marginal entropy of the mean prediction,
pushing towards balanced classes, minus the conditional entropy, pushing
towards confident predictions). Defaults of the paper and its code:
``T = 15``, weights ``(0.1, 1, 0.1)``, Adam with learning rate ``1e-4`` for
1,000 iterations.

alpha-TIM (Veilleux, Boudiaf, Piantanida & Ben Ayed, "Realistic Evaluation of
Transductive Few-Shot Learning", NeurIPS 2021) replaces both query entropies
by Tsallis alpha-entropies ``(1 - sum p^alpha) / (alpha - 1)``, which weigh
the class-balance prior less and so suffer less from class-imbalanced
queries. Its defaults: weights ``(1, 1, 1)``, the same optimiser, ``alpha = 2``
for 1-shot and ``7`` for 5-shot tasks (tuned on validation tasks in the
paper; the reference code's 5.0 in between).

**Departure: the loss weights follow the number of classes.** The paper tuned
its weights on 5-way tasks. The order-2 marginal entropy ``1 - sum m_k^2``
pulls towards balance with a gradient ``-2 m_k``, about ``-2 / K`` for ``K``
classes, so at 20 ways it weighs a quarter of what it weighs at 5, and the
conditional term drives the predictions into a few classes. On Omniglot
1-shot tasks of alphabets held out from ``background``
(``benchmarks/alpha_tim_select.py``), the paper's weights lost 1.6 points
(balanced queries) and 0.8 (Dirichlet-imbalanced) to inductive ProtoNet at 20
ways, where TIM's weights ``(0.1, 1, 0.1)`` (ten times the balance term,
relative; Adam is blind to the loss's overall scale) gained 4.7 and 4.6; at
10 ways 0.9 and 1.1 against 4.2 and 1.9; at 5 ways the paper's weights stayed
best (on imbalanced queries TIM's lost 1.5 points). So ``loss_weights=None``
means the paper's up to :data:`PAPER_WEIGHTS_UP_TO` classes and TIM's beyond.
On ``evaluation``: +4.4 and +3.2 points at 20 ways against the paper's +0.5
and +0.2; at 10 ways +2.5 and +0.1 against +0.8 and +1.2.

The gradient of the loss is autograd's here (:meth:`TIM.reference_gradient`);
a closed form of it is a speed path of :mod:`skmeta.meta.accel`
(``tim_gradient``: a TIM fit 1.1 to 2.7 times faster on one CPU thread,
``benchmarks/results/tim_gradient.md``), tested equal and taken unless the paths
are switched off (``SKMETA_ACCEL=0``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import accel
from ..setting_checks import InvalidSetting, check_int_setting, check_real_setting
from .base import TransductiveMethod, check_embeddings, class_means, one_hot

__all__ = ["TIM", "AlphaTIM"]

EPS = 1e-12  # inside the logarithms and powers of probabilities
PAPER_WEIGHTS_UP_TO = 5  # classes: alpha-TIM's default weights beyond are TIM's


def _adam(weights, gradient_fn, n_iter, lr, betas=(0.9, 0.999), eps=1e-8):
    """Minimise with Adam (torch's defaults) for `n_iter` steps, given the
    loss gradient ``gradient_fn(weights)``; a few lines rather than
    ``torch.optim`` (whose construction imports ``torch._dynamo``)."""
    first = torch.zeros_like(weights)
    second = torch.zeros_like(weights)
    weights = weights.clone()
    for step in range(1, n_iter + 1):
        grad = gradient_fn(weights)
        first.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
        second.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
        denom = (second / (1 - betas[1] ** step)).sqrt_().add_(eps)
        weights.addcdiv_(first, denom, value=-lr / (1 - betas[0] ** step))
    return weights


class TIM(TransductiveMethod):
    """TIM-GD (Boudiaf et al. 2020).

    Without unlabelled rows only the support cross-entropy remains: the
    classifier is fine-tuned on the support set (the method's own inductive
    form, the paper's "CE" baseline).

    Parameters
    ----------
    temperature : float, default=15
        ``T`` of the logits ``-T / 2 * ||x - w||^2``.
    loss_weights : tuple of 3 floats, default=(0.1, 1.0, 0.1)
        Weights (each >= 0) of the support cross-entropy, the marginal entropy
        and the conditional entropy.
    n_iter : int, default=1000
        Adam iterations.
    lr : float, default=1e-4
        Adam's learning rate.
    """

    name = "tim"
    summary = "TIM: mutual information of unlabelled rows and labels (Boudiaf 2020)"
    settings = ("temperature", "loss_weights", "n_iter", "lr")
    default_loss_weights = (0.1, 1.0, 0.1)

    def __init__(
        self,
        temperature: float = 15.0,
        loss_weights: tuple[float, float, float] | None = None,
        n_iter: int = 1000,
        lr: float = 1e-4,
    ) -> None:
        loss_weights = (
            self.default_loss_weights if loss_weights is None else loss_weights
        )
        try:
            weights = None if isinstance(loss_weights, str) else tuple(loss_weights)
        except TypeError:  # not iterable
            weights = None
        if weights is None or len(weights) != 3:
            raise InvalidSetting(
                f"loss_weights must be 3 numbers; got loss_weights={loss_weights!r}."
            )
        self.temperature = check_real_setting("temperature", temperature)
        self.loss_weights = tuple(
            check_real_setting(f"loss_weights[{i}]", w, allow_zero=True)
            for i, w in enumerate(weights)
        )
        self.n_iter = check_int_setting("n_iter", n_iter, minimum=0)
        self.lr = check_real_setting("lr", lr)

    def weights_for(self, n_classes: int) -> tuple[float, float, float]:
        """The loss weights (support cross-entropy, marginal entropy,
        conditional entropy) on a task of `n_classes`: ``loss_weights``."""
        return self.loss_weights

    def logits(self, weights: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``-T / 2 * ||x - w_c||^2`` of normalised rows, shape (n, n_classes)."""
        sq = (rows * rows).sum(1, keepdim=True) - 2 * rows @ weights.T
        return -self.temperature / 2 * (sq + (weights * weights).sum(1))

    def query_terms(
        self, probs: torch.Tensor, support_shots: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(marginal entropy, mean conditional entropy) of the unlabelled rows'
        class probabilities `probs` (n_unlabelled, n_classes): Shannon's."""
        marginal = probs.mean(0)
        h_marginal = -(marginal * torch.log(marginal + EPS)).sum()
        h_conditional = -(probs * torch.log(probs + EPS)).sum(1).mean()
        return h_marginal, h_conditional

    def loss(self, weights, support, targets, unlabelled, shots) -> torch.Tensor:
        """The training loss of the classifier `weights` (n_classes, dim) on
        normalised `support` rows with one-hot `targets` and `unlabelled`
        rows, whose smallest class has `shots` support rows."""
        w_ce, w_marginal, w_conditional = self.weights_for(targets.shape[1])
        log_probs = F.log_softmax(self.logits(weights, support), dim=1)
        value = -w_ce * (targets * log_probs).sum(1).mean()
        if unlabelled.shape[0]:
            probs = F.softmax(self.logits(weights, unlabelled), dim=1)
            h_marginal, h_conditional = self.query_terms(probs, shots)
            value = value - (w_marginal * h_marginal - w_conditional * h_conditional)
        return value

    def reference_gradient(
        self, weights, support, targets, unlabelled, shots
    ) -> torch.Tensor:
        """Gradient of :meth:`loss` with respect to `weights`, by autograd:
        the reference every faster path is tested against."""
        with torch.inference_mode(False), torch.enable_grad():
            # tensors made in inference mode cannot be saved for backward
            support, targets, unlabelled = (
                t.clone() if t.is_inference() else t
                for t in (support, targets, unlabelled)
            )
            leaf = weights.detach().clone().requires_grad_(True)
            value = self.loss(leaf, support, targets, unlabelled, shots)
            (grad,) = torch.autograd.grad(value, leaf)
        return grad

    def gradient(self, weights, support, targets, unlabelled, shots) -> torch.Tensor:
        """Gradient of :meth:`loss` with respect to `weights`, shape
        (n_classes, dim): the ``tim_gradient`` speed path of
        :mod:`skmeta.meta.accel` when it knows this method and the paths are
        on, else :meth:`reference_gradient`."""
        path = self._gradient_function()
        return path(self, weights, support, targets, unlabelled, shots)

    def _gradient_function(self):
        """The function :meth:`gradient` runs, ``f(method, weights, support,
        targets, unlabelled, shots)``: the speed path, or the reference."""
        return accel.find("tim_gradient", self) or type(self).reference_gradient

    def fit(self, support, support_y, unlabelled, n_classes):
        support, support_y, unlabelled = check_embeddings(
            support, support_y, unlabelled, n_classes
        )
        support = F.normalize(support, dim=1)
        unlabelled = F.normalize(unlabelled, dim=1)
        targets = one_hot(support_y, n_classes)
        shots = int(torch.bincount(support_y, minlength=n_classes).min())
        initial = class_means(support, support_y, n_classes)
        # the path looked up once, not at each of the n_iter steps
        path = self._gradient_function()
        weights = _adam(
            initial,
            lambda w: path(self, w, support, targets, unlabelled, shots),
            self.n_iter,
            self.lr,
        )
        state = {"weights": weights}
        state["unlabelled_scores"] = self.predict(state, unlabelled)
        return state

    def predict(self, state, queries):
        return self.logits(state["weights"], F.normalize(queries.double(), dim=1))


class AlphaTIM(TIM):
    """alpha-TIM (Veilleux et al. 2021): TIM with Tsallis alpha-entropies on
    the unlabelled rows, robust to class-imbalanced queries.

    Parameters
    ----------
    temperature : float, default=15
        As for TIM.
    loss_weights : tuple of 3 floats, default=None
        Weights of the support cross-entropy, the marginal and the conditional
        alpha-entropies. None: by the task's number of classes, the paper's
        ``(1, 1, 1)`` up to 5 classes and TIM's ``(0.1, 1, 0.1)`` beyond (see
        the module's notes); the attribute then holds the paper's, and
        :meth:`weights_for` says which a task takes.
    n_iter : int, default=1000
        Adam iterations.
    lr : float, default=1e-4
        Adam's learning rate.
    alpha : float, default=None
        Order of the alpha-entropies (> 0, not 1). None: the paper's tuned
        values, 2 for 1-shot and 7 for 5-shot or more support sets (5 in
        between, the reference code's default), by the smallest class's shots.
    """

    name = "alpha-tim"
    summary = "alpha-TIM: TIM with alpha-entropies, for imbalanced queries (2021)"
    settings = (*TIM.settings, "alpha")
    default_loss_weights = (1.0, 1.0, 1.0)  # the paper's, up to 5 classes
    many_class_loss_weights = TIM.default_loss_weights
    _weights_by_classes = False  # an instance pickled before the rule keeps its own

    def __init__(
        self,
        temperature: float = 15.0,
        loss_weights: tuple[float, float, float] | None = None,
        n_iter: int = 1000,
        lr: float = 1e-4,
        alpha: float | None = None,
    ) -> None:
        super().__init__(temperature, loss_weights, n_iter, lr)
        if alpha is not None:
            alpha = check_real_setting("alpha", alpha)
            if alpha == 1:
                raise InvalidSetting(f"alpha must be > 0 and not 1; got alpha={alpha}.")
        self.alpha = alpha
        self._weights_by_classes = loss_weights is None

    def weights_for(self, n_classes: int) -> tuple[float, float, float]:
        """The given ``loss_weights``; by default the paper's up to
        :data:`PAPER_WEIGHTS_UP_TO` classes and TIM's beyond."""
        if self._weights_by_classes and n_classes > PAPER_WEIGHTS_UP_TO:
            return self.many_class_loss_weights
        return self.loss_weights

    def order(self, support_shots: int) -> float:
        """The alpha-entropies' order for a support set of `support_shots`."""
        if self.alpha is not None:
            return self.alpha
        return 2.0 if support_shots <= 1 else 7.0 if support_shots >= 5 else 5.0

    def query_terms(self, probs, support_shots):
        alpha = self.order(support_shots)
        marginal = probs.mean(0)
        h_marginal = (1 - marginal.pow(alpha).sum()) / (alpha - 1)
        h_conditional = ((1 - (probs + EPS).pow(alpha).sum(1)) / (alpha - 1)).mean()
        return h_marginal, h_conditional
