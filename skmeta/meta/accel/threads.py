"""Gradients of independent units of work, summed, computed in worker threads.

Gradient-based meta-learning differentiates through each task's inner loop.
Each task's graph is small (a 5-image support set, 75 queries), so one task run
with torch's own intra-op threads keeps a CPU core waiting much of the time.
Instead, units of work -- single tasks, or groups of tasks adapted together --
go to ``n_jobs`` worker threads, each running its units one at a time with one
OpenMP thread: torch kernels and the autograd engine release the GIL, so the
workers really run side by side. A unit's graphs are freed as soon as its
gradient is taken, so each worker holds one unit's graphs at a time.

Results do not depend on timing: units are dealt to workers in a fixed
round-robin order, and the gradients are summed in a fixed order. A network
with a module that draws random numbers in training mode (dropout: torch's
default generator is one for all threads) runs its units in the calling thread
(:mod:`.random_modules`), and an ``n_jobs`` that asked for more warns once.

Nothing process-wide changes: each worker sets the OpenMP thread count of its
own thread only (``omp_set_num_threads`` is per thread; ``torch.set_num_threads``
would also change the count new threads start with).
"""

from __future__ import annotations

import ctypes
import os
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from ..caller import user_stacklevel
from .random_modules import random_module

__all__ = ["accumulate_gradients", "n_workers"]

# Long-lived workers: glibc gives each thread its own malloc arena and keeps what
# it frees there, so fresh threads at every meta-batch would each leave an arena
# of freed task graphs behind (measured: +150 MiB of resident memory).
_POOL: dict[str, object] = {"pid": None, "executor": None, "size": 0}


_OPENMP: dict[str, object] = {"pid": None, "set_threads": None}

# The networks whose n_jobs was overruled (one warning each: one per fit).
_WARNED: weakref.WeakSet = weakref.WeakSet()


def _openmp():
    """The OpenMP runtime torch loaded (its ``omp_set_num_threads``), or None.

    Found once per process (reading ``/proc/self/maps`` costs milliseconds,
    and ``n_workers`` asks at every meta-batch); a miss is not remembered."""
    if _OPENMP["pid"] == os.getpid():
        return _OPENMP["set_threads"]
    set_threads = _find_openmp()
    if set_threads is not None:
        _OPENMP.update(pid=os.getpid(), set_threads=set_threads)
    return set_threads


def _find_openmp():
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "omp" in line}
    except OSError:
        return None
    # torch's own runtime first (scikit-learn, say, may load another libgomp)
    home = os.path.dirname(torch.__file__)
    for path in sorted(paths, key=lambda p: (not p.startswith(home), p)):
        name = os.path.basename(path)
        if name.startswith(("libgomp", "libiomp5", "libomp")):
            try:
                return ctypes.CDLL(path).omp_set_num_threads
            except (OSError, AttributeError):
                continue
    return None


def _one_thread_per_worker(set_threads) -> None:
    """Worker initializer: this thread's OpenMP team of one.

    Before any op: a oneDNN convolution run first would open a team of torch's
    default size, leaving an idle OpenMP thread per worker, and more OpenMP
    threads than cores make libgomp sleep at every barrier (the caller's
    multi-threaded work ran up to 2x slower after). torch's per-thread lazy
    initialisation runs first (``get_num_threads``), so it cannot undo this.
    """
    torch.get_num_threads()
    set_threads(1)


def _executor(size: int) -> ThreadPoolExecutor:
    if _POOL["pid"] != os.getpid() or _POOL["size"] < size:
        if _POOL["executor"] is not None and _POOL["pid"] == os.getpid():
            _POOL["executor"].shutdown(wait=True)
        set_threads = _openmp()
        _POOL.update(
            pid=os.getpid(),
            executor=ThreadPoolExecutor(
                size,
                thread_name_prefix="skmeta-task",
                initializer=None if set_threads is None else _one_thread_per_worker,
                initargs=() if set_threads is None else (set_threads,),
            ),
            size=size,
        )
    return _POOL["executor"]


def n_workers(
    n_jobs: int | None, n_units: int, device, net=None, warn: bool = True
) -> int:
    """Worker threads for `n_units` units of work.

    Parameters
    ----------
    n_jobs : int or None
        None: as many as torch has intra-op threads on a CPU whose OpenMP
        runtime lets each worker run one thread of its own, else 1. Negative,
        as joblib counts: -1 all of torch's intra-op threads, -2 all but one,
        and so on (at least 1). Otherwise that many.
    n_units : int
    device : torch.device or str
        One worker on an accelerator, whose kernels are asynchronous anyway.
    net : torch.nn.Module, optional
        The network the units run. One worker when one of its modules draws
        random numbers in training mode (:func:`.random_modules.random_module`),
        so that the run repeats; an `n_jobs` other than None that asked for
        more then warns, once per network.
    warn : bool, default=True
        False: no warning (the count asked for a record).
    """
    if torch.device(device).type != "cpu":
        return 1
    asked = n_jobs
    if n_jobs is None:
        n_jobs = torch.get_num_threads() if _openmp() is not None else 1
    elif n_jobs < 0:
        n_jobs = max(1, torch.get_num_threads() + 1 + int(n_jobs))
    workers = max(1, min(int(n_jobs), n_units))
    if workers > 1 and net is not None:
        drawing = random_module(net)
        if drawing is not None:
            if warn and asked is not None and net not in _WARNED:
                _WARNED.add(net)
                _warn_one_thread(asked, drawing)
            return 1
    return workers


def _warn_one_thread(n_jobs: int, module: str) -> None:
    warnings.warn(
        f"n_jobs={n_jobs!r} is overruled: the tasks run one after the other in "
        f"the calling thread, because the network's {module} draws random "
        "numbers in training mode from torch's one default generator, which "
        "worker threads would draw from in the order they happen to run: the "
        "run would not repeat with the same random_state. Set n_jobs=1 (or "
        "None) to silence this.",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def accumulate_gradients(
    params: list[torch.Tensor],
    n_units: int,
    unit_gradients: Callable[[int], tuple[tuple, object]],
    n_workers: int = 1,
) -> list:
    """Add gradients computed unit by unit to the ``.grad`` of `params`.

    Parameters
    ----------
    params : list of Tensor
        Leaves that require grad; they receive the summed gradients (added to
        ``.grad``, as ``backward`` would; one no unit reached is left alone).
    n_units : int
    unit_gradients : callable
        ``unit_gradients(i)`` returns ``(grads, extra)``: one gradient (or None)
        per tensor of `params`, and anything to hand back.
    n_workers : int, default=1
        Threads; 1 runs the units in the calling thread.

    Returns
    -------
    extras : list
        The ``extra`` of each unit, in unit order.
    """
    n_workers = max(1, min(int(n_workers), n_units))
    extras: list = [None] * n_units
    # Accumulators allocated here, before any unit: allocated by a worker in
    # the middle of its first unit, they would pin that unit's freed buffers
    # apart in the worker's malloc arena for the rest of the meta-batch.
    sums = [[torch.zeros_like(p) for p in params] for _ in range(n_workers)]
    reached = [False] * len(params)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            total = sums[worker]
            for i in range(worker, n_units, n_workers):
                grads, extras[i] = unit_gradients(i)
                for j, (t, g) in enumerate(zip(total, grads, strict=True)):
                    if g is not None:
                        t.add_(g)
                        reached[j] = True
                del grads
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    if n_workers == 1:
        work(0)
    else:
        pool = _executor(n_workers)
        for future in [pool.submit(work, w) for w in range(n_workers)]:
            future.result()
    if errors:
        raise errors[0]
    for worker_sum in sums:
        for p, g, used in zip(params, worker_sum, reached, strict=True):
            if not used:
                continue
            if p.grad is None:
                p.grad = g
            else:
                p.grad.add_(g)
    return extras
