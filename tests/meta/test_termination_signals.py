"""Signals beside SIGTERM (skmeta.meta.termination): SLURM's advance warnings
(SIGUSR1, SIGUSR2, SIGHUP), where their handler is the default, end the run
as SIGTERM does (the checkpoint written, then exit status 128 + the signal's
number); the first Ctrl-C ends it after the current iteration with the
checkpoint written and ``fit`` returning, a second one at once."""

import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from checkpoint_helpers import assert_same_weights, saved_iteration
from signal_helpers import (
    environment,
    signal_child_run,
    start,
    wait_for,
)

import skmeta
from skmeta.meta.callbacks import Callback
from skmeta.meta.termination import TerminationGuard
from skmeta.meta.train import TrainSettings, meta_train

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="POSIX signals"
)  # fmt: skip

WARNING_SIGNALS = [s for s in ("SIGUSR1", "SIGUSR2", "SIGHUP") if hasattr(signal, s)]


def _settings(**changes):
    base = dict(n_way=5, k_shot=2, n_query=3, input_shape=(10,), max_iter=40, seed=3)
    return {**base, **changes}


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler, which a test run in the background (SIGINT
    ignored) would lack."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class SignalAt(Callback):
    """`signum` raised in this thread `times` times in iteration `at` (or in
    ``on_train_end`` when `at` is None), as Ctrl-C or a scheduler sends it."""

    def __init__(self, signum, at, times=1):
        self.signum, self.at, self.times = signum, at, times

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == self.at:
            for _ in range(self.times):
                signal.raise_signal(self.signum)

    def on_train_end(self, loop):
        if self.at is None:
            signal.raise_signal(self.signum)


class InterruptAt(Callback):
    """``KeyboardInterrupt`` raised in iteration `at`, as Python's handler
    raises it where no guard takes SIGINT over (a thread, a notebook's)."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("name", WARNING_SIGNALS)
def test_a_warning_signal_ends_the_run_as_sigterm_does(blobs, tmp_path, name):
    """By default SIGUSR1 (SLURM's --signal=USR1@120), SIGUSR2 and SIGHUP
    killed the process at once (status 138, 140, 129), losing the iterations
    since the last checkpoint."""
    signum = getattr(signal, name)
    status, stderr, path = signal_child_run(
        tmp_path, *blobs, _settings(max_iter=2000), signum
    )
    assert status == 128 + signum, stderr
    assert f"interrupted ({name})" in stderr
    assert "now that the checkpoint is written" in stderr
    assert 5 <= saved_iteration(path) < 2000
    assert (tmp_path / "finally").exists() and (tmp_path / "atexit").exists()


def test_a_handler_of_the_users_for_a_warning_signal_is_left_alone(blobs, tmp_path):
    X, y = blobs
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: seen.append(1))
    try:
        settings = _settings(max_iter=10, checkpoint=str(tmp_path / "run.ckpt"))
        with TerminationGuard() as outer:
            assert signal.getsignal(signal.SIGUSR1) is not outer
            model = meta_train(
                X, y, TrainSettings(**settings), callbacks=[SignalAt(signal.SIGUSR1, 3)]
            )
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [1] and not outer.requested  # the user's handler, at once
    assert model.config["training"]["n_iter"] == 10
    assert not model.config["training"]["interrupted"]


def test_ctrl_c_ends_after_the_iteration_with_the_checkpoint_written(
    blobs, tmp_path, python_sigint
):
    """The checkpoint holds the interrupted iteration (it kept only the last
    multiple of checkpoint_every: 5 finished iterations lost, a reviewer);
    resumed, the run ends with the weights of one never interrupted."""
    X, y = blobs
    settings = TrainSettings(
        **_settings(checkpoint=str(tmp_path / "run.ckpt"), checkpoint_every=10)
    )
    match = r"interrupted \(KeyboardInterrupt\) after 15 of 40.*checkpoint is written"
    with pytest.warns(UserWarning, match=match):
        model = meta_train(X, y, settings, callbacks=[SignalAt(signal.SIGINT, 15)])
    training = model.config["training"]
    assert (training["n_iter"], training["interrupted_by"]) == (15, "KeyboardInterrupt")
    assert saved_iteration(tmp_path / "run.ckpt") == 15
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = meta_train(X, y, settings)
    assert_same_weights(resumed, meta_train(X, y, TrainSettings(**_settings())))


def test_a_second_ctrl_c_interrupts_at_once(blobs, tmp_path, python_sigint):
    X, y = blobs
    settings = _settings(checkpoint=str(tmp_path / "run.ckpt"), checkpoint_every=10)
    with pytest.warns(UserWarning, match=r"after 15 of 40 iterations.*15\)\.$"):
        model = meta_train(
            X,
            y,
            TrainSettings(**settings),
            callbacks=[SignalAt(signal.SIGINT, 15, times=2)],
        )
    assert model.config["training"]["n_iter"] == 15
    assert saved_iteration(tmp_path / "run.ckpt") == 10  # not the cut iteration


def test_ctrl_c_after_the_last_iteration_and_in_it(blobs, python_sigint):
    """In the last iteration the run is complete (fit returns it); after the
    loop, Ctrl-C raises KeyboardInterrupt, as it did."""
    X, y = blobs
    settings = TrainSettings(**_settings(max_iter=10))
    model = meta_train(X, y, settings, callbacks=[SignalAt(signal.SIGINT, 10)])
    assert model.config["training"]["n_iter"] == 10
    assert not model.config["training"]["interrupted"]
    with pytest.raises(KeyboardInterrupt):
        meta_train(X, y, settings, callbacks=[SignalAt(signal.SIGINT, None)])


def test_ctrl_c_with_a_handler_of_the_users_is_left_alone(blobs):
    X, y = blobs
    seen = []
    previous = signal.signal(signal.SIGINT, lambda *_: seen.append(1))
    try:
        model = meta_train(
            X,
            y,
            TrainSettings(**_settings(max_iter=10)),
            callbacks=[SignalAt(signal.SIGINT, 3)],
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [1]  # at once
    assert not model.config["training"]["interrupted"]


@pytest.mark.parametrize("in_a_thread", [False, True])
def test_a_keyboard_interrupt_raised_ends_the_run_at_once(
    blobs, tmp_path, python_sigint, in_a_thread
):
    """As Python's handler raises it where no guard is (a notebook's, a fit in
    another thread): the model so far, the checkpoint of iteration 10."""
    X, y = blobs
    settings = _settings(checkpoint=str(tmp_path / "run.ckpt"), checkpoint_every=10)
    done = {}

    def fit():
        with pytest.warns(UserWarning, match=r"after 15 of 40 iterations"):
            done["model"] = meta_train(
                X, y, TrainSettings(**settings), callbacks=[InterruptAt(15)]
            )

    if in_a_thread:
        thread = threading.Thread(target=fit)
        thread.start()
        thread.join()
    else:
        fit()
    assert done["model"].config["training"]["n_iter"] == 15
    assert done["model"].config["training"]["interrupted_by"] == "KeyboardInterrupt"
    assert saved_iteration(tmp_path / "run.ckpt") == 10


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", *WARNING_SIGNALS[:1]])
def test_skmeta_train_writes_the_model_so_far_and_exits(tmp_path, name):
    """Ctrl-C: 130, as before, now with the iteration checkpointed; SIGTERM
    143 and SIGUSR1 138: 128 + the signal's number; skmeta info says how the
    run ended."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)) + np.repeat(np.arange(6), 10)[:, None]
    np.savez(
        tmp_path / "rows.npz", X=X.astype(np.float32), y=np.repeat(np.arange(6), 10)
    )
    out, checkpoint = tmp_path / "m.safetensors", tmp_path / "run.ckpt"
    argv = [sys.executable, "-m", "skmeta", "train", str(tmp_path / "rows.npz")]
    argv += ["--out", str(out), "--n-way", "3", "--max-iter", "1000000", "--quiet"]
    argv += ["--checkpoint", str(checkpoint), "--checkpoint-every", "1"]
    child = start(argv)
    wait_for(checkpoint, child)  # meta-training has begun
    signum = getattr(signal, name)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    training = skmeta.MetaModel.load(out).config["training"]
    assert training["n_iter"] == saved_iteration(checkpoint)  # the same run
    if name == "SIGINT":
        assert child.returncode == 130, stderr
        assert training["interrupted_by"] == "KeyboardInterrupt"
        assert "the checkpoint is written" in stderr
    else:
        assert child.returncode == 128 + signum, stderr
        assert f"skmeta train: terminated ({name})" in stderr
        assert training["interrupted_by"] == name
        info = subprocess.run(
            [sys.executable, "-m", "skmeta", "info", str(out)],
            env=environment(),
            capture_output=True,
            text=True,
        )
        assert f"interrupted ({name})" in info.stdout


def test_faulthandlers_c_level_handler_is_left_alone(tmp_path):
    """faulthandler.register installs its handler below Python's signal
    module, where getsignal still reads SIG_DFL: a guard took SIGUSR1 over
    and restored SIG_DFL, so a stack-dump request ended the run, then killed
    the process (a reviewer). The guard leaves it alone now."""
    import faulthandler
    import os

    signum = signal.SIGUSR1
    with open(tmp_path / "dump.txt", "w+") as dump:
        faulthandler.register(signum, file=dump)
        try:
            assert signal.getsignal(signum) == signal.SIG_DFL  # what Python sees
            with TerminationGuard() as guard:
                assert signum not in guard._previous
                assert signal.SIGTERM in guard._previous  # still taken
            os.kill(os.getpid(), signum)  # dumps the stacks, not fatal
        finally:
            faulthandler.unregister(signum)
        dump.seek(0)
        assert "most recent call first" in dump.read()
