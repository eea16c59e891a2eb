"""Functional batch norm with per-task statistics, for gradient-based methods.

MAML-style methods normalise with the statistics of the task at hand. Here a
task's statistics are those of its *support set* (as MetaBN / TaskNorm-I,
Bronskill et al. 2020): the support pass computes them, the query pass reuses
them. Predictions then depend only on the support set and each query row, never
on which other queries share a batch. The statistics stay differentiable, so
second-order MAML sees how they move with the weights (``F.batch_norm`` refuses
running statistics that require grad).

The statistics are arguments and results, never state on a module: a pass runs
inside :func:`norm_statistics`, which hands given statistics to the
:class:`TaskBatchNorm` layers and collects the ones they used. The hand-over is
a :class:`contextvars.ContextVar`, private to each thread, so one network
serves many threads at once.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "TaskBatchNorm",
    "batch_statistics",
    "merge_moments",
    "norm_statistics",
    "normalize",
    "probe_statistics",
    "use_task_norm",
]

Statistics = list[tuple[torch.Tensor, torch.Tensor]]


class _Pass:
    """Statistics given to and used by the task batch norms of one pass."""

    def __init__(self, given: Statistics | None) -> None:
        self.given = given or None
        self.used: Statistics = []
        # probe_statistics: stop at the layer after the given ones, keep its input
        self.probe = False
        self.probed: torch.Tensor | None = None


class _ProbeReached(Exception):
    """Raised by the probed layer to end the pass there."""


_CURRENT: ContextVar[_Pass | None] = ContextVar("skmeta_norm_pass", default=None)


def _channels(t: torch.Tensor, dim: int) -> torch.Tensor:
    """A per-channel vector shaped to broadcast over a `dim`-D activation."""
    return t.view((1, -1) + (1,) * (dim - 2))


def normalize(
    x: torch.Tensor,
    mean: torch.Tensor,
    var: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over axis 1, differentiable
    in every argument.

    Parameters
    ----------
    x : Tensor of shape (batch, channels, ...)
    mean, var : Tensor of shape (channels,)
    weight, bias : Tensor of shape (channels,) or None
    eps : float
    """
    out = (x - _channels(mean, x.dim())) * torch.rsqrt(_channels(var, x.dim()) + eps)
    if weight is not None:
        out = out * _channels(weight, x.dim()) + _channels(bias, x.dim())
    return out


def batch_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of `x` (batch, channels, ...)."""
    dims = [0, *range(2, x.dim())]
    return x.mean(dims), x.var(dims, unbiased=False)


def merge_moments(running, count, mean, var, n):
    """Running per-channel moments merged with a chunk's (Chan et al.), in float64.

    Parameters
    ----------
    running : (mean, m2) or None
        Merged so far: the mean, and the sum of squared deviations, each of
        shape (channels,), float64; None before the first chunk.
    count : int or None
        Values per channel merged so far.
    mean, var : Tensor of shape (channels,)
        The chunk's mean and biased variance.
    n : int
        Values per channel in the chunk.

    Returns
    -------
    count, mean, m2
        The merged count, mean and sum of squared deviations (float64).
    """
    mean, m2 = mean.double(), var.double() * n
    if running is None:
        return n, mean, m2
    total = count + n
    delta = mean - running[0]
    return (
        total,
        running[0] + delta * (n / total),
        running[1] + m2 + delta * delta * (count * n / total),
    )


class TaskBatchNorm(nn.BatchNorm2d):
    """Batch norm with the batch's statistics, or the ones a pass was given.

    Same parameters and state-dict keys as ``nn.BatchNorm1d/2d`` (the running
    statistics are kept for compatibility but never used). Works for inputs of
    shape ``(batch, C)`` and ``(batch, C, H, W)``. Outside
    :func:`norm_statistics` it normalises with the batch's statistics.
    """

    def _check_input_dim(self, input):  # noqa: D102 - any rank >= 2
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        current = _CURRENT.get()
        weight, bias = (self.weight, self.bias) if self.affine else (None, None)
        if current is not None and current.probe:
            if len(current.used) == len(current.given or ()):
                current.probed = x
                raise _ProbeReached
            mean, var = current.given[len(current.used)]
            current.used.append((mean, var))
            # no gradient here: one fused kernel
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, self.eps)
        if current is not None and current.given is not None:
            # layer after layer; a scope may hold several passes
            mean, var = current.given[len(current.used) % len(current.given)]
        else:
            mean, var = batch_statistics(x)
        if current is not None:
            current.used.append((mean, var))
        return normalize(x, mean, var, weight, bias, self.eps)


def use_task_norm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d`` in `module` by a :class:`TaskBatchNorm`
    with the same parameters and buffers (in place; returns `module`).

    Frozen batch norms (:mod:`~skmeta.meta.freezing`) stay as they are: a
    fixed function that normalises with its running statistics. Parameters
    keep their ``requires_grad``.
    """
    from .freezing import FROZEN_NORMS

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d) and not isinstance(
            child, (TaskBatchNorm, *FROZEN_NORMS)
        ):
            norm = TaskBatchNorm(
                child.num_features,
                eps=child.eps,
                momentum=child.momentum,
                affine=child.affine,
                track_running_stats=child.track_running_stats,
            )
            norm.load_state_dict(child.state_dict())
            for new, old in zip(norm.parameters(), child.parameters(), strict=True):
                new.requires_grad_(old.requires_grad)
            setattr(module, name, norm)
        else:
            use_task_norm(child)
    return module


@contextlib.contextmanager
def norm_statistics(given: Statistics | None = None):
    """Run a pass with given per-layer statistics, or collect the batch's.

    Parameters
    ----------
    given : list of (mean, var), optional
        Statistics to normalise with, one pair per :class:`TaskBatchNorm` in
        the order the pass reaches them (as collected by an earlier pass). None
        or empty: each layer uses its batch's.

    Yields
    ------
    used : list of (mean, var)
        Filled during the pass with the statistics each layer used.

    Examples
    --------
    >>> import torch
    >>> norm = TaskBatchNorm(3)
    >>> with norm_statistics() as support_stats:
    ...     _ = norm(torch.randn(5, 3, 2, 2))
    >>> with norm_statistics(support_stats):  # queries with the support's
    ...     out = norm(torch.randn(1, 3, 2, 2))
    >>> len(support_stats), out.shape
    (1, torch.Size([1, 3, 2, 2]))
    """
    current = _Pass(given)
    token = _CURRENT.set(current)
    try:
        yield current.used
    finally:
        _CURRENT.reset(token)


def probe_statistics(run, given: Statistics) -> torch.Tensor | None:
    """The input of the first :class:`TaskBatchNorm` after the given ones.

    Runs ``run()`` (a forward pass) with the task batch norms it reaches first
    normalising with `given` (in order), and stops the pass at the next one,
    returning its input: how statistics over more rows than one pass holds
    are built layer after layer (each layer's statistics need the earlier
    layers normalised with theirs).

    Parameters
    ----------
    run : callable
        Runs the forward pass; its result is discarded.
    given : list of (mean, var)
        Statistics of the first ``len(given)`` task batch norms.

    Returns
    -------
    Tensor of shape (batch, channels, ...) or None
        None when the pass reached no task batch norm past the given ones.
    """
    current = _Pass(None)
    current.given, current.probe = list(given), True
    token = _CURRENT.set(current)
    try:
        run()
    except _ProbeReached:
        return current.probed
    finally:
        _CURRENT.reset(token)
    return None
