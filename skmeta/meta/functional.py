"""The network as a function: parameters and batch statistics in, embeddings
and batch statistics out.

Gradient-based methods run the network with other values of its parameters (a
task's adapted weights) and with a task's batch-norm statistics. Here that is a
pure function of its arguments: nothing is written on the network that another
caller could see, so one network serves many threads at once.

:func:`embed` is the reference computation. :func:`embed_tasks` and
:func:`embed_once` compute the same (several tasks at once; a pass that is
differentiated once) and use a speed path of :mod:`skmeta.meta.accel` where
one is registered for the network.
"""

from __future__ import annotations

import copy
import functools
import threading
import weakref

import torch
from torch import nn
from torch.func import functional_call

from . import accel
from .norm import (
    Statistics,
    TaskBatchNorm,
    merge_moments,
    norm_statistics,
    probe_statistics,
)

__all__ = [
    "embed",
    "embed_once",
    "embed_tasks",
    "forward",
    "support_statistics",
    "thread_replica",
]

_LOCAL = threading.local()


def thread_replica(module: nn.Module) -> nn.Module:
    """This thread's copy of `module`, sharing every parameter and buffer.

    ``torch.func.functional_call`` swaps tensors into the module it is given
    for the length of the call, so each thread runs it on its own copy: built
    once per thread and module (only the module objects are new), dropped with
    the module, and in the module's training mode (dropout, batch norm).
    """
    replicas = getattr(_LOCAL, "replicas", None)
    if replicas is None:
        replicas = _LOCAL.replicas = weakref.WeakKeyDictionary()
    replica = replicas.get(module)
    if replica is None:
        shared = {id(t): t for t in (*module.parameters(), *module.buffers())}
        replica = replicas[module] = copy.deepcopy(module, memo=shared)
    if replica.training != module.training:  # e.g. validation between steps
        replica.train(module.training)
    return replica


def embed(
    net: nn.Module,
    weights: dict[str, torch.Tensor],
    x: torch.Tensor,
    stats: Statistics | None = None,
) -> tuple[torch.Tensor, Statistics]:
    """Embed rows with some parameters replaced and given batch statistics.

    Parameters
    ----------
    net : MetaNet
        Not modified.
    weights : dict of str to Tensor
        Values of parameters by their name in `net` (e.g. a task's adapted
        weights); the others are the network's own.
    x : Tensor of shape (n_rows, n_features)
    stats : list of (mean, var), optional
        One pair per task batch norm (:mod:`skmeta.meta.norm`), each of shape
        (channels,): the statistics to normalise with. None: the batch's.

    Returns
    -------
    embedding : Tensor of shape (n_rows, embedding_dim)
    stats : list of (mean, var)
        The statistics each task batch norm used.
    """
    with norm_statistics(stats) as used:
        out = forward(net, weights, x)
    return out, used


def forward(
    net: nn.Module, weights: dict[str, torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """``net(x)`` with some parameters replaced, its task batch norms left to
    the caller's :func:`~skmeta.meta.norm.norm_statistics` scope (or their
    batch's statistics). Arguments as :func:`embed`'s."""
    if weights:
        return functional_call(thread_replica(net), weights, (x,), strict=False)
    return net(x)


def embed_tasks(
    net: nn.Module, weights: dict[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, Statistics]:
    """Embed each task's rows with its own weights and batch statistics.

    Parameters
    ----------
    net : MetaNet
    weights : dict of str to Tensor of shape (n_tasks, *parameter_shape)
        Per-task values of parameters, by their name in `net`.
    x : Tensor of shape (n_tasks, n_rows, n_features)

    Returns
    -------
    embeddings : Tensor of shape (n_tasks, n_rows, embedding_dim)
    stats : list of (mean, var), each of shape (n_tasks, channels)
        Per task batch norm, the statistics of each task's rows.
    """
    n_tasks = x.shape[0]
    path = accel.find("embed_tasks", net) if n_tasks > 1 else None
    if path is not None:
        return path(net, weights, x)
    embeddings, per_task = [], []
    for task in range(n_tasks):
        emb, stats = embed(net, {k: w[task] for k, w in weights.items()}, x[task])
        embeddings.append(emb)
        per_task.append(stats)
    stats = [
        tuple(torch.stack(values) for values in zip(*layer, strict=True))
        for layer in zip(*per_task, strict=True)
    ]
    return torch.stack(embeddings), stats


def embed_once(
    net: nn.Module,
    weights: dict[str, torch.Tensor],
    x: torch.Tensor,
    stats: Statistics | None = None,
) -> torch.Tensor:
    """:func:`embed`'s embedding, for a pass that is differentiated at most once
    (a query pass after the inner loop, or inference).

    A speed path may then build a graph whose second derivative raises.
    """
    path = accel.find("embed_once", net)
    if path is not None:
        return path(net, weights, x, stats)
    return embed(net, weights, x, stats)[0]


@torch.no_grad()
def support_statistics(
    net: nn.Module, weights: dict[str, torch.Tensor], x: torch.Tensor, chunk_rows: int
) -> Statistics:
    """Task batch norm statistics of all of `x`, as one pass over it has them,
    computed chunk by chunk (for a support set larger than one pass holds).

    The reference finds each layer's statistics with a pass of its own that
    stops there (:func:`~.norm.probe_statistics`): layer ``k``'s need the
    layers before it normalised with theirs. A speed path of
    :mod:`skmeta.meta.accel` may compute the same in one pass.

    Parameters
    ----------
    net : MetaNet
    weights : dict of str to Tensor
        Parameter values by name (one task's, no task axis).
    x : Tensor of shape (n_rows, n_features)
    chunk_rows : int
        Rows per forward pass.

    Returns
    -------
    list of (mean, var)
        Per :class:`~.norm.TaskBatchNorm`, in the order a pass reaches them,
        each of shape (channels,): the mean and biased variance over all rows
        (and pixels), combined in float64 from the chunks'.
    """
    path = accel.find("support_statistics", net)
    fast = None if path is None else path(net, weights, x, chunk_rows)
    if fast is not None:  # None: the path declined (too many rows to keep)
        return fast
    stats: Statistics = []
    # one pass per task batch norm (a module called twice in a pass would
    # need more), and none to find that there is no other
    n_norms = sum(isinstance(m, TaskBatchNorm) for m in net.modules())
    while len(stats) < n_norms:
        running = count = None
        for part in x.split(chunk_rows):
            h = probe_statistics(functools.partial(forward, net, weights, part), stats)
            if h is None:  # no task batch norm left
                return stats
            dims = [0, *range(2, h.dim())]
            var, mean = torch.var_mean(h, dims, unbiased=False)
            n = h.numel() // h.shape[1]
            count, *running = merge_moments(running, count, mean, var, n)
        mean, m2 = running
        stats.append((mean.to(x.dtype), (m2 / count).to(x.dtype)))
    return stats
