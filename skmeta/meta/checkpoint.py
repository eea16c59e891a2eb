"""Checkpoints of meta-training, resumed to the same bits; warm starts.

:class:`Checkpoint` is a callback (:mod:`.callbacks`). Every `every`
iterations, and after the last, it writes the whole state of the loop: the
network's weights and buffers, :class:`~.optim.CosineAdam`'s moments and
position in its schedule, the loss scaler (:mod:`.precision`), the episode
stream's position (:class:`~.batches.BatchStream`: the numpy generator's state
at the start of its current block and the batches taken from it), torch's CPU
random state (and the GPU's when training on one), the history, ``n_iter``,
``stop``, the thread counts (:mod:`.thread_counts`: a resume on others warns),
and each callback's :meth:`~.callbacks.Callback.state_dict` (the
history's running means, early stopping's best loss, best weights and stale
count). Everything else a run holds (class split, validation episodes, input
statistics, initial weights) follows from its seed and data, so a run built
again from the same settings and restored from the file continues exactly as
the uninterrupted run would: the final weights are equal to the bit (on a
CPU, with the same thread counts; on a GPU, with torch's deterministic
algorithms on).

The file (:func:`.io.save_checkpoint`) is written atomically (a temporary
file in the same folder, synced, then ``os.replace``), so a run killed at any
moment leaves the previous checkpoint or the new one, never a torn file. Its
format is safetensors: the tensors, and JSON metadata (the loop's state with
references to the tensors, and the run's fingerprint: settings and a digest
of the data, X's values included, :func:`run_fingerprint`). Loading it
executes no code. A checkpoint of other settings or other data is refused with
a ``ValueError``; so is a folder that cannot be written, before training. A
write that fails during training (``OSError``) warns, and training goes on.
In a distributed run the processes check that they all resumed from the same
state, or all start afresh (:meth:`Checkpoint.on_train_begin`). The writer
holds a lock on ``<path>.lock`` for the run (:mod:`.checkpoint_lock`): a
second run on the same path is refused at its start.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import torch

from .callbacks import Callback
from .caller import user_stacklevel
from .checkpoint_lock import CheckpointLock
from .fingerprint import differences, jsonable, longer_run_hint, run_fingerprint
from .io import checkpoint_metadata, load_checkpoint, save_checkpoint
from .thread_counts import warn_if_other_threads
from .warm_start import start_from

__all__ = ["Checkpoint", "recorded_seed", "run_fingerprint", "start_from"]


class Checkpoint(Callback):
    """Write the loop's state to `path` now and then; resume from it.

    Put it last among the callbacks: it saves the state of those before it
    (:meth:`~.callbacks.Callback.state_dict`), and restores them in its
    ``on_train_begin``, after theirs ran. The loop's batches must give their
    position (:class:`~.batches.BatchStream`).

    A folder it cannot write to is refused at the start, before any training
    (``ValueError``). A write that fails later (``OSError``: a folder made
    read-only, a full disk) warns and training goes on; the next checkpoint
    tries again, and the file keeps the last state written whole.

    The writer holds an advisory lock on ``<path>.lock``
    (:class:`~.checkpoint_lock.CheckpointLock`) from ``on_train_begin`` to
    ``on_train_end``: a run started on the same path meanwhile is refused
    (``ValueError``) before reading the file. :func:`.train.meta_train`
    releases it however the loop ends (``checkpoint_lock.released``).

    Parameters
    ----------
    path : str or Path
        The checkpoint file (``~`` is expanded). When it exists at the start,
        the run resumes from it (after checking its fingerprint); it stays
        after the run, holding the state after the last iteration.
    every : int, optional
        Iterations between two checkpoints; default the history's
        ``settings.eval_interval``. One is also written after the last
        iteration, including the iteration a first Ctrl-C or SIGTERM (SIGHUP,
        SIGUSR1, SIGUSR2) ended the run after (:mod:`.termination`); not
        after a second Ctrl-C's ``KeyboardInterrupt``: the iteration it
        interrupted may be half done.
    fingerprint : mapping, optional
        What the run is (:func:`run_fingerprint`): a checkpoint whose
        fingerprint differs is refused.
    writes : bool, default=True
        False on the processes other than rank 0 of a distributed run
        (:mod:`.distributed`): they resume from the file (which must then be
        on a file system they share) but leave writing it to rank 0.
    ranks : Ranks, optional
        The processes of a distributed run: after reading the file (or
        finding none), they check that all resumed from the same state, or
        all start afresh, and raise ``ValueError`` on every process
        otherwise (a file on a disk of one machine only).

    Attributes
    ----------
    resumed_from : int or None
        The iteration the run resumed after, None for a fresh run.
    lock : CheckpointLock
        The lock on the path, held while the run writes it.
    """

    saves_state = True  # a signal ends the loop after an iteration, written

    def __init__(
        self,
        path,
        every: int | None = None,
        fingerprint=None,
        writes: bool = True,
        ranks=None,
    ) -> None:
        self.path = Path(os.path.expanduser(path))
        self.every, self.writes, self.ranks = every, writes, ranks
        self.fingerprint = jsonable(dict(fingerprint or {}))
        self.resumed_from = None
        self.lock = CheckpointLock(self.path)
        self._failing = False  # whether the last write failed

    def on_train_begin(self, loop):
        self.resumed_from, self._failing = None, False
        try:
            self._begin(loop)
        except ValueError as exc:
            if self.ranks is None:
                raise
            self._agree(loop, exc)  # raises on every process
        if self.ranks is not None:
            self._agree(loop, None)

    def _begin(self, loop) -> None:
        if self.path.is_dir() or not self.path.parent.is_dir():
            raise ValueError(
                f"checkpoint={str(self.path)!r} must be a file in an existing folder."
            )
        if self.writes:
            _check_writable(self.path)
            self.lock.acquire()  # refused while another run writes the path
            _remove_stale_temporaries(self.path)
        if self.path.exists():
            state = _read(self.path, self.fingerprint)
            try:
                _check_statistics(loop.net, state["net"])
                _restore(loop, state)
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
                raise ValueError(
                    f"Cannot resume from checkpoint={str(self.path)!r}: {exc} "
                    "Delete it (or give another path) to meta-train afresh."
                ) from None
            self.resumed_from = loop.n_iter
            warn_if_other_threads(
                state.get("threads"),
                loop.thread_counts,
                str(self.path),
                loop.settings.n_jobs,
            )

    def _agree(self, loop, error: ValueError | None) -> None:
        """Raise ``ValueError`` on every process of a distributed run unless
        all started from the same state (`error`: this process's failure)."""
        resumed = -1 if self.resumed_from is None else self.resumed_from
        code = 0 if error is not None or resumed < 0 else _state_code(loop)
        every = self.ranks.gather([int(error is not None), resumed, code])
        if error is not None:
            raise error
        path = str(self.path)
        failed = [rank for rank, (bad, _, _) in enumerate(every) if bad]
        if failed:
            raise ValueError(
                f"checkpoint={path!r} could not be used by process(es) {failed} "
                "of this distributed run (RANK; see the error there), so no "
                "process meta-trains."
            )
        if any(status != every[0] for status in every):
            same_iteration = len({at for _, at, _ in every}) == 1
            found = "; ".join(
                f"rank {rank} "
                + (
                    "starts afresh (no file)"
                    if at < 0
                    else f"resumes after iteration {at}"
                )
                + (f" from state {code:x}" if same_iteration else "")
                for rank, (_, at, code) in enumerate(every)
            )
            raise ValueError(
                f"The {self.ranks.size} processes of this distributed run found "
                f"different checkpoints at checkpoint={path!r}: {found}. Rank 0 "
                "writes it and every process resumes from it, so it must be on a "
                "file system all processes share (not a disk of one machine); "
                "give such a path, or delete the copies to meta-train afresh."
            )

    def on_iteration_end(self, loop):
        every = self.every or loop.settings.eval_interval
        last = loop.stop or loop.terminating or loop.n_iter >= loop.settings.max_iter
        if not (self.writes and (last or loop.n_iter % every == 0)):
            return
        try:
            self.save(loop)
        except OSError as exc:
            if not self._failing or last:  # once a run of failures, and the last
                warnings.warn(
                    f"Could not write checkpoint={str(self.path)!r} after "
                    f"iteration {loop.n_iter} ({exc}); meta-training goes on"
                    + (
                        ", and the file keeps the last state written whole."
                        if last
                        else ", trying again at the next checkpoint."
                    ),
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
            self._failing = True
        else:
            self._failing = False

    def on_train_end(self, loop):
        self.lock.release()  # and .checkpoint_lock.released on an error

    def save(self, loop) -> None:
        """Write the loop's state now (atomically, :func:`.io.save_checkpoint`)."""
        save_checkpoint(
            self.path, {"fingerprint": self.fingerprint, "state": _capture(loop)}
        )


def _check_writable(path: Path) -> None:
    """Raise ``ValueError`` unless a file can be made in `path`'s folder (a
    temporary one, removed): found before training, not at the first write."""
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".probe", dir=path.parent
        )
        os.close(handle)
        os.remove(name)
    except OSError as exc:
        raise ValueError(
            f"checkpoint={str(path)!r} cannot be written: no file can be made in "
            f"its folder ({exc.strerror or exc}). Give a path in a folder this "
            "process can write to."
        ) from None


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of earlier writes of `path` that a killed
    process left (``.<name>.<random>.tmp``, :func:`.io._write_atomically`),
    so that pre-empted runs do not pile them up."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.{'[0-9a-f]' * 16}.tmp"):
        try:
            stale.unlink()
        except OSError:  # gone already, or not ours to remove
            pass


def _state_code(loop) -> int:
    """A 56-bit digest of the state a loop resumed from (its iteration,
    history and weights), which processes resuming from the same file share."""
    sha = hashlib.sha256(
        json.dumps([loop.n_iter, loop.history], sort_keys=True, default=str).encode()
    )
    for name, tensor in sorted(loop.net.state_dict().items()):
        sha.update(name.encode())
        sha.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy())
    return int.from_bytes(sha.digest()[:7], "little")


def _capture(loop) -> dict:
    """Everything a resumed loop needs (JSON values and tensors)."""
    device = torch.device(loop.settings.device)
    state = {
        "n_iter": loop.n_iter,
        "stop": loop.stop,
        "history": loop.history,
        "net": loop.net.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "precision": loop.precision.state_dict(),
        "batches": loop.batches.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "threads": dict(loop.thread_counts),  # compared at a resume, not refused
        "callbacks": {
            key: callback.state_dict()
            for key, callback in _keyed(loop.callbacks)
            if not isinstance(callback, Checkpoint)
        },
    }
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _restore(loop, state: dict) -> None:
    loop.net.load_state_dict(state["net"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.precision.load_state_dict(state["precision"])
    loop.batches.load_state_dict(state["batches"])
    saved = state["callbacks"]
    for key, callback in _keyed(loop.callbacks):
        if isinstance(callback, Checkpoint):
            continue
        if key in saved:
            callback.load_state_dict(saved[key])
        elif callback.state_dict():
            raise ValueError(f"it holds no state of the callback {key}.")
    torch.set_rng_state(state["torch_rng"])
    device = torch.device(loop.settings.device)
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    loop.n_iter, loop.stop = int(state["n_iter"]), bool(state["stop"])
    loop.history = [dict(record) for record in state["history"]]


def _keyed(callbacks):
    """(key, callback): the class name, numbered from the second of a class."""
    seen: Counter = Counter()
    for callback in callbacks:
        name = type(callback).__name__
        seen[name] += 1
        yield (name if seen[name] == 1 else f"{name}#{seen[name]}"), callback


def _check_statistics(net, saved: Mapping) -> None:
    """The input scaling computed from this run's data must be the
    checkpoint's (to float rounding: another thread count may sum in
    another order)."""
    for name in ("input_mean", "input_scale"):
        own = getattr(net, name).detach().cpu()
        if name in saved and not torch.allclose(
            own, saved[name].to(own.dtype), rtol=1e-4, atol=1e-6
        ):
            raise ValueError(
                "the data differ from the checkpointed run's (their "
                f"statistics, {name}, do not match)."
            )


# -- reading a checkpoint -------------------------------------------------------


def _read(path: Path, fingerprint: Mapping) -> dict:
    """The loop's state in the checkpoint at `path`, after checking that it
    is of the run `fingerprint` describes."""
    recorded = checkpoint_metadata(path).get("fingerprint", {})
    found = differences(recorded, fingerprint)
    if found:
        raise ValueError(
            f"checkpoint={str(path)!r} is of another meta-training run: "
            f"{'; '.join(found)}. Resume with that run's settings and data, "
            "or give another checkpoint path (or delete the file) to meta-train "
            "afresh." + longer_run_hint(recorded, fingerprint, found)
        )
    return load_checkpoint(path)["state"]


def recorded_seed(path) -> int | None:
    """The seed of the run checkpointed at `path`, or None without a file
    (a resumed run takes it when the user gave none)."""
    path = Path(os.path.expanduser(path))
    if not path.is_file():
        return None
    seed = checkpoint_metadata(path).get("fingerprint", {}).get("settings", {})
    seed = seed.get("seed")
    return None if seed is None else int(seed)
