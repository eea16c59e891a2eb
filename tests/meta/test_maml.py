import numpy as np
import pytest
import torch
from maml_helpers import GRADIENT_METHODS, _batch, _tiny_net

from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.model import MetaModel
from skmeta.meta.norm import TaskBatchNorm
from skmeta.meta.train import TrainSettings, meta_train


@pytest.mark.parametrize("method", ["maml", "metasgd", "protomaml"])
def test_second_order_meta_gradient_matches_finite_differences(method):
    algorithm = make_algorithm(method, inner_lr=0.3, inner_steps=2)
    net, batch = _tiny_net(algorithm), _batch()
    params = [p for p in net.parameters()]
    loss, _ = algorithm.loss(net, batch)
    grads = torch.autograd.grad(loss, params)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for p, g in zip(params, grads, strict=True):
        flat, gflat = p.data.view(-1), g.view(-1)
        for i in rng.choice(flat.numel(), size=min(3, flat.numel()), replace=False):
            orig = flat[i].item()
            flat[i] = orig + eps
            plus = algorithm.loss(net, batch)[0].item()
            flat[i] = orig - eps
            minus = algorithm.loss(net, batch)[0].item()
            flat[i] = orig
            assert gflat[i].item() == pytest.approx(
                (plus - minus) / (2 * eps), rel=1e-5, abs=1e-8
            )


def test_first_order_drops_second_derivatives():
    maml = make_algorithm("maml", inner_lr=0.3, inner_steps=2)
    fomaml = make_algorithm("fomaml", inner_lr=0.3, inner_steps=2)
    net, batch = _tiny_net(maml), _batch()
    so = torch.autograd.grad(maml.loss(net, batch)[0], list(net.parameters()))
    fo = torch.autograd.grad(fomaml.loss(net, batch)[0], list(net.parameters()))
    assert not all(torch.allclose(a, b) for a, b in zip(so, fo, strict=True))


@pytest.fixture(scope="module")
def conv_models():
    rng = np.random.default_rng(0)
    patterns = rng.random((12, 144)) > 0.7
    y = np.repeat(np.arange(12), 6)
    X = (patterns[y] + 0.3 * rng.standard_normal((72, 144))).astype(np.float32)
    models = {
        method: meta_train(
            X,
            y,
            TrainSettings(
                n_way=3,
                k_shot=1,
                n_query=2,
                input_shape=(1, 12, 12),
                backbone="conv4_strided",
                method=method,
                max_iter=3,
                seed=0,
                backbone_params={"hidden_channels": 8},
                method_params={"inner_lr": 0.1, "inner_steps": 2},
            ),
        )
        for method in GRADIENT_METHODS
    }
    return X, y, models


@pytest.mark.parametrize("method", GRADIENT_METHODS)
@pytest.mark.parametrize("n_classes", [2, 5, 7])
def test_adapts_to_any_number_of_ways_and_ignores_query_batching(
    conv_models, method, n_classes
):
    X, y, models = conv_models
    model = models[method]
    algorithm, net = model.algorithm(), model.network()
    keep = y < n_classes
    first = np.unique(y[keep], return_index=True)[1]
    state = algorithm.adapt(
        net, torch.tensor(X[keep][first]), torch.tensor(y[keep][first]), n_classes
    )
    queries = torch.tensor(X[keep])
    with torch.inference_mode():
        whole = algorithm.predict(net, state, queries, batch_size=1000)
        chunked = algorithm.predict(net, state, queries, batch_size=3)
    assert whole.shape == (keep.sum(), n_classes)
    # float32 layers round by batch size on some CPUs: float32's tolerance
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-5)
    assert not any(p.requires_grad for p in model.state.values())


def test_meta_sgd_learning_rates_are_saved(conv_models, tmp_path):
    _, _, models = conv_models
    model = models["metasgd"]
    rates = [k for k in model.state if k.startswith("extra.lr__")]
    assert "extra.lr__head_weight" in rates and len(rates) > 10
    model.save(tmp_path / "m.safetensors")
    loaded = MetaModel.load(tmp_path / "m.safetensors")
    for key in rates:
        torch.testing.assert_close(loaded.state[key], model.state[key])
    assert loaded.config["task_norm"] is True
    assert isinstance(loaded.network().backbone.features[1], TaskBatchNorm)


def test_inner_settings_are_checked():
    with pytest.raises(ValueError, match="inner_lr"):
        make_algorithm("maml", inner_lr=0)
    with pytest.raises(ValueError, match="inner_steps"):
        make_algorithm("anil", inner_steps=0)


def test_reptile_gradient_points_from_adapted_to_meta_weights():
    reptile = make_algorithm("reptile", inner_lr=0.2, inner_steps=3)
    net, batch = _tiny_net(reptile), _batch(n_tasks=1)
    loss, _ = reptile.loss(net, batch)
    loss.backward()
    x = torch.cat([batch.support_x[0], batch.query_x[0]])
    y = torch.cat([batch.support_y, batch.query_y])
    params = dict(net.named_parameters())
    state = reptile.adapt_tasks(net, params, x[None], y, 3, create_graph=False)
    for name, adapted in state["weights"].items():
        param = net.get_parameter(name)
        torch.testing.assert_close(param.grad, (param - adapted[0]).detach())
    head = net.extra["head_weight"]
    torch.testing.assert_close(
        head.grad, (head - state["head_weight"][0].mean(0)).detach()
    )
