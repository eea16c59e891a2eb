"""The training loop's hooks (skmeta.meta.callbacks): features plug in as
callbacks, without editing the loop."""

import signal

import numpy as np
import pytest
import torch

from skmeta.meta.callbacks import Callback
from skmeta.meta.train import TrainSettings, meta_train


def _settings(**kw):
    base = dict(n_way=4, k_shot=2, n_query=3, input_shape=(10,), max_iter=20, seed=0)
    return TrainSettings(**{**base, **kw})


class Recorder(Callback):
    """Every hook, in order, with what it saw."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, loop):
        self.calls.append(("begin", loop.n_iter))

    def on_gradient(self, loop):
        has_grad = any(p.grad is not None for p in loop.net.parameters())
        self.calls.append(("gradient", loop.n_iter, has_grad))

    def on_step_end(self, loop, loss, metrics):
        self.calls.append(("step", loop.n_iter, np.isfinite(loss), set(metrics)))

    def on_record(self, loop, record):
        record["custom"] = loop.n_iter
        self.calls.append(("record", loop.n_iter))

    def on_train_end(self, loop):
        self.calls.append(("end", loop.n_iter))


def test_hooks_run_in_order_and_records_take_custom_entries(blobs):
    X, y = blobs
    recorder = Recorder()
    model = meta_train(X, y, _settings(max_iter=4), callbacks=[recorder])
    kinds = [c[0] for c in recorder.calls]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    assert kinds.count("gradient") == kinds.count("step") == 4
    assert all(c[2] for c in recorder.calls if c[0] == "gradient")
    assert all(c[2] and c[3] == {"accuracy"} for c in recorder.calls if c[0] == "step")
    # eval_interval is 1 for 4 iterations: a record after each
    assert [r["custom"] for r in model.history] == [1, 2, 3, 4]
    assert {"loss", "accuracy", "learning_rate", "elapsed"} <= set(model.history[0])


class StopAt(Callback):
    def __init__(self, n):
        self.n = n

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == self.n:
            loop.stop = True


def test_a_callback_can_stop_meta_training(blobs):
    X, y = blobs
    model = meta_train(X, y, _settings(max_iter=50), callbacks=[StopAt(7)])
    assert model.config["training"]["n_iter"] == 7


class Snapshots(Callback):
    """A checkpoint-like callback: copies of the weights every 5 iterations."""

    def __init__(self):
        self.states = {}

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter % 5 == 0:
            self.states[loop.n_iter] = {
                k: v.clone() for k, v in loop.net.state_dict().items()
            }


def test_callbacks_see_the_weights_as_they_train(blobs):
    X, y = blobs
    snapshots = Snapshots()
    model = meta_train(X, y, _settings(max_iter=10), callbacks=[snapshots])
    assert sorted(snapshots.states) == [5, 10]
    last = snapshots.states[10]
    for name, value in model.state.items():
        if name == "extra.base_mean":  # not trained: computed after the loop
            continue
        np.testing.assert_array_equal(value.numpy(), last[name].numpy())
    assert any(
        not np.array_equal(last[k].numpy(), snapshots.states[5][k].numpy())
        for k in last
    )


def test_built_in_callbacks_follow_the_settings(blobs):
    X, y = blobs
    clipped = meta_train(X, y, _settings(max_grad_norm=0.5))
    assert all("grad_norm" in r for r in clipped.history)
    plain = meta_train(X, y, _settings())
    assert not any("grad_norm" in r for r in plain.history)
    stopped = meta_train(
        X,
        y,
        _settings(max_iter=400, early_stopping=True, n_iter_no_change=2),
    )
    assert all("val_loss" in r for r in stopped.history)
    training = stopped.config["training"]
    assert training["best_iter"] <= training["n_iter"]


def test_non_finite_loss_stops_with_a_clear_error(blobs):
    X, y = blobs
    with pytest.raises(FloatingPointError, match="lower learning_rate"):
        meta_train(X * 1e30, y, _settings(learning_rate=1e30, max_iter=50))


class Interrupt(Callback):
    """Ctrl-C at an iteration: raised, or as the signal itself."""

    def __init__(self, at, by_signal=False):
        self.at, self.by_signal = at, by_signal

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == self.at:
            if self.by_signal:
                signal.raise_signal(signal.SIGINT)
            raise KeyboardInterrupt


class RecordSnapshots(Callback):
    """The weights at each record."""

    def __init__(self):
        self.states = {}

    def on_record(self, loop, record):
        self.states[loop.n_iter] = {
            k: v.clone() for k, v in loop.net.state_dict().items()
        }


@pytest.mark.parametrize("by_signal", [False, True])
def test_ctrl_c_keeps_the_model_so_far_and_warns(blobs, by_signal):
    X, y = blobs
    with pytest.warns(UserWarning, match="interrupted .KeyboardInterrupt. after 7 of"):
        model = meta_train(X, y, _settings(), callbacks=[Interrupt(7, by_signal)])
    training = model.config["training"]
    assert training["n_iter"] == training["best_iter"] == 7
    assert training["interrupted"] is True
    assert np.isfinite(model.transform(X)).all()


def test_ctrl_c_with_early_stopping_keeps_the_best_weights(blobs):
    X, y = blobs
    snapshots = RecordSnapshots()
    settings = _settings(max_iter=200, early_stopping=True)
    with pytest.warns(UserWarning, match="after 95 of 200 iterations"):
        model = meta_train(X, y, settings, callbacks=[snapshots, Interrupt(95)])
    best = model.config["training"]["best_iter"]
    assert best < 95 and best in snapshots.states
    for name, value in model.state.items():
        if name == "extra.base_mean":  # not trained: computed after the loop
            continue
        assert torch.equal(value, snapshots.states[best][name])


def test_progress_bar_leaves_a_one_line_summary(capsys):
    import numpy as np

    from skmeta.meta.train import TrainSettings, meta_train

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 6)
    X = (rng.normal(size=(6, 4)) * 3)[y] + rng.normal(size=(y.size, 4))
    settings = TrainSettings(
        n_way=3, k_shot=1, n_query=2, input_shape=(4,), max_iter=20, verbose=1
    )
    meta_train(X.astype(np.float32), y, settings)
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("meta-training protonet: 20 iterations in ")
    assert "; loss " in last and "accuracy " in last


def test_gradient_clipping_leaves_skipped_float16_steps_out_of_grad_norm():
    """A float16 step whose gradients overflow is skipped by the scaler; its
    infinite norm made the history's grad_norm inf (reviewer). A float32
    run's infinite norm is divergence, and shows."""
    from types import SimpleNamespace

    from skmeta.meta.callbacks import GradientClipping
    from skmeta.meta.precision import Precision

    weight = torch.nn.Parameter(torch.ones(3))
    for precision, expected in [("float16", 3.0), ("float32", float("inf"))]:
        loop = SimpleNamespace(
            net=torch.nn.Module(), precision=Precision(precision, "cpu")
        )
        loop.net.weight = weight
        clipping, record = GradientClipping(max_norm=1.0), {}
        for grad in ([3.0, 4.0, 0.0], [float("inf"), 0.0, 0.0], [0.0, 0.0, 1.0]):
            weight.grad = torch.tensor(grad)
            clipping.on_gradient(loop)
        clipping.on_record(loop, record)
        assert record["grad_norm"] == pytest.approx(expected)  # (5 + 1) / 2
        clipping.on_record(loop, record)  # no step since: not a zero norm
        assert np.isnan(record["grad_norm"])
