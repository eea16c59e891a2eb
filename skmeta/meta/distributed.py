"""Meta-training on several processes (``torch.distributed``), as torchrun starts.

Every process builds the same run (same data, parameters and seed: rank 0's
seed is broadcast, and a fingerprint of the run is compared), draws the same
episodes, and takes its own share of each meta-batch's tasks (of each
mini-batch's rows for ``pretrain``): :meth:`Ranks.share`. After each
meta-gradient the gradients, loss and metrics are all-reduced, each process
weighted by its number of tasks, so every process holds the meta-gradient of
the whole meta-batch and makes the same update: the run is the one a single
process taking the whole meta-batch makes, to float rounding
(:meth:`Ranks.reduce_meta_gradient`). Validation (early stopping) splits its
episodes the same way and sums over the processes, so its records and
decisions are the same everywhere.

What differs from one process: batch norm with batch statistics (ProtoNet,
Matching Networks and pre-training with Conv4 or ResNet-12) normalises each
process's share with its own statistics, as ``DistributedDataParallel``
without ``SyncBatchNorm`` does; the running statistics are averaged over the
processes after each step. The inner-loop methods normalise per task (task
batch norm) and are unaffected.

The process group: the one the caller initialised, or, when none is and the
process was started by torchrun (``WORLD_SIZE`` > 1 and ``MASTER_ADDR`` in the
environment, and the process is not a worker a pool started), one skmeta
initialises itself (gloo to train on a CPU, nccl on a GPU) and keeps for the
life of the process. ``SKMETA_DISTRIBUTED=0`` makes
every process meta-train on its own.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .algorithms import LabelledBatch, TaskBatch
from .batches import share_of
from .callbacks import Callback
from .norm import TaskBatchNorm
from .run_guard import warn_if_pool_worker_of_a_rank

__all__ = [
    "DistributedSync",
    "Ranks",
    "current_ranks",
    "is_main_process",
]

SWITCH = "SKMETA_DISTRIBUTED"


def _launched_by_torchrun() -> bool:
    """Whether torchrun started this very process: its environment, and no
    parent of Python's ``multiprocessing`` (a pool's worker, e.g. joblib's
    under ``GridSearchCV(n_jobs=...)``, inherits the environment but is no
    rank of the run)."""
    return (
        int(os.environ.get("WORLD_SIZE", "1")) > 1
        and "MASTER_ADDR" in os.environ
        and multiprocessing.parent_process() is None
    )


def current_ranks(device: torch.device) -> Ranks | None:
    """The processes of the distributed run this process is part of, or None.

    None when ``SKMETA_DISTRIBUTED=0``, or when there is one process only.
    Initialises the default process group when torchrun started the process
    and nobody did (gloo for a CPU `device`, nccl for a GPU).

    Parameters
    ----------
    device : torch.device
        Where meta-training runs.

    Returns
    -------
    Ranks or None
    """
    if os.environ.get(SWITCH, "1") == "0" or not dist.is_available():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if not _launched_by_torchrun():
            warn_if_pool_worker_of_a_rank()
            return None
        backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank if device.index is None else device)
        dist.init_process_group(backend)
    if dist.get_world_size() == 1:
        return None
    if dist.get_backend() == "nccl" and device.type != "cuda":
        raise ValueError(
            f"device={str(device)!r} cannot meta-train with the nccl process group "
            "this process is in (GPUs only); initialise it with backend='gloo' to "
            "train on CPUs."
        )
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank, device)


def is_main_process() -> bool:
    """Whether this process writes files and shows progress: rank 0 of a
    distributed run (``RANK`` 0 of a torchrun launch, before ``fit`` too), or
    any process outside one.

    Examples
    --------
    >>> is_main_process()
    True
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    if os.environ.get(SWITCH, "1") != "0" and _launched_by_torchrun():
        return int(os.environ.get("RANK", "0")) == 0
    return True


def _code(value) -> int:
    """A 56-bit digest of JSON `value` (fits an int64 tensor)."""
    text = json.dumps(value, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:7], "little")


def _running_statistics(net: nn.Module) -> list[torch.Tensor]:
    """The running means and variances batch norm updates in training."""
    return [
        buffer
        for module in net.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and not isinstance(module, TaskBatchNorm)  # keeps them, never updates them
        and module.training
        and module.track_running_stats
        for buffer in (module.running_mean, module.running_var)
    ]


@dataclass(frozen=True)
class Ranks:
    """This process's place in a distributed run, and the collectives it needs.

    Attributes
    ----------
    rank : int
        0 to ``size - 1``; rank 0 writes files and shows progress.
    size : int
        Processes in the run (``WORLD_SIZE``).
    local_rank : int
        Rank on this host (``LOCAL_RANK``): the GPU it trains on.
    device : torch.device
        Where meta-training runs; collectives run there on a GPU, on the CPU
        otherwise.
    """

    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def _wire(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def local_gpu(self) -> torch.device:
        """GPU ``LOCAL_RANK`` of this machine: one GPU per process."""
        if self.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"device='cuda' trains process LOCAL_RANK={self.local_rank} on GPU "
                f"{self.local_rank}, but this machine has "
                f"{torch.cuda.device_count()}: launch at most one process per GPU "
                "(torchrun --nproc-per-node), or give device='cuda:<index>'."
            )
        return torch.device("cuda", self.local_rank)

    def share(self, n: int) -> slice:
        """This process's part of `n` tasks or rows (:func:`share_of`)."""
        return share_of(n, self.rank, self.size)

    def check_meta_batch(self, meta_batch_size: int) -> None:
        """Raise unless every process gets at least one task of a meta-batch."""
        if meta_batch_size < self.size:
            raise ValueError(
                f"meta_batch_size={meta_batch_size} is smaller than the {self.size} "
                "processes of this distributed run (WORLD_SIZE): each takes a share "
                "of a meta-batch's tasks. Set meta_batch_size to at least (best, a "
                f"multiple of) {self.size}, or launch fewer processes."
            )

    def sum(self, values: Sequence[float]) -> list[float]:
        """`values` summed over the processes (float64), the same on every one."""
        total = torch.tensor(list(values), dtype=torch.float64, device=self._wire)
        dist.all_reduce(total)
        return total.tolist()

    def broadcast_int(self, value: int) -> int:
        """Rank 0's `value`, on every process."""
        held = torch.tensor([int(value)], dtype=torch.int64, device=self._wire)
        dist.broadcast(held, 0)
        return int(held.item())

    def gather(self, values: Sequence[int]) -> list[list[int]]:
        """Every process's `values` (integers, as many on each), in rank order."""
        mine = torch.tensor(list(values), dtype=torch.int64, device=self._wire)
        every = [torch.empty_like(mine) for _ in range(self.size)]
        dist.all_gather(every, mine)
        return [tensor.tolist() for tensor in every]

    def check_same(self, fingerprint: Mapping) -> None:
        """Raise ``ValueError`` on every process unless all give the same
        `fingerprint` (JSON: what the run is, :func:`.fingerprint.run_fingerprint`:
        the settings, the data with a digest of X's values, the starting
        model); the message names the parts that differ and the processes."""
        parts = {
            "settings": "parameters or random_state",
            "data": "data: X's values, shape or dtype, or y",
            "warm_start": "the model warm_start continues",
        }
        codes = [_code(fingerprint.get(part)) for part in parts]
        every = self.gather(codes)
        differ = [
            words
            for i, words in enumerate(parts.values())
            if len({codes[i] for codes in every}) > 1
        ]
        if differ:
            odd = [rank for rank, codes in enumerate(every) if codes != every[0]]
            raise ValueError(
                f"The {self.size} processes of this distributed run were given "
                f"different runs ({'; '.join(differ)} differ from rank 0's on "
                f"rank(s) {odd}): every process must call fit with the same X, y "
                "and parameters (or set SKMETA_DISTRIBUTED=0 for each process to "
                "meta-train on its own)."
            )

    def broadcast_state(self, net: nn.Module) -> None:
        """Give every process rank 0's parameters and buffers."""
        for tensor in [*net.parameters(), *net.buffers()]:
            wire = tensor.detach().to(self._wire)
            dist.broadcast(wire, 0)
            tensor.data.copy_(wire)

    def average_running_statistics(self, net: nn.Module) -> None:
        """Average batch norm's running statistics over the processes."""
        buffers = _running_statistics(net)
        if not buffers:
            return
        flat = torch.cat([b.reshape(-1).to(self._wire, torch.float64) for b in buffers])
        dist.all_reduce(flat)
        flat /= self.size
        for buffer, part in zip(
            buffers, flat.split([b.numel() for b in buffers]), strict=True
        ):
            buffer.copy_(part.view_as(buffer))

    def reduce_meta_gradient(
        self, params: Sequence[torch.Tensor], batch, loss: float, metrics: dict
    ) -> tuple[float, dict]:
        """Turn this process's meta-gradient into the whole meta-batch's.

        Each process holds in ``.grad`` the mean gradient of its share
        (``batch``: ``n_r`` tasks or rows); afterwards every process holds
        ``sum_r n_r g_r / sum_r n_r``, the gradient one process taking the
        whole meta-batch computes. A parameter keeps ``.grad = None`` only if
        it has none on every process. A non-finite loss anywhere makes the
        returned loss non-finite everywhere.

        Parameters
        ----------
        params : sequence of Tensor
            The parameters the optimiser steps, in the same order everywhere.
        batch : TaskBatch or LabelledBatch
            This process's share.
        loss : float
        metrics : dict of str to float

        Returns
        -------
        loss : float
        metrics : dict
            The whole meta-batch's means.
        """
        if isinstance(batch, TaskBatch):
            n_local = batch.n_tasks
        elif isinstance(batch, LabelledBatch):
            n_local = batch.y.shape[0]
        else:
            raise TypeError(f"cannot share a batch of type {type(batch).__name__}.")
        keys = sorted(metrics)
        grads = [p.grad for p in params]
        flat = torch.cat(
            [
                (torch.zeros_like(p) if g is None else g).reshape(-1).to(self._wire)
                for p, g in zip(params, grads, strict=True)
            ]
        )
        flat.mul_(n_local)
        dist.all_reduce(flat)
        head = self.sum(
            [
                n_local,
                loss * n_local,
                *(metrics[k] * n_local for k in keys),
                *(g is not None for g in grads),
            ]
        )
        total = head[0]
        flat.div_(total)
        parts = flat.split([p.numel() for p in params])
        for p, part, has in zip(params, parts, head[2 + len(keys) :], strict=True):
            if not has:
                p.grad = None
            elif p.grad is None:
                p.grad = part.view_as(p).to(p.device, p.dtype).clone()
            else:
                p.grad.copy_(part.view_as(p))
        means = {
            k: v / total for k, v in zip(keys, head[2 : 2 + len(keys)], strict=True)
        }
        return head[1] / total, means


class DistributedSync(Callback):
    """Keep the processes of a distributed run in step.

    Before the first iteration every process takes rank 0's weights (the same
    as its own to float rounding: the same seed built them); after each
    update, batch norm's running statistics are averaged. The meta-gradient
    itself is all-reduced by the loop (:meth:`Ranks.reduce_meta_gradient`),
    before loss scaling is undone and before gradient clipping.

    Put it first among the callbacks.

    Parameters
    ----------
    ranks : Ranks
    """

    def __init__(self, ranks: Ranks) -> None:
        self.ranks = ranks

    def on_train_begin(self, loop):
        self.ranks.broadcast_state(loop.net)

    def on_step_end(self, loop, loss, metrics):
        self.ranks.average_running_statistics(loop.net)
