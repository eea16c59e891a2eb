"""Closed-form linear heads, differentiable and batched over tasks.

Two solvers of scikit-learn's problems, written in torch (no scikit-learn
import), so that a head fitted on a support set's embeddings can be
back-propagated through in meta-training:

- :func:`ridge_head`: ``RidgeClassifier(alpha)``: one-vs-rest targets of +1 and
  -1, an intercept that is not penalised (features and targets centred), and
  ``alpha * ||w||^2``. Solved exactly (Cholesky), in the ``n x n`` (Woodbury)
  form when there are fewer support rows than features.
- :func:`svm_head`: ``LinearSVC(C)``'s default problem: one-vs-rest,
  ``||w||^2 / 2 + C * sum_i max(0, 1 - y_i (w . x_i + b))^2``, the intercept
  being the weight of a constant feature of value 1 and penalised as such
  (liblinear's ``intercept_scaling=1``). Solved to convergence by Newton's
  method (the objective is piecewise quadratic: finitely many steps), then
  made differentiable by one more Newton step taken from the detached
  optimum. Its value is the optimum (the gradient is zero there) and its
  derivative with respect to the features is exactly the implicit-function
  theorem's.

Both return heads ``(n_tasks, n_classes, dim)`` and ``(n_tasks, n_classes)``
in float64 and a row per class, for any number of classes: with two classes,
row 1 is scikit-learn's binary ``coef_`` and row 0 its negation (both
problems are symmetric under ``y -> -y``, ``w -> -w``).

:class:`ClosedFormHeadMethod` is the method both build on (``r2d2.py``,
``metaoptnet.py``): meta-training loss, ``adapt`` and ``predict`` around a
:meth:`~ClosedFormHeadMethod.solve` hook.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ..caller import user_stacklevel
from ..net import MetaNet, embed_rows
from ..setting_checks import check_real_setting
from .base import AdaptationDiverged, Algorithm, TaskBatch
from .protonet import embed_support_and_query

__all__ = ["ClosedFormHeadMethod", "one_vs_rest_targets", "ridge_head", "svm_head"]


def one_vs_rest_targets(
    labels: torch.Tensor, n_classes: int, dtype: torch.dtype
) -> torch.Tensor:
    """Targets +1 for a row's class and -1 for the others.

    Parameters
    ----------
    labels : Tensor of shape (n,), int64 in ``0..n_classes-1``
    n_classes : int
    dtype : torch.dtype

    Returns
    -------
    Tensor of shape (n, n_classes)
    """
    onehot = F.one_hot(labels, n_classes).to(dtype)
    return 2 * onehot - 1


def _nan_head(x: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The head of non-finite features: NaN, so that a loss or an adaptation
    reports it (the training loop's non-finite loss check, ``adapt``'s
    :class:`AdaptationDiverged`) rather than a factorisation failing."""
    nan = x.new_full((x.shape[0], n_classes, x.shape[-1] + 1), float("nan"))
    return nan[..., :-1], nan[..., -1]


def ridge_head(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-vs-rest ridge classifier with intercept (``RidgeClassifier(alpha)``).

    Parameters
    ----------
    features : Tensor of shape (n_tasks, n, dim)
        Support embeddings; gradients flow back to them.
    labels : Tensor of shape (n,), int64 in ``0..n_classes-1``
        The same for every task.
    n_classes : int
    alpha : float > 0
        Weight of the penalty ``alpha * ||w||^2`` (the intercept is free).

    Returns
    -------
    weight : Tensor of shape (n_tasks, n_classes, dim), float64
    bias : Tensor of shape (n_tasks, n_classes), float64
    """
    alpha = check_real_setting("alpha", alpha)
    x = features.double()
    if not torch.isfinite(x).all():
        return _nan_head(x, n_classes)
    n, dim = x.shape[-2:]
    targets = one_vs_rest_targets(labels, n_classes, x.dtype)
    x_mean = x.mean(-2, keepdim=True)  # (T, 1, dim)
    y_mean = targets.mean(0)  # (K,)
    xc = x - x_mean
    yc = (targets - y_mean).expand(x.shape[0], n, n_classes)
    if n < dim:  # w = Xc' (Xc Xc' + alpha I)^-1 Yc: an n x n system
        eye = torch.eye(n, dtype=x.dtype, device=x.device)
        chol = torch.linalg.cholesky(xc @ xc.mT + alpha * eye)
        coef = xc.mT @ torch.cholesky_solve(yc, chol)
    else:  # (Xc' Xc + alpha I) w = Xc' Yc: a dim x dim system
        eye = torch.eye(dim, dtype=x.dtype, device=x.device)
        chol = torch.linalg.cholesky(xc.mT @ xc + alpha * eye)
        coef = torch.cholesky_solve(xc.mT @ yc, chol)
    # coef (T, dim, K); the intercept makes the centred fit exact at the means
    bias = y_mean - (x_mean @ coef).squeeze(-2)
    return coef.mT, bias


def _svm_gradient(w, x, targets, C):
    """Gradient of the squared-hinge objective, its active set and margins.

    ``w`` (T, K, p), ``x`` (T, n, p) with the constant column, ``targets``
    (K, n). Returns the gradient (T, K, p) and the active mask (T, K, n).
    """
    scores = w @ x.mT  # (T, K, n)
    active = (targets * scores < 1).to(x.dtype)
    return w + 2 * C * (active * (scores - targets)) @ x, active


def _svm_objective(w, x, targets, C):
    """``||w||^2 / 2 + C * sum(max(0, 1 - y s)^2)`` per (task, class): (T, K)."""
    hinge = (1 - targets * (w @ x.mT)).clamp_min(0)
    return 0.5 * (w * w).sum(-1) + C * (hinge * hinge).sum(-1)


def _solve_hessian(x, active, C, v):
    """``H^-1 v`` for the generalised Hessian ``H = I + 2C X' D X`` of each
    (task, class), ``D`` its active rows; by Woodbury (``n x n``) when there
    are fewer rows than columns.

    ``x`` (T, n, p), ``active`` (T, K, n), ``v`` (T, K, p) -> (T, K, p).
    """
    n, p = x.shape[-2:]
    if n < p:
        # H^-1 = I - 2C X' D (I + 2C D G D)^-1 D X, with G = X X'
        gram = (x @ x.mT).unsqueeze(1)  # (T, 1, n, n)
        inner = 2 * C * active.unsqueeze(-1) * gram * active.unsqueeze(-2)
        inner = inner + torch.eye(n, dtype=x.dtype, device=x.device)
        rhs = active * (v @ x.mT)  # (T, K, n)
        sol = torch.linalg.solve(inner, rhs.unsqueeze(-1)).squeeze(-1)
        return v - 2 * C * (active * sol) @ x
    hessian = 2 * C * torch.einsum("tkn,tnp,tnq->tkpq", active, x, x)
    hessian = hessian + torch.eye(p, dtype=x.dtype, device=x.device)
    return torch.linalg.solve(hessian, v.unsqueeze(-1)).squeeze(-1)


def _newton(x, targets, C, tol, max_iter):
    """Minimiser of the squared-hinge objective for each (task, class), by
    Newton's method with backtracking (Armijo) line search; no gradients.

    A (task, class) is done when its gradient is small, or when a full Newton
    step left its active set unchanged: the step then landed on the minimiser
    of the quadratic the active set defines, which is the optimum (this ends
    the search where round-off keeps the gradient above `tol`).
    """
    n_tasks, p = x.shape[0], x.shape[-1]
    w = x.new_zeros(n_tasks, targets.shape[0], p)
    grad, active = _svm_gradient(w, x, targets, C)
    threshold = tol * grad.norm(dim=-1).clamp_min(1.0)  # relative to the start
    done = grad.norm(dim=-1) <= threshold
    for _ in range(max_iter):
        if done.all():
            return w
        step = _solve_hessian(x, active, C, grad) * ~done.unsqueeze(-1)
        decrease = (grad * step).sum(-1)  # > 0: H is positive definite
        start = _svm_objective(w, x, targets, C)
        rate = torch.ones_like(start)
        for _ in range(40):
            trial = w - rate.unsqueeze(-1) * step
            ok = _svm_objective(trial, x, targets, C) <= start - 1e-4 * rate * decrease
            if ok.all():
                break
            rate = torch.where(ok, rate, rate / 2)
        w = trial
        grad, new_active = _svm_gradient(w, x, targets, C)
        same_piece = (rate == 1) & (new_active == active).all(-1)
        done = done | same_piece | (grad.norm(dim=-1) <= threshold)
        active = new_active
    if not done.all():
        warnings.warn(
            f"The SVM head did not converge in {max_iter} Newton steps (gradient "
            f"norm {grad.norm(dim=-1).max().item():.3g}); the features may be "
            "badly scaled.",
            RuntimeWarning,
            stacklevel=user_stacklevel(),  # the user's line
        )
    return w


def svm_head(
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    C: float,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-vs-rest linear SVM, squared hinge (``LinearSVC(C)``'s problem).

    Parameters
    ----------
    features : Tensor of shape (n_tasks, n, dim)
        Support embeddings; gradients flow back to them (implicit
        differentiation at the optimum, through one Newton step).
    labels : Tensor of shape (n,), int64 in ``0..n_classes-1``
        The same for every task.
    n_classes : int
    C : float > 0
        Weight of the squared hinge losses; the penalty is ``||w||^2 / 2``,
        the intercept included.
    tol : float, default=1e-12
        Newton stops when the gradient norm is below `tol` times its norm at
        zero (or 1 if larger).
    max_iter : int, default=100
        Newton steps at most (a ``RuntimeWarning`` if not converged).

    Returns
    -------
    weight : Tensor of shape (n_tasks, n_classes, dim), float64
    bias : Tensor of shape (n_tasks, n_classes), float64
    """
    C = check_real_setting("C", C)
    x = features.double()
    if not torch.isfinite(x).all():
        return _nan_head(x, n_classes)
    x = torch.cat([x, x.new_ones(*x.shape[:-1], 1)], -1)  # intercept column
    targets = one_vs_rest_targets(labels, n_classes, x.dtype).mT  # (K, n)
    with torch.no_grad():
        optimum = _newton(x.detach(), targets, C, tol, max_iter)
    # w = w* - H(w*)^-1 g(w*, X): equal to w* (g = 0 there), and its derivative
    # in X is -H^-1 dg/dX, the implicit function theorem's (H held fixed: the
    # term of its derivative is multiplied by g = 0).
    grad, active = _svm_gradient(optimum, x, targets, C)
    w = optimum - _solve_hessian(x.detach(), active.detach(), C, grad)
    return w[..., :-1], w[..., -1]


class ClosedFormHeadMethod(Algorithm):
    """A linear head solved in closed form on each task's support embeddings,
    scored on its queries: R2-D2 and MetaOptNet differ only by :meth:`solve`.

    The query scores ``w . x + b`` are multiplied by a learnt scale
    (meta-parameter ``"scale"``, initialised at 10): the heads' scores lie
    near +1 for their class and -1 for the others, too flat a softmax
    otherwise. The cross-entropy of these logits is the meta-training loss;
    :meth:`predict` returns the same logits, so ``predict_proba`` is their
    softmax. Support and query rows are embedded in two passes, as ProtoNet's.
    """

    classifies_embeddings = True

    def solve(
        self, features: torch.Tensor, labels: torch.Tensor, n_classes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The head ``(T, K, dim)``, ``(T, K)`` for support embeddings
        ``(T, n, dim)`` and their labels ``(n,)``."""
        raise NotImplementedError

    def meta_parameters(self, net, embedding_dim, n_classes):
        return {"scale": torch.tensor(10.0)}

    @staticmethod
    def _logits(net, query, weight, bias):
        """``scale * (query @ weight.T + bias)`` in float64, batched:
        ``(..., q, dim)`` against ``(..., K, dim)``, ``(..., K)``."""
        scale = net.extra["scale"].double()
        return scale * (query.double() @ weight.mT + bias.unsqueeze(-2))

    def loss(self, net: MetaNet, batch: TaskBatch):
        n_tasks = batch.n_tasks
        support, query = embed_support_and_query(net, batch)
        weight, bias = self.solve(support, batch.support_y, batch.n_way)
        logits = self._logits(net, query, weight, bias).float()
        logits = logits.reshape(-1, batch.n_way)
        targets = batch.query_y.repeat(n_tasks)
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.argmax(1) == targets).float().mean().item()
        return loss, {"accuracy": accuracy}

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        with torch.no_grad():
            embeddings = embed_rows(net, support_x, batch_size)
            weight, bias = self.solve(embeddings.unsqueeze(0), support_y, n_classes)
        if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
            raise AdaptationDiverged(
                f"The {self.name} head of this support set is not finite: the "
                "network's support embeddings hold NaN or infinity."
            )
        return {"weight": weight[0], "bias": bias[0]}

    def predict(self, net, state, query_x, batch_size=100):
        query = embed_rows(net, query_x, batch_size)
        return self._logits(net, query, state["weight"], state["bias"])

    def episode_metrics(self, net, batch):
        with torch.no_grad():
            loss, metrics = self.loss(net, batch)
        return loss.item(), metrics["accuracy"]
