"""One run per checkpoint file (skmeta.meta.checkpoint_lock): a second run on
the path of a running one is refused at its start, naming the holder; the lock
goes with its run (its end, an error, SIGKILL), so a requeue resumes."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from checkpoint_helpers import Interrupt, Steps, saved_iteration, small_settings

import skmeta
from skmeta.meta import checkpoint_lock
from skmeta.meta.callbacks import Callback
from skmeta.meta.train import meta_train

ROOT = str(Path(skmeta.__file__).resolve().parents[1])

# Meta-train in a fresh process; after the checkpoint of iteration 4 is
# written, say so (a file "held") and wait to be killed, holding the lock.
CHILD = """
import sys, time
from pathlib import Path
import numpy as np
from skmeta.meta.callbacks import Callback
from skmeta.meta.train import TrainSettings, meta_train
folder = Path(sys.argv[1])
class Hold(Callback):
    def on_iteration_end(self, loop):
        if loop.n_iter == 5:  # the checkpoint runs after: iteration 4's written
            (folder / "held").touch()
            time.sleep(600)
X, y = np.load(folder / "X.npy"), np.load(folder / "y.npy")
settings = TrainSettings(n_way=5, k_shot=2, n_query=3, input_shape=(10,),
    max_iter=8, seed=3, checkpoint=str(folder / "run.ckpt"), checkpoint_every=2)
meta_train(X, y, settings, callbacks=[Hold()])
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
@pytest.mark.skipif(checkpoint_lock.fcntl is None, reason="no fcntl: no lock")
def test_a_run_on_a_held_path_is_refused_and_a_killed_holder_blocks_nothing(
    blobs, tmp_path
):
    """Two runs of a SLURM array given one path overwrote each other's
    checkpoint, and the requeue of one was refused (a reviewer)."""
    X, y = blobs
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    path = tmp_path / "run.ckpt"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "held").exists():
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        holder = f"process {child.pid} on {socket.gethostname()}, since "
        for other in (dict(X=X + 1), dict(X=X)):  # other data; the same run
            steps = Steps()
            with pytest.raises(ValueError, match="is in use by another") as error:
                meta_train(other["X"], y, small_settings(path), callbacks=[steps])
            assert holder in str(error.value) and str(path) in str(error.value)
            assert "$SLURM_ARRAY_TASK_ID" in str(error.value)
            assert steps.n == 0
        assert saved_iteration(path) == 4  # the holder's file, untouched
    finally:
        child.kill()  # SIGKILL: no cleanup runs
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert path.with_name("run.ckpt.lock").exists()  # left, and harmless:
    model = meta_train(X, y, small_settings(path))  # the requeue resumes
    assert model.config["training"]["resumed_from"] == 4
    assert model.config["training"]["n_iter"] == 8 and saved_iteration(path) == 8
    assert not path.with_name("run.ckpt.lock").exists()


class Nested(Callback):
    """Meta-trains another run on the same path from inside this one."""

    def __init__(self, data, settings):
        self.data, self.settings, self.error = data, settings, None

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 2:
            try:
                meta_train(*self.data, self.settings)
            except ValueError as exc:
                self.error = str(exc)


@pytest.mark.skipif(checkpoint_lock.fcntl is None, reason="no fcntl: no lock")
def test_a_second_run_in_the_same_process_is_refused(blobs, tmp_path):
    X, y = blobs
    settings = small_settings(tmp_path / "c")
    nested = Nested((X, y), settings)
    meta_train(X, y, settings, callbacks=[nested])
    assert f"this process, pid {os.getpid()}" in nested.error
    assert "is in use by another meta-training run" in nested.error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # lock removed


class Fail(Callback):
    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 3:
            raise RuntimeError("a bug in a callback")


def test_the_lock_is_released_however_the_run_ends(blobs, tmp_path):
    X, y = blobs
    path = tmp_path / "c"
    with pytest.raises(RuntimeError, match="a bug"):
        meta_train(X, y, small_settings(path, checkpoint_every=2), callbacks=[Fail()])
    assert saved_iteration(path) == 2
    with pytest.warns(UserWarning, match="interrupted"):
        meta_train(X, y, small_settings(path), callbacks=[Interrupt(3)])
    with pytest.raises(ValueError, match="another meta-training run: seed"):
        meta_train(X, y, small_settings(path, seed=4))  # refused after locking
    model = meta_train(X, y, small_settings(path))  # none of them left it held
    assert model.config["training"]["resumed_from"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


@pytest.mark.parametrize("where", ["no_fcntl", "no_locks_on_the_file_system"])
def test_without_locks_the_run_goes_on_unguarded(blobs, tmp_path, monkeypatch, where):
    X, y = blobs

    def flock(fd, operation):
        raise OSError(38, "Function not implemented")  # Lustre's noflock

    flags = dict(LOCK_EX=2, LOCK_NB=4)
    fake = None if where == "no_fcntl" else SimpleNamespace(flock=flock, **flags)
    monkeypatch.setattr(checkpoint_lock, "fcntl", fake)
    model = meta_train(X, y, small_settings(tmp_path / "c"))
    assert model.config["training"]["n_iter"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def _refuse_writing(monkeypatch):
    """os.open as for a user who may read the lock file, not write it (the
    tests run as root, whom permissions do not stop)."""
    real = os.open

    def open_(path, flags, *args):
        if flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, flags, *args)

    monkeypatch.setattr(checkpoint_lock.os, "open", open_)

    def builtin_open(path, mode="r", *args, **kwargs):  # the module's open()
        if set(mode) & set("wa+"):
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint_lock, "open", builtin_open, raising=False)


def test_a_lock_file_of_another_user_still_guards(tmp_path, monkeypatch):
    """The lock file was opened for appending: another user, who may not
    write the holder's 0644 file, ran unguarded on the same checkpoint (a
    reviewer). A read-only file takes flock's lock as well."""
    holder = checkpoint_lock.CheckpointLock(tmp_path / "run.ckpt")
    holder.acquire()
    try:
        _refuse_writing(monkeypatch)
        # as from another process: flock itself refuses, not this process's list
        monkeypatch.setattr(checkpoint_lock, "_HELD", set())
        other = checkpoint_lock.CheckpointLock(tmp_path / "run.ckpt")
        with pytest.raises(ValueError, match="is in use by another") as info:
            other.acquire()
        assert f"process {os.getpid()} on" in str(info.value)  # its record
    finally:
        holder.release()
    open(other.path, "w").close()  # the other user's lock file, left behind
    other.acquire()  # free now: held through the read-only file
    assert other.held
    other.release()


def test_a_lock_file_that_cannot_be_opened_warns(tmp_path, monkeypatch):
    lock = checkpoint_lock.CheckpointLock(tmp_path / "run.ckpt")
    monkeypatch.setattr(
        checkpoint_lock.os,
        "open",
        lambda *a: (_ for _ in ()).throw(PermissionError(13, "Permission denied")),
    )
    with pytest.warns(UserWarning, match="not guarded against another writing"):
        lock.acquire()
    assert not lock.held


@pytest.mark.parametrize("text", ["[" * 100_000, '{"pid": [1]}', "\xff", ""])
def test_a_lock_files_record_of_any_kind_is_told_as_unrecorded(tmp_path, text):
    """The lock file may be another user's: JSON nested 100,000 deep raised
    RecursionError where the refusal names the holder."""
    path = tmp_path / "run.ckpt.lock"
    path.write_text(text, encoding="utf-8")
    assert checkpoint_lock._holder_text(path) == "its holder did not record itself"
