"""Mixed-precision meta-training (autocast, float16 loss scaling) and devices."""

import warnings

import numpy as np
import pytest
import torch

from skmeta import FewShotClassifier
from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.optim import CosineAdam
from skmeta.meta.precision import Precision
from skmeta.meta.train import TrainSettings, meta_train

CPU = torch.device("cpu")


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_meta_training_learns_and_keeps_float32_weights(
    blobs, precision
):
    X, y = blobs
    base = y < 16
    settings = dict(n_way=5, k_shot=2, n_query=5, input_shape=(10,), max_iter=60)
    model = meta_train(X[base], y[base], TrainSettings(precision=precision, **settings))
    assert all(t.dtype == torch.float32 for t in model.state.values())
    assert model.config["training"]["precision"] == precision
    first, last = model.history[0], model.history[-1]
    assert last["loss"] < first["loss"]
    clf = FewShotClassifier(pretrained=model).fit(X[~base][::2], y[~base][::2])
    assert clf.score(X[~base][1::2], y[~base][1::2]) > 0.8


def test_mixed_precision_runs_the_forward_in_16_bits(monkeypatch, blobs):
    X, y = blobs
    seen = []
    from skmeta.meta.algorithms import ProtoNet

    loss = ProtoNet.loss

    def spy(self, net, batch):
        out = loss(self, net, batch)
        seen.append(net.backbone(batch.support_x[0][:2]).dtype)
        return out

    monkeypatch.setattr(ProtoNet, "loss", spy)
    settings = dict(n_way=5, k_shot=2, n_query=2, input_shape=(10,), max_iter=2)
    meta_train(X, y, TrainSettings(precision="bfloat16", **settings))
    assert seen == [torch.bfloat16, torch.bfloat16]
    seen.clear()
    meta_train(X, y, TrainSettings(**settings))
    assert seen == [torch.float32, torch.float32]


def test_float16_skips_a_step_whose_gradients_overflow():
    precision = Precision("float16", CPU)
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = CosineAdam([weight], 0.1, 10)
    scale = precision.scaler.get_scale()
    precision.backward((weight * torch.tensor([1.0, float("inf"), 1.0])).sum())
    precision.unscale(optimizer)
    precision.step(optimizer)
    assert torch.equal(weight.detach(), torch.ones(3))  # skipped
    assert precision.scaler.get_scale() < scale  # and the scale lowered
    optimizer.zero_grad()
    precision.backward(weight.sum())
    precision.unscale(optimizer)
    np.testing.assert_allclose(weight.grad, np.ones(3))  # unscaled
    precision.step(optimizer)
    assert (weight.detach() < 1).all()


def test_bad_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        Precision("float8", CPU)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_a_gpu_is_a_clear_error(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="sees no CUDA GPU.*set_params"):
        FewShotClassifier(device="cuda", max_iter=2).fit(X, y)


def test_mixed_precision_takes_the_reference_paths_in_its_thread_only(images):
    from skmeta.meta import accel

    X, y = images
    settings = TrainSettings(
        n_way=3,
        k_shot=1,
        n_query=1,
        input_shape=(1, 12, 12),
        backbone="conv4_strided",
        method="maml",
        method_params={"inner_steps": 1},
        precision="bfloat16",
        max_iter=2,
    )
    # MAML's fast paths call fused batch-norm kernels autocast does not know
    model = meta_train(X, y, settings)
    assert all(torch.isfinite(t).all() for t in model.state.values())
    with accel.reference_only():
        assert accel.find("meta_gradient", make_algorithm("maml")) is None
    assert accel.find("meta_gradient", make_algorithm("maml")) is not None


@pytest.fixture
def emulated(monkeypatch):
    """A CPU without native 16-bit arithmetic."""
    from skmeta.meta import precision

    monkeypatch.setattr(precision, "native_on_cpu", lambda name: False)


def test_16_bits_on_a_cpu_warn_at_the_users_line(blobs, emulated):
    X, y = blobs
    clf = FewShotClassifier(max_iter=2, n_way=3, precision="bfloat16", device="cpu")
    with pytest.warns(UserWarning, match="precision='bfloat16' on a CPU") as record:
        clf.fit(X, y)
    slow = [w for w in record if "on a CPU" in str(w.message)]
    assert len(slow) == 1 and slow[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float32: no such warning
        Precision("float32", CPU)


def test_no_warning_where_the_cpu_computes_16_bits_natively(blobs, monkeypatch):
    """bfloat16 on AMX ran ProtoNet faster than float32 (4.4 against 8.4 s
    on 84x84 images): no warning there."""
    from skmeta.meta import precision

    assert {type(precision.native_on_cpu(p)) for p in ("bfloat16", "float16")} == {
        bool
    }  # torch's own checks of this CPU
    monkeypatch.setattr(precision, "native_on_cpu", lambda name: True)
    X, y = blobs
    clf = FewShotClassifier(max_iter=2, n_way=3, precision="bfloat16", device="cpu")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        clf.fit(X, y)
    assert not [w for w in record if "on a CPU" in str(w.message)]


def test_the_slow_precision_warning_comes_once_per_run(blobs, emulated):
    X, y = blobs
    settings = dict(n_way=5, k_shot=2, n_query=2, input_shape=(10,), max_iter=2)
    rfs = dict(method="rfs", method_params={"generations": 2}, precision="bfloat16")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        meta_train(X, y, TrainSettings(**settings, **rfs))  # three loops
    assert sum("on a CPU" in str(w.message) for w in record) == 1


@pytest.mark.parametrize("method, warned", [("maml", True), ("protonet", False)])
def test_float16_with_an_inner_loop_warns(blobs, method, warned):
    """float16's loss scale covers the meta-loss only: an inner loop's support
    gradients, unscaled, can underflow (a reviewer's reading of AMP's rule)."""
    X, y = blobs
    settings = dict(n_way=3, k_shot=1, n_query=2, input_shape=(10,), max_iter=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        meta_train(X, y, TrainSettings(method=method, precision="float16", **settings))
    messages = [str(w.message) for w in record]
    assert any("inner loop's gradients" in m for m in messages) == warned
