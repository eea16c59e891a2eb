"""The thread counts a run computes with: recorded, and compared at a resume.

torch's intra-op thread count (``torch.get_num_threads()``) and the worker
threads the MAML family's tasks run in (:mod:`.accel.threads`) set the order
in which floats are summed. A checkpointed run resumed with other counts goes
on, but ends apart from the uninterrupted run by float rounding that grows
over the iterations (a reviewer's: 0.22 after a resume on 2 threads after 1).
The counts are not part of the run's fingerprint, which refuses a mismatch: a
run killed on one machine must still resume on another. So a model records
them (``config["training"]``), a checkpoint too, and a resume on other counts
warns (:meth:`.checkpoint.Checkpoint.on_train_begin`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch

from . import accel
from .accel.threads import n_workers
from .batches import share_of
from .caller import user_stacklevel

__all__ = ["thread_counts", "warn_if_other_threads"]


def thread_counts(loop) -> dict[str, int]:
    """The thread counts of the run `loop` is about to train.

    Parameters
    ----------
    loop : MetaTrainer
        Its network in training mode (as each iteration sets it).

    Returns
    -------
    dict
        ``"torch_threads"``: ``torch.get_num_threads()``; ``"task_workers"``,
        for a method whose tasks are spread over worker threads (inner-loop
        methods on the float32 path with the speed paths on): their number.
    """
    counts = {"torch_threads": torch.get_num_threads()}
    if loop.precision.mixed or accel.find("meta_gradient", loop.algorithm) is None:
        return counts
    settings, ranks = loop.settings, loop.ranks
    part = (0, 1) if ranks is None else (ranks.rank, ranks.size)
    share = share_of(settings.meta_batch_size, *part)  # this process's tasks
    counts["task_workers"] = n_workers(
        settings.n_jobs, share.stop - share.start, settings.device, loop.net, warn=False
    )
    return counts


def warn_if_other_threads(
    saved: Mapping | None, now: Mapping, path: str, n_jobs
) -> None:
    """Warn when a run resumed from the checkpoint at `path` computes with
    other thread counts than the run that wrote it (`saved`; None, from a
    checkpoint written before the counts were recorded: silent)."""
    if not saved:
        return
    threads, workers = (
        (saved.get(key), now.get(key)) for key in ("torch_threads", "task_workers")
    )
    found, advice = [], []
    if None not in threads and threads[0] != threads[1]:
        found.append(
            f"{threads[0]} torch thread(s) then and {threads[1]} now "
            "(torch.get_num_threads())"
        )
        advice.append(f"call torch.set_num_threads({threads[0]}) before fit")
    if None not in workers and workers[0] != workers[1]:
        found.append(
            f"{workers[0]} worker thread(s) for the tasks then and {workers[1]} "
            f"now (n_jobs={n_jobs!r})"
        )
        advice.append(f"pass n_jobs={workers[0]}")
    if found:
        warnings.warn(
            f"checkpoint={path!r} was written by a run with {'; '.join(found)}. "
            "The resumed run goes on, but floats are summed in another order, "
            "so its weights will differ from an uninterrupted run's by float "
            f"rounding, growing over the iterations. To match, {' and '.join(advice)}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
