"""Guards of a process in a torchrun launch: one distributed meta-training at
a time per process, and a warning for a pool's worker that a rank started.

Kept apart from :mod:`.distributed`, whose collectives they protect.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["one_run_at_a_time", "warn_if_pool_worker_of_a_rank"]

#: Held while this process meta-trains in a distributed run: the ranks'
#: collectives pair up in the order each process calls them, so two fits in
#: two threads of one process would pair with each other's across processes.
_RUN_IN_PROGRESS = threading.Lock()

_pool_worker_warned = False


def warn_if_pool_worker_of_a_rank() -> None:
    """Warn, once per process, when a pool's worker started by a torchrun
    rank meta-trains (e.g. ``GridSearchCV(n_jobs=...)`` under torchrun): it
    trains on its own, and every rank runs the same work."""
    global _pool_worker_warned
    if _pool_worker_warned or multiprocessing.parent_process() is None:
        return
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "MASTER_ADDR" not in os.environ:
        return
    _pool_worker_warned = True
    warnings.warn(
        f"This meta-training runs in a worker process that rank "
        f"{os.environ.get('RANK', '?')} of a torchrun launch started (e.g. "
        "GridSearchCV(n_jobs=...)): it trains on its own, and every one of the "
        f"{os.environ['WORLD_SIZE']} ranks repeats the same work. Search on one "
        "process, then launch the final fit with torchrun "
        "(docs/user_guide/distributed.rst).",
        UserWarning,
        stacklevel=2,
    )


@contextmanager
def one_run_at_a_time(ranks) -> Iterator[None]:
    """Hold this process's distributed run for one meta-training.

    The processes' collectives pair up in the order each calls them, so a
    second fit in another thread of the same process (e.g. ``GridSearchCV``
    with ``n_jobs`` on joblib's threading backend, under torchrun) would pair
    with the other fit's on the other processes and hang. It raises instead.

    Parameters
    ----------
    ranks : Ranks or None
        The run (:func:`.distributed.current_ranks`); None: nothing to hold.

    Raises
    ------
    RuntimeError
        When another thread of this process is meta-training in the run.
    """
    if ranks is None:
        yield
        return
    if not _RUN_IN_PROGRESS.acquire(blocking=False):
        raise RuntimeError(
            "Another thread of this process is meta-training in the distributed "
            f"run (rank {ranks.rank} of {ranks.size}): the processes' "
            "collectives would pair one fit's with another's and hang. Fit one "
            "after another under torchrun (e.g. no threading backend for "
            "GridSearchCV's n_jobs), or set SKMETA_DISTRIBUTED=0 for each "
            "process to train on its own."
        )
    try:
        yield
    finally:
        _RUN_IN_PROGRESS.release()
