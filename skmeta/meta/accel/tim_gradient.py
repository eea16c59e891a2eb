"""TIM's and alpha-TIM's gradient in closed form.

The reference is autograd's gradient of the method's loss
(:meth:`~skmeta.meta.transductive.tim.TIM.reference_gradient`). TIM runs 1,000
Adam steps on a small classifier, where autograd's graph building and
bookkeeping cost more than the arithmetic: written out, the logits' gradient
``G`` (n_rows, n_classes) gives the weights' ``T * (G^T X - diag(sum_i G_i) W)``
for the logits ``-T / 2 * ||x - w_c||^2``, and the query entropies'
derivatives have closed forms too. A fit at the paper's settings was 1.1 to
2.7 times faster so on one CPU thread: the most on small tasks (5-way, 64
features), the least at 20 ways and 640 features
(``benchmarks/results/tim_gradient.md``).

Registered for exactly :class:`~.transductive.tim.TIM` and
:class:`~.transductive.tim.AlphaTIM`: a subclass with other query terms takes
the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..transductive.tim import EPS, TIM, AlphaTIM
from . import register

__all__ = ["query_gradient", "tim_gradient"]


def _softmax_backward(probs: torch.Tensor, grad_probs: torch.Tensor) -> torch.Tensor:
    """Gradient with respect to the logits of a row-wise softmax."""
    return probs * (grad_probs - (grad_probs * probs).sum(1, keepdim=True))


def query_gradient(method: TIM, probs: torch.Tensor, shots: int) -> torch.Tensor:
    """Gradient of the unlabelled rows' part of the loss,
    ``-(l_marg * H(Y_Q) - l_cond * H(Y_Q | X_Q))`` (``method.query_terms``),
    with respect to their class probabilities `probs` (n, n_classes).

    Shannon entropies for TIM, Tsallis alpha-entropies of order
    ``method.order(shots)`` for alpha-TIM.

    Parameters
    ----------
    method : TIM or AlphaTIM
        Its loss weights for ``n_classes`` (``method.weights_for``) and
        alpha-TIM's ``order``.
    probs : Tensor of shape (n_unlabelled, n_classes)
        Class probabilities of the unlabelled rows.
    shots : int
        Support rows of the smallest class (alpha-TIM's order).

    Returns
    -------
    Tensor of shape (n_unlabelled, n_classes)
    """
    _, w_marginal, w_conditional = method.weights_for(probs.shape[1])
    n = probs.shape[0]
    marginal = probs.mean(0)
    if isinstance(method, AlphaTIM):
        alpha = method.order(shots)
        d_marginal = -alpha * marginal.pow(alpha - 1) / (alpha - 1)
        d_conditional = -alpha * (probs + EPS).pow(alpha - 1) / (alpha - 1)
    else:
        d_marginal = -(torch.log(marginal + EPS) + marginal / (marginal + EPS))
        d_conditional = -(torch.log(probs + EPS) + probs / (probs + EPS))
    return (-w_marginal * d_marginal + w_conditional * d_conditional) / n


@register("tim_gradient", lambda method: type(method) in (TIM, AlphaTIM))
def tim_gradient(
    method: TIM,
    weights: torch.Tensor,
    support: torch.Tensor,
    targets: torch.Tensor,
    unlabelled: torch.Tensor,
    shots: int,
) -> torch.Tensor:
    """Gradient of ``method.loss`` with respect to `weights`, in closed form.

    Parameters
    ----------
    method : TIM or AlphaTIM
    weights : Tensor of shape (n_classes, dim)
    support : Tensor of shape (n_support, dim)
        L2-normalised support rows.
    targets : Tensor of shape (n_support, n_classes)
        Their one-hot labels.
    unlabelled : Tensor of shape (n_unlabelled, dim)
        L2-normalised unlabelled rows (possibly none).
    shots : int
        Support rows of the smallest class (alpha-TIM's order).

    Returns
    -------
    Tensor of shape (n_classes, dim)
    """
    probs = F.softmax(method.logits(weights, support), dim=1)
    w_ce = method.weights_for(targets.shape[1])[0]
    grad_logits = [w_ce * (probs - targets) / support.shape[0]]
    rows = [support]
    if unlabelled.shape[0]:
        probs = F.softmax(method.logits(weights, unlabelled), dim=1)
        grad_probs = query_gradient(method, probs, shots)
        grad_logits.append(_softmax_backward(probs, grad_probs))
        rows.append(unlabelled)
    grad = sum(g.T @ x for g, x in zip(grad_logits, rows, strict=True))
    counts = sum(g.sum(0) for g in grad_logits)
    return method.temperature * (grad - counts.unsqueeze(1) * weights)
