"""Batch norm with per-task statistics, for gradient-based meta-learning.

MAML-style methods normalise with the statistics of the task at hand. Here a
task's statistics are those of its *support set* (as MetaBN / TaskNorm-I,
Bronskill et al. 2020): the support pass computes them, the query pass reuses
them. Predictions then depend only on the support set and each query row, never
on which other queries share a batch. The statistics stay differentiable, so
second-order MAML sees how they move with the weights (``F.batch_norm`` refuses
running statistics that require grad).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

__all__ = ["TaskBatchNorm", "task_statistics", "use_task_norm"]


class TaskBatchNorm(nn.BatchNorm2d):
    """BatchNorm that normalises with the batch's statistics or given ones.

    Same parameters and state-dict keys as ``nn.BatchNorm1d/2d`` (the running
    statistics are kept for compatibility but never used). Works for inputs of
    shape ``(batch, C)`` and ``(batch, C, H, W)``.
    """

    given: tuple[torch.Tensor, torch.Tensor] | None = None
    captured: tuple[torch.Tensor, torch.Tensor] | None = None

    def _check_input_dim(self, input):  # noqa: D102 - any rank >= 2
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]
        if self.given is None:
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            self.captured = (mean, var)
        else:
            mean, var = self.given
        shape = (1, -1) + (1,) * (x.dim() - 2)
        x = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            x = x * self.weight.view(shape) + self.bias.view(shape)
        return x


def use_task_norm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d`` in `module` by a :class:`TaskBatchNorm`
    with the same parameters and buffers (in place; returns `module`)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d | nn.BatchNorm2d) and not isinstance(
            child, TaskBatchNorm
        ):
            norm = TaskBatchNorm(
                child.num_features,
                eps=child.eps,
                momentum=child.momentum,
                affine=child.affine,
                track_running_stats=child.track_running_stats,
            )
            norm.load_state_dict(child.state_dict())
            setattr(module, name, norm)
        else:
            use_task_norm(child)
    return module


@contextlib.contextmanager
def task_statistics(module: nn.Module, given: list | None = None):
    """Run `module` with given per-layer statistics, or capture the batch's.

    Parameters
    ----------
    module : torch.nn.Module
        A network whose batch norms are :class:`TaskBatchNorm` (others are left
        alone).
    given : list of (mean, var), optional
        Statistics to normalise with, one pair per TaskBatchNorm in module order
        (as captured by a previous call). None: use and capture the batch's.

    Yields
    ------
    captured : list
        Filled, on exit, with the (mean, var) each layer used.
    """
    norms = [m for m in module.modules() if isinstance(m, TaskBatchNorm)]
    captured: list = []
    for i, norm in enumerate(norms):
        norm.given = None if given is None else given[i]
        norm.captured = None
    try:
        yield captured
        captured.extend(norm.given or norm.captured for norm in norms)
    finally:
        for norm in norms:
            norm.given = norm.captured = None
