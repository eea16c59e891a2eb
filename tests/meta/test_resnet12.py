import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skmeta import FewShotClassifier
from skmeta.meta import accel
from skmeta.meta.backbones import BUILTIN_BACKBONES, build_backbone, resolve_backbone
from skmeta.meta.resnet12 import ResNet12
from skmeta.meta.train import TrainSettings, meta_train

TINY = {"channels": (4, 6, 8, 8)}


def _images(n_classes=6, per_class=8, shape=(3, 16, 16), seed=0):
    """Noisy fixed patterns, one per class, flat rows."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    patterns = rng.random((n_classes, size))
    y = np.repeat(np.arange(n_classes), per_class)
    X = patterns[y] + 0.2 * rng.standard_normal((y.size, size))
    return X.astype(np.float32), y


def test_registered_and_needs_images():
    assert "resnet12" in BUILTIN_BACKBONES
    assert resolve_backbone("resnet12", (3, 84, 84)) == "resnet12"
    with pytest.raises(ValueError, match="needs images"):
        resolve_backbone("resnet12", (784,))


def test_standard_shape_on_84x84_colour_images():
    net = build_backbone("resnet12", (3, 84, 84), None).eval()
    widths = [block.conv1.out_channels for block in net.blocks]
    assert widths == [64, 160, 320, 640]
    # 12.4M as in RFS: per block 3 convs + 1x1 shortcut (no biases), 4 norms
    assert sum(p.numel() for p in net.parameters()) == 12_424_320
    with torch.inference_mode():
        assert net(torch.rand(2, 3, 84, 84)).shape == (2, 640)


@pytest.mark.parametrize(
    "shape, pooling, dim",
    [
        ((3, 84, 84), "avg", 8),
        ((3, 84, 84), "flatten", 8 * 5 * 5),
        ((1, 28, 28), "avg", 8),
        ((1, 28, 28), "flatten", 8),  # 28 -> 14 -> 7 -> 3 -> 1
        ((1, 16, 16), "avg", 8),
    ],
)
def test_pooling_and_small_images(shape, pooling, dim):
    net = build_backbone("resnet12", shape, {**TINY, "pooling": pooling}).eval()
    assert net(torch.rand(3, *shape)).shape == (3, dim)


def test_clear_errors():
    with pytest.raises(ValueError, match="at least 16x16"):
        ResNet12(1, **TINY)(torch.zeros(2, 1, 12, 12))
    with pytest.raises(ValueError, match="4 positive ints"):
        ResNet12(3, channels=(8, 8))
    with pytest.raises(ValueError, match="pooling"):
        ResNet12(3, pooling="max")
    with pytest.raises(ValueError, match="negative_slope"):
        ResNet12(3, negative_slope=0.0)


def _reference_block(block, x, slope=0.1):
    """The textbook order in NCHW: LeakyReLU before max-pool."""
    out = F.leaky_relu(block.bn1(block.conv1(x)), slope)
    out = F.leaky_relu(block.bn2(block.conv2(out)), slope)
    out = block.bn3(block.conv3(out)) + block.shortcut[1](block.shortcut[0](x))
    return F.max_pool2d(F.leaky_relu(out, slope), 2)


@pytest.mark.parametrize("train", [False, True])
def test_equals_the_textbook_layer_order(train):
    torch.manual_seed(0)
    net = ResNet12(3, **TINY).double().train(train)
    for norm in net.modules():  # non-trivial running statistics for eval
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, 3, 20, 20, dtype=torch.float64, requires_grad=True)
    got = net(x)
    h = x
    for block in net.blocks:
        h = _reference_block(block, h)
    expected = h.mean((2, 3))
    torch.testing.assert_close(got, expected)
    (g1,) = torch.autograd.grad(got.sum(), x)
    (g2,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(g1, g2)


def _settings(**changes):
    base = dict(
        n_way=3,
        k_shot=1,
        n_query=2,
        input_shape=(3, 16, 16),
        backbone="resnet12",
        backbone_params=TINY,
        max_iter=2,
        seed=0,
    )
    return TrainSettings(**{**base, **changes})


def test_transform_and_predictions_equal_the_plain_forward():
    X, y = _images()
    model = meta_train(X, y, _settings())
    net = model.network()
    with torch.inference_mode():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-4, atol=1e-5)
    chunked = model.transform(X, batch_size=7)
    np.testing.assert_allclose(chunked, expected, rtol=1e-4, atol=1e-5)
    # the inference path folds the shortcut's batch norm and stays equal
    fused = accel.find("inference", net)(net)
    assert fused is not net
    clf = FewShotClassifier(pretrained=model).fit(X[::2], y[::2])
    protos = np.stack([expected[::2][y[::2] == c].mean(0) for c in range(6)])
    distances = ((expected[1::2, None, :] - protos[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(clf.predict(X[1::2]), distances.argmin(1))


def test_second_order_maml_meta_trains():
    X, y = _images()
    settings = _settings(
        method="maml",
        method_params={"inner_steps": 1, "first_order": False},
        meta_batch_size=2,
    )
    model = meta_train(X, y, settings)
    assert model.config["task_norm"] and model.config["backbone"] == "resnet12"
    assert all(np.isfinite(r["loss"]) for r in model.history)
    clf = FewShotClassifier(pretrained=model).fit(X[::2], y[::2])
    assert clf.predict_proba(X[1::2]).shape == (24, 6)


def test_estimator_accepts_resnet12(tmp_path):
    X, y = _images()
    clf = FewShotClassifier(
        backbone="resnet12",
        backbone_params=TINY,
        input_shape=(3, 16, 16),
        n_way=3,
        k_shot=1,
        n_query=2,
        max_iter=1,
        random_state=0,
    ).fit(X, y)
    assert clf.meta_model_.embedding_dim == 8
    path = tmp_path / "resnet12.safetensors"
    clf.meta_model_.save(path)
    loaded = type(clf.meta_model_).load(path)
    np.testing.assert_array_equal(loaded.transform(X), clf.meta_model_.transform(X))
