"""Thread counts (skmeta.meta.thread_counts): recorded in the model and the
checkpoint; a resume on other counts warns, and is not refused."""

import warnings

import pytest
import torch
from checkpoint_helpers import Interrupt

from skmeta.meta import io
from skmeta.meta.thread_counts import warn_if_other_threads
from skmeta.meta.train import TrainSettings, meta_train


@pytest.fixture
def set_threads():
    """torch.set_num_threads for the test, the count restored after it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _settings(**changes):
    base = dict(
        n_way=5,
        k_shot=2,
        n_query=3,
        input_shape=(10,),
        max_iter=8,
        seed=3,
        method="fomaml",
        meta_batch_size=4,
    )
    return TrainSettings(**{**base, **changes})


def test_a_model_records_its_thread_counts(blobs, set_threads):
    X, y = blobs
    set_threads(1)
    training = meta_train(X, y, _settings(max_iter=2, n_jobs=2)).config["training"]
    assert training["torch_threads"] == 1
    assert training["task_workers"] == 2  # the tasks' worker threads
    training = meta_train(X, y, _settings(max_iter=2, method="protonet")).config[
        "training"
    ]
    assert training["torch_threads"] == 1
    assert "task_workers" not in training  # one batched pass: no workers


def test_a_resume_on_another_thread_count_warns(blobs, tmp_path, set_threads):
    """A run checkpointed on 1 thread and resumed on 2 ended far from the
    uninterrupted run, and nothing said so (a reviewer)."""
    X, y = blobs
    path = tmp_path / "run.ckpt"
    settings = _settings(checkpoint=str(path), checkpoint_every=1, n_jobs=1)
    set_threads(1)
    with pytest.warns(UserWarning, match="interrupted"):
        meta_train(X, y, settings, callbacks=[Interrupt(5)])
    assert io.load_checkpoint(path)["state"]["threads"] == {
        "torch_threads": 1,
        "task_workers": 1,
    }
    set_threads(2)
    with pytest.warns(UserWarning, match="thread") as record:
        resumed = meta_train(X, y, settings)
    (warning,) = record
    message = str(warning.message)
    assert "1 torch thread(s) then and 2 now" in message
    assert "torch.set_num_threads(1)" in message
    assert "float rounding" in message
    assert "worker" not in message  # n_jobs=1: one worker both times
    assert resumed.config["training"]["n_iter"] == 8
    assert resumed.config["training"]["torch_threads"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same count: silent
        meta_train(X, y, settings)


def test_a_checkpoint_without_the_record_resumes_silently(blobs, tmp_path, set_threads):
    X, y = blobs
    path = tmp_path / "old.ckpt"
    settings = _settings(checkpoint=str(path), checkpoint_every=1)
    set_threads(1)
    with pytest.warns(UserWarning, match="interrupted"):
        meta_train(X, y, settings, callbacks=[Interrupt(5)])
    data = io.load_checkpoint(path)
    del data["state"]["threads"]  # as written before the counts were recorded
    io.save_checkpoint(path, data)
    set_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert meta_train(X, y, settings).config["training"]["n_iter"] == 8


def test_other_worker_counts_are_named_with_the_n_jobs_to_match():
    with pytest.warns(UserWarning) as record:
        warn_if_other_threads(
            {"torch_threads": 2, "task_workers": 2},
            {"torch_threads": 2, "task_workers": 4},
            "run.ckpt",
            -1,
        )
    message = str(record[0].message)
    assert "2 worker thread(s) for the tasks then and 4 now (n_jobs=-1)" in message
    assert "pass n_jobs=2" in message
    assert "torch thread" not in message
