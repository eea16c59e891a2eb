"""SIGTERM during meta-training (skmeta.meta.termination): with a checkpoint
the run ends after the current iteration, writes the checkpoint, and the
signal is passed on (``SystemExit(143)``: the script's ``finally`` blocks and
``atexit`` handlers run); resumed, the run ends with the weights of one never
interrupted. ``skmeta train`` writes the model so far and exits 143."""

import os
import signal
import threading

import pytest
from checkpoint_helpers import assert_same_weights, saved_iteration
from signal_helpers import signal_child_run

from skmeta.meta.callbacks import Callback
from skmeta.meta.termination import TerminationGuard
from skmeta.meta.train import TrainSettings, meta_train

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="POSIX signals"
)  # fmt: skip


def _settings(**changes):
    base = dict(n_way=5, k_shot=2, n_query=3, input_shape=(10,), max_iter=40, seed=3)
    return {**base, **changes}


class SigtermAt(Callback):
    """SIGTERM to this process during iteration `at`, as a scheduler sends."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def test_the_guard_notes_the_signal_and_passes_it_on_once_exited():
    before = signal.getsignal(signal.SIGTERM)
    with TerminationGuard() as outer:
        with TerminationGuard() as inner:
            assert signal.getsignal(signal.SIGTERM) is inner
            os.kill(os.getpid(), signal.SIGTERM)
            inner.pass_on()  # still active: nothing yet
            assert inner.requested and not outer.requested
        assert signal.getsignal(signal.SIGTERM) is outer
        inner.pass_on()
        assert outer.requested
        with TerminationGuard() as late:  # takes over a request noted before
            assert late.requested
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_guard_stays_out_of_threads_ignored_signals_and_when_disabled():
    seen = {}

    def in_a_thread():
        with TerminationGuard() as guard:
            seen["active"] = guard.active

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == {"active": False}
    with TerminationGuard(enabled=False) as guard:
        assert not guard.active
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with TerminationGuard():  # (SIGHUP, SIGUSR1, SIGUSR2 taken over)
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_ends_after_the_iteration_with_the_checkpoint_written(blobs, tmp_path):
    X, y = blobs
    path = tmp_path / "run.ckpt"
    # checkpoints every 1,000 iterations: only SIGTERM's end writes one
    settings = TrainSettings(**_settings(checkpoint=str(path), checkpoint_every=1000))
    with TerminationGuard() as outer:  # the process survives the hand-over
        with pytest.warns(UserWarning, match=r"interrupted \(SIGTERM\) after 7 of 40"):
            model = meta_train(X, y, settings, callbacks=[SigtermAt(7)])
    assert outer.requested  # passed on, once the checkpoint was written
    assert saved_iteration(path) == 7
    training = model.config["training"]
    assert training["n_iter"] == 7 and training["interrupted_by"] == "SIGTERM"
    assert "interrupted (SIGTERM)" in model.summary()
    resumed = meta_train(X, y, settings)  # the same call again
    assert_same_weights(resumed, meta_train(X, y, TrainSettings(**_settings())))


def test_without_a_checkpoint_sigterm_is_left_alone(blobs):
    X, y = blobs
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append(1))
    try:
        model = meta_train(
            X, y, TrainSettings(**_settings(max_iter=10)), callbacks=[SigtermAt(3)]
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [1]  # the user's handler ran, at once
    assert model.config["training"]["n_iter"] == 10
    assert not model.config["training"]["interrupted"]


def test_a_terminated_process_leaves_a_checkpoint_that_resumes(blobs, tmp_path):
    """And ends by SystemExit(143): the status the signal gives, with the
    script's cleanup run (re-raising the signal skipped it: a reviewer)."""
    X, y = blobs
    settings = _settings(max_iter=2000)
    status, stderr, path = signal_child_run(tmp_path, X, y, settings, signal.SIGTERM)
    assert status == 143, stderr  # passed on: 128 + SIGTERM
    assert "interrupted (SIGTERM)" in stderr
    assert "Traceback" not in stderr  # SystemExit ends it quietly
    assert (tmp_path / "finally").exists() and (tmp_path / "atexit").exists()
    stopped_at = saved_iteration(path)  # written by the graceful end only
    assert 5 <= stopped_at < 2000
    resumed = meta_train(X, y, TrainSettings(**dict(settings, checkpoint=str(path))))
    assert resumed.config["training"]["n_iter"] == 2000


class SigtermIn(Callback):
    """SIGTERM to this process from a hook outside the iteration's body."""

    def __init__(self, hook, at=None):
        self.hook, self.at = hook, at

    def on_iteration_end(self, loop):
        if self.hook == "on_iteration_end" and loop.n_iter == self.at:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_end(self, loop):
        if self.hook == "on_train_end":
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("hook, at", [("on_iteration_end", 40), ("on_train_end", None)])
def test_a_sigterm_outside_the_iterations_is_passed_on_too(blobs, tmp_path, hook, at):
    """In the last iteration's hooks, or after them: the run is complete (not
    interrupted), and the signal still reaches its receiver."""
    X, y = blobs
    settings = TrainSettings(**_settings(checkpoint=str(tmp_path / "run.ckpt")))
    with TerminationGuard() as outer:
        model = meta_train(X, y, settings, callbacks=[SigtermIn(hook, at)])
    assert outer.requested
    assert model.config["training"]["n_iter"] == 40
    assert not model.config["training"]["interrupted"]


def test_a_sigterm_in_the_last_iteration_leaves_the_run_complete(blobs, tmp_path):
    X, y = blobs
    settings = TrainSettings(**_settings(checkpoint=str(tmp_path / "run.ckpt")))
    with TerminationGuard() as outer:
        model = meta_train(X, y, settings, callbacks=[SigtermAt(40)])
    assert outer.requested and not model.config["training"]["interrupted"]
    assert saved_iteration(tmp_path / "run.ckpt") == 40
