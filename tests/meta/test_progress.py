"""Meta-training's progress (skmeta.meta.progress): a bar on a terminal, plain
lines in a log file (no carriage returns), and a resumed run's count, rate and
closing line of its own iterations."""

import dataclasses
import io
import sys
import warnings

import pytest
from checkpoint_helpers import Interrupt

from skmeta.meta.progress import ProgressBar
from skmeta.meta.train import TrainSettings, meta_train


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _settings(**changes):
    base = dict(n_way=5, k_shot=2, n_query=3, input_shape=(10,), max_iter=20, seed=3)
    return TrainSettings(**{**base, **changes})


def test_a_log_file_gets_lines_not_carriage_returns(blobs, monkeypatch):
    """tqdm's updates made one ever-growing line of a SLURM log (a reviewer)."""
    X, y = blobs
    log = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    meta_train(X, y, _settings(verbose=1))
    assert "\r" not in log.getvalue()
    # a minute between two lines: a short run leaves its closing line alone
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meta-training protonet: 20 ")


def test_log_lines_come_at_the_interval(blobs):
    X, y = blobs
    log = io.StringIO()
    bar = ProgressBar("meta-training", interval=0.0, file=log)
    meta_train(X, y, _settings(max_iter=6), callbacks=[bar])
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 7
    assert lines[0].startswith("meta-training: 1/6 [")
    assert lines[2].startswith("meta-training: 3/6 [") and "it/s" in lines[2]
    assert "loss=" in lines[2] and "accuracy=" in lines[2]  # the last record's
    assert lines[-1].startswith("meta-training: 6 iterations in ")


def test_a_terminal_gets_the_bar(blobs, monkeypatch):
    X, y = blobs
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    meta_train(X, y, _settings(verbose=1))
    assert "\r" in terminal.getvalue() and "20/20" in terminal.getvalue()


@pytest.mark.parametrize("stream", [Terminal, io.StringIO])
def test_a_resumed_run_counts_its_own_iterations(blobs, tmp_path, monkeypatch, stream):
    """The closing line said '40 iterations in 0.267 s' of a run resumed at
    15 (a reviewer); the bar's rate and ETA counted the restored iterations."""
    X, y = blobs
    path = tmp_path / "run.ckpt"
    settings = _settings(checkpoint=str(path), max_iter=40)  # a record each 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # interrupted
        meta_train(X, y, settings, callbacks=[Interrupt(17)])
    out = stream()
    monkeypatch.setattr(sys, "stderr", out)
    model = meta_train(X, y, dataclasses.replace(settings, verbose=1))
    text = out.getvalue()
    assert f"meta-training protonet: resumed from {path} at iteration 16 of 40\n" in (
        text
    )
    closing = text.strip().splitlines()[-1]
    assert closing.startswith(
        "meta-training protonet: 24 iterations (17-40; resumed at 16) in "
    )
    if stream is Terminal:  # the bar starts where the run resumed
        assert "| 16/40 [" in text and "| 0/40 [" not in text
    training = model.config["training"]
    assert training["resumed_from"] == 16 and training["n_iter"] == 40


def test_a_finished_run_resumed_says_so(blobs, tmp_path, capsys):
    X, y = blobs
    settings = _settings(checkpoint=str(tmp_path / "c"), max_iter=4)
    meta_train(X, y, settings)
    capsys.readouterr()
    meta_train(X, y, dataclasses.replace(settings, verbose=1))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("at iteration 4 of 4")
    assert lines[1].startswith("meta-training protonet: 0 iterations (resumed at 4)")
