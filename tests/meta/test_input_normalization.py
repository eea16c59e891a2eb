import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skmeta.meta.input_normalization import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    default_input_normalization,
    infer_pixel_range,
    resolve_input_normalization,
)
from skmeta.meta.model import MetaModel
from skmeta.meta.net import MetaNet, build_net
from skmeta.meta.train import TrainSettings, meta_train

SHAPE = (3, 4, 5)


def _net(shape=SHAPE, per_feature=False):
    return MetaNet(nn.Flatten(), shape, per_feature_scaling=per_feature)


@pytest.mark.parametrize("pixel_range", [1.0, 255.0])
def test_channel_normalization_standardizes_each_channel(pixel_range):
    net = _net()
    assert net.input_mean.shape == (1,)
    net.set_channel_normalization(IMAGENET_MEAN, IMAGENET_STD, pixel_range, "imagenet")
    assert net.input_mean.shape == net.input_scale.shape == (60,)
    assert net.per_feature_scaling
    x = torch.rand(7, *SHAPE) * pixel_range
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = (x / pixel_range - mean) / std
    torch.testing.assert_close(net.standardize(x.flatten(1)), expected.flatten(1))
    assert net.input_normalization == {
        "kind": "imagenet",
        "mean": pytest.approx(list(IMAGENET_MEAN)),
        "std": pytest.approx(list(IMAGENET_STD)),
        "pixel_range": pixel_range,
    }


def test_channel_normalization_refuses_bad_input():
    with pytest.raises(ValueError, match="needs images"):
        MetaNet(nn.Identity(), (10,), True).set_channel_normalization([0.5], [0.2])
    with pytest.raises(ValueError, match="mean has 2 values"):
        _net().set_channel_normalization([0.5, 0.5], [0.2])
    with pytest.raises(ValueError, match="positive"):
        _net().set_channel_normalization([0.5], [0.0])


def test_pixel_range_inference():
    assert infer_pixel_range(np.zeros((3, 4), dtype=np.uint8)) == 255.0
    assert infer_pixel_range(torch.zeros(3, 4, dtype=torch.uint8)) == 255.0
    assert infer_pixel_range(np.full((3, 4), 0.9, dtype=np.float32)) == 1.0
    assert infer_pixel_range(torch.full((3, 4), 200.0)) == 255.0
    many = np.random.default_rng(0).integers(0, 256, (10_000, 8)).astype(np.float32)
    assert infer_pixel_range(many) == 255.0  # from a sample of 2,048 rows
    assert infer_pixel_range(many / 255) == 1.0


def test_defaults_per_backbone():
    rows = np.zeros((5, 60), dtype=np.uint8)
    norm = default_input_normalization(
        "torchvision:resnet18", {"weights": "/w.pth"}, SHAPE, rows
    )
    assert norm == {
        "kind": "imagenet",
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "pixel_range": 255.0,
    }
    assert default_input_normalization("torchvision:resnet18", {}, SHAPE) is None
    assert default_input_normalization("conv4", None, SHAPE) is None
    grey = default_input_normalization(
        "torchvision:resnet18", {"weights": "DEFAULT"}, (1, 4, 4)
    )
    assert grey["mean"] == [pytest.approx(0.449)]
    assert grey["std"] == [pytest.approx(0.226)]


def test_user_overrides():
    params = {"weights": "DEFAULT", "input_normalization": "data"}
    assert default_input_normalization("torchvision:resnet18", params, SHAPE) is None
    custom = {"mean": [0.5], "std": [0.25], "pixel_range": 255}
    norm = default_input_normalization("conv4", {"input_normalization": custom}, SHAPE)
    assert norm == {
        "kind": "custom",
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "pixel_range": 255.0,
    }
    assert (
        default_input_normalization(
            "conv4", {"input_normalization": "imagenet"}, SHAPE
        )["kind"]
        == "imagenet"
    )
    with pytest.raises(ValueError, match="input_shape=\\(C, H, W\\)"):
        default_input_normalization("mlp", {"input_normalization": "imagenet"}, (6,))
    with pytest.raises(ValueError, match="'mean' and 'std'"):
        resolve_input_normalization({"mean": [0.5]}, 3)
    with pytest.raises(ValueError, match="keys among"):
        resolve_input_normalization({"average": [0.5]}, 3)
    with pytest.raises(ValueError, match="std has 2 values"):
        resolve_input_normalization({"mean": [0.5], "std": [0.1, 0.2]}, 3)


def test_a_normalized_model_saves_and_loads_it(tmp_path):
    model = MetaModel.from_module(
        nn.Flatten(), SHAPE, input_normalization="imagenet", pixel_range=255.0
    )
    config = model.config
    assert config["per_feature_scaling"] and config["input_normalization"]["kind"] == (
        "imagenet"
    )
    assert model.state["input_mean"].shape == (60,)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = MetaModel.load(path, backbone=nn.Flatten())
    assert loaded.config["input_normalization"] == config["input_normalization"]
    thawed = loaded.thawed_config()["input_normalization"]
    assert loaded.network().input_normalization == thawed
    rows = np.random.default_rng(0).integers(0, 256, (4, 60)).astype(np.float32)
    expected = (rows.reshape(4, 3, 20) / 255 - np.reshape(IMAGENET_MEAN, (3, 1))) / (
        np.reshape(IMAGENET_STD, (3, 1))
    )
    np.testing.assert_allclose(
        loaded.transform(rows), expected.reshape(4, 60), rtol=1e-5, atol=1e-6
    )


def test_files_with_one_scale_for_images_still_load(images, tmp_path):
    X, y = images
    settings = TrainSettings(
        n_way=3,
        k_shot=2,
        n_query=2,
        input_shape=(1, 12, 12),
        backbone="conv4_strided",
        max_iter=2,
    )
    model = meta_train(X, y, settings)
    assert model.state["input_scale"].shape == (1,)
    config = model.thawed_config()
    config.pop("input_normalization", None)  # as files written before it
    net = build_net(config)
    assert net.input_mean.shape == (1,) and net.input_normalization is None
    path = tmp_path / "old.safetensors"
    model.save(path)
    np.testing.assert_array_equal(MetaModel.load(path).transform(X), model.transform(X))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_meta_training_normalises_for_pretrained_weights_end_to_end(tmp_path, dtype):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (16, 3 * 32 * 32)).astype(np.uint8)
    X = pixels.astype(dtype)  # uint8 as given, or floats of 0-255
    y = np.repeat(np.arange(4), 4)
    settings = dict(n_way=2, k_shot=1, n_query=1, input_shape=(3, 32, 32), max_iter=1)
    model = meta_train(
        X,
        y,
        TrainSettings(
            backbone="torchvision:resnet18",
            backbone_params={"weights": str(weights), "trainable_blocks": 1},
            **settings,
        ),
    )
    assert model.config["input_normalization"]["pixel_range"] == 255.0
    assert model.config["per_feature_scaling"]
    x = torch.from_numpy(pixels.astype(np.float32))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = (x.view(-1, 3, 32, 32) / 255 - mean) / std
    torch.testing.assert_close(model.network().standardize(x), expected.flatten(1))
    model.save(tmp_path / "m.safetensors")
    weights.unlink()  # the file carries the weights
    loaded = MetaModel.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(
        loaded.transform(x.numpy()), model.transform(x.numpy())
    )
    plain = meta_train(X, y, TrainSettings(backbone="conv4_strided", **settings))
    assert plain.config["per_feature_scaling"] is False
    assert plain.config["input_normalization"] is None


def test_a_wholly_frozen_network_is_refused():
    X = np.random.default_rng(0).random((16, 256)).astype(np.float32)
    y = np.repeat(np.arange(4), 4)
    settings = TrainSettings(
        n_way=2,
        k_shot=1,
        n_query=1,
        input_shape=(1, 16, 16),
        backbone_params={"trainable_blocks": 0},
        max_iter=1,
    )
    with pytest.raises(ValueError, match="Nothing to meta-train"):
        meta_train(X, y, settings)


def _pixel_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if "pixels" in str(w.message)]


def test_rows_on_another_pixel_range_than_meta_training_warn():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 6)
    X8 = rng.integers(0, 256, size=(y.size, 256), dtype=np.uint8)
    settings = TrainSettings(
        n_way=3, k_shot=1, n_query=2, input_shape=(1, 16, 16), max_iter=2
    )
    model = meta_train(X8, y, settings)
    assert model.config["provenance"]["data"]["pixel_range"] == 255.0
    assert _pixel_warnings(lambda: model.transform(X8)) == []
    floats = X8.astype(np.float32) / 255
    (message,) = _pixel_warnings(lambda: model.transform(floats))
    assert "[0, 1] pixels" in message and "multiply them by 255" in message
    # standardised rows (negative values) cannot be placed: not judged
    standard = (floats - floats.mean()) / floats.std()
    assert _pixel_warnings(lambda: model.transform(standard)) == []
    # standardised rows (values above 1.5 beside negative ones) given to a
    # model of [0, 1] pixels: not judged, not taken for 0-255 pixels
    unit = meta_train(floats, y, settings)
    assert unit.config["provenance"]["data"]["pixel_range"] == 1.0
    assert standard.max() > 1.5 and standard.min() < 0
    assert _pixel_warnings(lambda: unit.transform(standard)) == []


def test_a_wrapped_imagenet_module_warns_for_uint8_rows_unless_told_their_range():
    body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    X8 = np.full((2, 48), 200, dtype=np.uint8)
    wrapped = MetaModel.from_module(body, (3, 4, 4), input_normalization="imagenet")
    (message,) = _pixel_warnings(lambda: wrapped.transform(X8))
    assert "0-255 pixels" in message and "pixel_range" in message
    told = MetaModel.from_module(
        body, (3, 4, 4), input_normalization="imagenet", pixel_range=255.0
    )
    assert _pixel_warnings(lambda: told.transform(X8)) == []
    as_given = MetaModel.from_module(body, (3, 4, 4))  # rows reach it as they are
    assert _pixel_warnings(lambda: as_given.transform(X8)) == []
