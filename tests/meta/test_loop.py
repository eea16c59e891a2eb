"""The meta-training loop stops on divergence, naming what to change."""

import pytest
import torch

from skmeta.meta.algorithms.protonet import ProtoNet
from skmeta.meta.callbacks import Callback
from skmeta.meta.io import load_checkpoint
from skmeta.meta.train import TrainSettings, meta_train


def _settings(**kw):
    base = dict(n_way=4, k_shot=2, n_query=3, input_shape=(10,), max_iter=20, seed=0)
    return TrainSettings(**{**base, **kw})


class KeepLoop(Callback):
    """Hands the loop to the test, which looks at it after an error."""

    def on_train_begin(self, loop):
        self.loop = loop


@pytest.fixture
def nan_gradient_at_iteration_3(monkeypatch):
    """ProtoNet whose loss stays finite but whose gradient is NaN from the
    third call on: d/dw sqrt(w - w) at 0 is inf * 0."""
    calls = []
    reference = ProtoNet.loss

    def loss(self, net, batch):
        value, metrics = reference(self, net, batch)
        calls.append(1)
        if len(calls) >= 3:
            weight = next(net.parameters())
            value = value + 0 * (weight.sum() - weight.sum()).sqrt()
        return value, metrics

    monkeypatch.setattr(ProtoNet, "loss", loss)


def test_a_nan_gradient_with_a_finite_loss_stops_before_the_weights(
    blobs, nan_gradient_at_iteration_3, tmp_path
):
    X, y = blobs
    kept = KeepLoop()
    path = tmp_path / "run.ckpt"
    settings = _settings(checkpoint=str(path), checkpoint_every=1)
    with pytest.raises(FloatingPointError) as error:
        meta_train(X, y, settings, callbacks=[kept])
    message = str(error.value)
    assert "iteration 3 of 20" in message and "meta-gradient is not finite" in message
    assert "learning_rate=0.001" in message and "inner_lr" not in message
    assert "keeps the state of iteration 2" in message
    weights = list(kept.loop.net.parameters())
    assert all(torch.isfinite(w).all() for w in weights)  # no NaN went in
    saved = load_checkpoint(path)["state"]
    assert saved["n_iter"] == 2
    for name, value in kept.loop.net.state_dict().items():
        torch.testing.assert_close(saved["net"][name], value, rtol=0, atol=0)


def test_a_non_finite_loss_names_iteration_and_rates(blobs):
    X, y = blobs
    with pytest.raises(FloatingPointError) as error:
        meta_train(X * 1e30, y, _settings(learning_rate=1e30, max_iter=50))
    message = str(error.value)
    assert "Meta-training diverged at iteration" in message
    assert "learning_rate=1e+30); lower learning_rate." in message
    assert "checkpoint" not in message
    with pytest.raises(FloatingPointError) as error:
        meta_train(
            X,
            y,
            _settings(method="maml", method_params={"inner_lr": 1e6, "inner_steps": 3}),
        )
    message = str(error.value)
    assert "inner_steps=3, inner_lr=1000000.0" in message
    assert "use fewer inner_steps or a smaller inner_lr, or lower learning_rate" in (
        message
    )


def test_an_update_to_non_finite_weights_stops_at_its_iteration(blobs):
    # Adam's step is about learning_rate in size: only an infinite rate (which
    # the estimators refuse) overflows finite weights with a finite gradient.
    X, y = blobs
    with pytest.raises(FloatingPointError) as error:
        meta_train(X, y, _settings(learning_rate=float("inf")))
    assert "iteration 1 of 20: the update made the weights non-finite" in str(
        error.value
    )
