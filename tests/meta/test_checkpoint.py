"""Checkpoints (skmeta.meta.checkpoint): a run killed with SIGKILL and resumed
ends with the same weights, to the bit, as one never interrupted; files are
written atomically, in a safe format, and refused for another run."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_helpers import Interrupt
from safetensors import safe_open

import skmeta
from skmeta.meta import io
from skmeta.meta.callbacks import Callback
from skmeta.meta.train import TrainSettings, meta_train

ROOT = str(Path(skmeta.__file__).resolve().parents[1])

# Meta-train in a fresh process on the data saved in a folder; save the model.
CHILD = """
import json, sys
import numpy as np
from skmeta.meta.train import TrainSettings, meta_train
folder, settings = sys.argv[1], json.loads(sys.argv[2])
settings["input_shape"] = tuple(settings["input_shape"])
X, y = np.load(folder + "/X.npy"), np.load(folder + "/y.npy")
meta_train(X, y, TrainSettings(**settings)).save(folder + "/model.safetensors")
"""


def _settings(**changes):
    base = dict(n_way=5, k_shot=2, n_query=3, input_shape=(10,), max_iter=40, seed=3)
    return {**base, **changes}


def _child(folder: Path, settings: dict) -> subprocess.Popen:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), json.dumps(settings)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _saved_state(path) -> dict:
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["skmeta_checkpoint"])["state"]


def _without_time(history):
    return [{k: v for k, v in r.items() if k != "elapsed"} for r in history]


def _assert_same_run(a, b):
    assert a.state.keys() == b.state.keys()
    for name in a.state:
        assert torch.equal(a.state[name], b.state[name]), name
    assert _without_time(a.history) == _without_time(b.history)
    for key in ("n_iter", "best_iter"):
        assert a.config["training"][key] == b.config["training"][key]


@pytest.mark.parametrize(
    "changes",
    [
        dict(max_iter=150),
        dict(max_iter=300, early_stopping=True, n_iter_no_change=4),
        dict(
            max_iter=60,
            method="maml",
            method_params={"inner_steps": 2, "inner_lr": 0.1},
            meta_batch_size=4,
            n_jobs=2,  # the meta-gradients in worker threads
        ),
    ],
    ids=["protonet", "early_stopping", "maml_threads"],
)
def test_a_run_killed_mid_way_resumes_to_the_same_weights(blobs, tmp_path, changes):
    X, y = blobs
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    path = tmp_path / "run.ckpt"
    settings = _settings(checkpoint=str(path), checkpoint_every=1, **changes)

    child = _child(tmp_path, settings)
    deadline = time.monotonic() + 120
    while not path.exists():  # the first checkpoint
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.002)
    time.sleep(0.05)  # then training goes on, writing a checkpoint each iteration
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    killed_at = _saved_state(path)["n_iter"]
    assert 1 <= killed_at < settings["max_iter"]
    assert not (tmp_path / "model.safetensors").exists()

    resumed = _child(tmp_path, settings)  # a new process, the same call
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1]
    model = skmeta.MetaModel.load(tmp_path / "model.safetensors")
    uninterrupted = meta_train(X, y, TrainSettings(**_settings(**changes)))
    _assert_same_run(model, uninterrupted)
    assert not path.with_name("run.ckpt.tmp").exists()


@pytest.mark.parametrize(
    "changes",
    [
        dict(augmentation="features"),  # torch's random state resumes too
        dict(precision="float16", max_grad_norm=0.5),  # loss scale, clipping sums
    ],
    ids=["augmentation", "float16_clipping"],
)
def test_resume_after_ctrl_c_in_the_same_process(blobs, tmp_path, changes):
    X, y = blobs
    settings = TrainSettings(**_settings(checkpoint=str(tmp_path / "c"), **changes))
    with pytest.warns(UserWarning, match="interrupted"):
        meta_train(X, y, settings, callbacks=[Interrupt(25)])
    # eval_interval is 2: the last checkpoint was after iteration 24
    assert _saved_state(tmp_path / "c")["n_iter"] == 24
    # the progress bar (verbose, free to change) starts where the run resumes
    _assert_same_run(
        meta_train(X, y, dataclasses.replace(settings, verbose=1)),
        meta_train(X, y, TrainSettings(**_settings(**changes))),
    )


class Steps(Callback):
    def __init__(self):
        self.n = 0

    def on_step_end(self, loop, loss, metrics):
        self.n += 1


def test_a_finished_run_resumes_at_its_end(blobs, tmp_path):
    X, y = blobs
    settings = TrainSettings(**_settings(checkpoint=str(tmp_path / "c")))
    first = meta_train(X, y, settings)
    steps = Steps()
    again = meta_train(X, y, settings, callbacks=[steps])
    assert steps.n == 0
    _assert_same_run(first, again)


def test_the_file_is_safetensors_with_json_and_no_pickle(blobs, tmp_path):
    X, y = blobs
    path = tmp_path / "c"
    meta_train(X, y, TrainSettings(**_settings(checkpoint=str(path), max_iter=3)))
    header = path.read_bytes()
    size = int.from_bytes(header[:8], "little")
    assert header[8:9] == b"{" and json.loads(header[8 : 8 + size])
    with safe_open(str(path), framework="pt") as handle:
        names = set(handle.keys())
        data = json.loads(handle.metadata()["skmeta_checkpoint"])
    assert data["format_version"] == 1
    assert data["fingerprint"]["settings"]["max_iter"] == 3
    expected = {"torch_rng", "net/input_mean", "optimizer/params/0/exp_avg"}
    assert {f"state/{name}" for name in expected} <= names
    state = data["state"]
    assert state["n_iter"] == 3 and state["batches"]["offset"] == 3
    assert state["batches"]["block_rng"]["bit_generator"] == "PCG64"


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(max_iter=50), "max_iter=40 there, 50 here"),
        (dict(seed=4), r"seed=3 there, 4 here \(drawn from random_state, not"),
        (dict(method_params={"distance": "cosine"}), "method_params="),
    ],
)
def test_a_checkpoint_of_other_settings_is_refused(blobs, tmp_path, changes, match):
    X, y = blobs
    path = str(tmp_path / "c")
    meta_train(X, y, TrainSettings(**_settings(checkpoint=path)))
    other = TrainSettings(**_settings(**{"checkpoint": path, **changes}))
    with pytest.raises(ValueError, match=f"another meta-training run: .*{match}"):
        meta_train(X, y, other)
    # settings of speed and logging may change
    meta_train(X, y, TrainSettings(**_settings(checkpoint=path, n_jobs=1, verbose=0)))


def test_a_checkpoint_of_other_data_is_refused(blobs, tmp_path):
    X, y = blobs
    settings = TrainSettings(**_settings(checkpoint=str(tmp_path / "c")))
    meta_train(X, y, settings)
    with pytest.raises(ValueError, match="other data"):
        meta_train(X[:300], y[:300], settings)
    with pytest.raises(ValueError, match="other data"):
        meta_train(X, np.roll(y, 1), settings)
    with pytest.raises(ValueError, match=r"other data \(X's values\)"):
        meta_train(X + 1, y, settings)
    with pytest.raises(ValueError, match=r"other data \(X's shape \[360, 10\] there"):
        meta_train(X[:300], y[:300], settings)


def test_a_file_that_is_not_a_checkpoint_is_refused(blobs, blob_model, tmp_path):
    X, y = blobs
    path = tmp_path / "c"
    for content in (b"not a checkpoint", None):
        if content is None:
            blob_model.save(path)  # a model file is no checkpoint
        else:
            path.write_bytes(content)
        with pytest.raises(ValueError, match="is not a skmeta checkpoint"):
            meta_train(X, y, TrainSettings(**_settings(checkpoint=str(path))))
    with pytest.raises(ValueError, match="existing folder"):
        settings = _settings(checkpoint=str(tmp_path / "missing" / "c"))
        meta_train(X, y, TrainSettings(**settings))


def test_a_failed_write_leaves_the_previous_checkpoint(blobs, tmp_path, monkeypatch):
    X, y = blobs
    path = tmp_path / "c"
    settings = TrainSettings(**_settings(checkpoint=str(path), checkpoint_every=5))
    real_replace = os.replace

    def replace(source, target):
        if _saved_state(source)["n_iter"] == 15:  # dies before the rename
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(io.os, "replace", replace)
    with pytest.warns(UserWarning, match="after 15 of 40"):
        meta_train(X, y, settings)
    assert _saved_state(path)["n_iter"] == 10  # whole, the one before
    monkeypatch.setattr(io.os, "replace", real_replace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = meta_train(X, y, settings)
    _assert_same_run(resumed, meta_train(X, y, TrainSettings(**_settings())))


def test_warm_start_continues_from_a_model(blobs):
    X, y = blobs
    first = meta_train(X, y, TrainSettings(**_settings(max_iter=20)))
    more = meta_train(X, y, TrainSettings(**_settings(max_iter=20)), init=first)
    assert more.config["training"]["n_iter"] == 40
    assert [r["iter"] for r in more.history] == list(range(1, 41))
    assert more.history[:20] == first.history
    assert more.history[-1]["loss"] < first.history[0]["loss"]
    # from the model's weights (a step too small to move them), not anew
    still = meta_train(
        X, y, TrainSettings(**_settings(max_iter=2, learning_rate=1e-12)), init=first
    )
    for name, value in first.state.items():
        torch.testing.assert_close(still.state[name], value, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="warm_start=True .* network differs"):
        meta_train(
            X,
            y,
            TrainSettings(**_settings(backbone_params={"hidden_sizes": (8,)})),
            init=first,
        )
    with pytest.raises(ValueError, match="method='protonet', not 'pretrain'"):
        meta_train(X, y, TrainSettings(**_settings(method="pretrain")), init=first)


def test_a_warm_started_run_resumes_and_is_told_from_a_cold_one(blobs, tmp_path):
    X, y = blobs
    first = meta_train(X, y, TrainSettings(**_settings(max_iter=10)))
    settings = TrainSettings(**_settings(checkpoint=str(tmp_path / "c")))
    with pytest.warns(UserWarning, match="interrupted"):
        meta_train(X, y, settings, callbacks=[Interrupt(13)], init=first)
    with pytest.raises(ValueError, match="another starting model"):
        meta_train(X, y, settings)  # cold, or from another model
    resumed = meta_train(X, y, settings, init=first)
    assert resumed.config["training"]["n_iter"] == 50
    _assert_same_run(
        resumed, meta_train(X, y, TrainSettings(**_settings()), init=first)
    )
