"""One meta-training run per checkpoint file: an advisory lock beside it.

Two runs given the same checkpoint path (a SLURM array whose path was not
varied) would overwrite each other's state: each said its checkpoint was
written, the file held the other's, and a requeued run was then refused as
"another meta-training run", its iterations lost. So the process that writes
a checkpoint (rank 0 of a distributed run) holds an exclusive advisory lock
(``flock``) on ``<path>.lock`` from the start of meta-training to its end,
and a second run on the same path is refused at its start, naming the
process that holds it (its pid, host and start, which the lock file records).

The lock belongs to the open file, not to the file's existence: it goes when
its process ends in any way (SIGKILL, a node's crash: for a file on NFS, when
the server drops the lost client's locks), so it never blocks the requeued
run. The lock file is removed at the end of the run; a killed run's stays,
harmless (the next run takes the lock on it). Where no lock can be taken
(no ``fcntl``: Windows; a file system without locks, e.g. Lustre mounted
with ``noflock``) the run goes on unguarded, as before.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here, the run goes unguarded
    fcntl = None

from .caller import user_stacklevel

__all__ = ["CheckpointLock", "lock_path", "released"]

#: The lock files this process holds (real paths): a second run in the same
#: process is refused without opening the file, whose closing would drop the
#: holder's lock where ``flock`` is emulated by POSIX locks (NFS).
_HELD: set[str] = set()
_HELD_GUARD = threading.Lock()


def lock_path(path: Path) -> Path:
    """The lock file of the checkpoint at `path`: ``<path>.lock``."""
    return path.with_name(f"{path.name}.lock")


class CheckpointLock:
    """The exclusive lock of one run on its checkpoint file.

    Parameters
    ----------
    path : Path
        The checkpoint file; the lock is taken on :func:`lock_path` of it.
    """

    def __init__(self, path: Path) -> None:
        self.checkpoint = path
        self.path = lock_path(path)
        self._handle = None
        self._key: str | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock (nothing if held already, or if locks cannot be
        taken here).

        Raises
        ------
        ValueError
            When another run holds it: naming the checkpoint, the holder and
            the fix.
        """
        if self._handle is not None or fcntl is None:
            return
        key = os.path.realpath(self.path)
        with _HELD_GUARD:
            if key in _HELD:
                # the file is not read: closing it would drop the lock on NFS
                raise self._refusal(f"this process, pid {os.getpid()}")
            handle = self._lock()
            if handle is None:
                return
            _HELD.add(key)
        self._handle, self._key = handle, key
        record = {"pid": os.getpid(), "host": socket.gethostname()}
        record["since"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
        try:
            handle.truncate(0)
            handle.write(json.dumps(record) + "\n")
            handle.flush()
        except OSError:  # the record is for messages only
            pass

    def _lock(self):
        """The lock file, open and locked; None where no lock can be taken."""
        while True:
            created = not self.path.exists()
            handle = self._open()
            if handle is None:
                return None
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise self._refusal(_holder_text(self.path)) from None
            except OSError:  # a file system without locks
                handle.close()
                if created:
                    _remove(self.path)
                return None
            if _same_file(handle, self.path):
                return handle
            handle.close()  # its holder removed it meanwhile: lock the new one

    def _open(self):
        """The lock file, open: for writing where it may be (its holder's
        record), else read-only (a file another user created: ``flock``
        takes a read-only file on local file systems); None, with a warning,
        where it cannot be opened at all."""
        try:  # appending: a holder's record is not truncated by opening
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            return os.fdopen(fd, "a+", encoding="utf-8")
        except PermissionError:
            try:
                return os.fdopen(os.open(self.path, os.O_RDONLY), encoding="utf-8")
            except OSError as exc:
                error = exc
        except OSError as exc:
            error = exc
        warnings.warn(
            f"checkpoint={str(self.checkpoint)!r}: its lock file "
            f"{str(self.path)!r} cannot be opened ({error}), so this run is "
            "not guarded against another writing the same checkpoint.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return None

    def release(self) -> None:
        """Give the lock up and remove its file (nothing if not held)."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        _remove(self.path)  # while locked: no other run holds the file removed
        handle.close()
        with _HELD_GUARD:
            _HELD.discard(self._key)

    def _refusal(self, holder: str) -> ValueError:
        return ValueError(
            f"checkpoint={str(self.checkpoint)!r} is in use by another "
            f"meta-training run ({holder}; lock file {str(self.path)!r}): two "
            "runs writing one checkpoint overwrite each other's state. Give "
            "each run its own checkpoint path (in a SLURM array, e.g. with "
            "$SLURM_ARRAY_TASK_ID in it), or wait for that run to end."
        )


@contextmanager
def released(callbacks) -> Iterator[None]:
    """Release the checkpoint locks of `callbacks` (their ``lock``) on
    leaving, however the loop ended: an error, an interrupt."""
    try:
        yield
    finally:
        for callback in callbacks:
            lock = getattr(callback, "lock", None)
            if isinstance(lock, CheckpointLock):
                lock.release()


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:  # gone already
        pass


def _same_file(handle, path: Path) -> bool:
    """Whether `handle` is still the file at `path` (not one removed)."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    held = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _holder_text(path: Path) -> str:
    """The holder the lock file at `path` records, in words."""
    try:  # another user's file, perhaps: any JSON, nested past the stack
        record = json.loads(path.read_text(encoding="utf-8"))
        return (
            f"process {int(record['pid'])} on {record['host']}, since {record['since']}"
        )
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "its holder did not record itself"
