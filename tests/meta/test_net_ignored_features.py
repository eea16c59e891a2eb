"""Features constant in the meta-training rows are multiplied by 0: the
first-layer weights they meet never got a gradient, so other values at
deployment would pass through random weights."""

import numpy as np
import pytest
import torch

from skmeta.meta import io
from skmeta.meta.backbones import build_backbone
from skmeta.meta.io_checks import check_model_file
from skmeta.meta.model import MetaModel
from skmeta.meta.net import MetaNet
from skmeta.meta.train import TrainSettings, meta_train

CONSTANT = 3  # the column held at 0 in meta-training


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(12), 10)
    X = (rng.normal(size=(120, 6)) + y[:, None] * 0.5).astype(np.float32)
    X[:, CONSTANT] = 0.0
    return X, y


@pytest.fixture(scope="module")
def model(rows):
    X, y = rows
    settings = TrainSettings(
        n_way=4, k_shot=2, n_query=3, input_shape=(6,), max_iter=5, seed=0
    )
    return meta_train(X, y, settings)


def _varied(X, spread=100.0):
    out = X.copy()
    out[:, CONSTANT] = np.random.default_rng(1).normal(size=len(X)) * spread
    return out


def test_a_constant_feature_is_ignored_and_recorded(model):
    assert list(model.config["ignored_features"]) == [CONSTANT]
    assert model.network().ignored_features == (CONSTANT,)


def test_its_values_at_deployment_do_not_change_the_embedding(model, rows):
    X, _ = rows
    # the MLP's inference copy folds the scaling into its first layer
    assert model.inference_network() is not model.network()
    np.testing.assert_array_equal(model.transform(_varied(X)), model.transform(X))
    with torch.no_grad():
        net = model.network()
        direct = net(torch.from_numpy(_varied(X))).numpy()
    np.testing.assert_allclose(direct, model.transform(X), rtol=1e-5, atol=1e-5)


def test_an_older_model_without_the_record_behaves_as_before(model, rows):
    """A config without ``ignored_features`` (models saved before) ignores
    nothing; on rows where the column keeps its meta-training value, both
    give the same embeddings."""
    X, _ = rows
    config = {k: v for k, v in model.config.items() if k != "ignored_features"}
    older = MetaModel(model.state, config)
    assert older.network().ignored_features == ()
    np.testing.assert_allclose(older.transform(X), model.transform(X), atol=1e-6)
    assert not np.allclose(older.transform(_varied(X)), model.transform(X))


def test_save_and_load_keep_the_ignored_features(model, rows, tmp_path):
    X, _ = rows
    model.save(tmp_path / "m.safetensors")
    loaded = MetaModel.load(tmp_path / "m.safetensors")
    assert list(loaded.config["ignored_features"]) == [CONSTANT]
    np.testing.assert_array_equal(loaded.transform(_varied(X)), model.transform(X))


@pytest.mark.parametrize("bad", [[6], [-1], [1, 1], ["a"], 3])
def test_a_file_with_bad_ignored_features_is_refused(model, bad):
    config = io.thawed(model.config)
    config["ignored_features"] = bad
    data = {"format_version": 1, "config": config, "history": []}
    with pytest.raises(ValueError, match="ignored_features"):
        check_model_file("m.safetensors", data, dict(model.state), None, 1)


def test_a_warm_start_keeps_the_models_ignored_features(model, rows):
    """Continued on data where the column varies, the model's scaling (and
    the features it ignores) is kept."""
    X, y = rows
    settings = TrainSettings(
        n_way=4, k_shot=2, n_query=3, input_shape=(6,), max_iter=2, seed=0
    )
    continued = meta_train(_varied(X), y, settings, init=model)
    assert list(continued.config["ignored_features"]) == [CONSTANT]


def test_images_scaled_globally_or_per_channel_ignore_nothing():
    """Image rows have one global mean and scale, or per-channel ones: no
    feature is ignored, even where every pixel is constant."""
    backbone = build_backbone("conv4", (1, 8, 8), {"hidden_channels": 4})
    net = MetaNet(backbone, (1, 8, 8), per_feature_scaling=False)
    net.set_input_statistics(torch.zeros(1), torch.zeros(1))
    assert net.ignored_features == () and float(net.input_keep) == 1.0
    net.set_channel_normalization([0.5], [0.25])
    assert net.ignored_features == () and bool((net.input_keep == 1).all())


def test_set_input_statistics_ignores_only_zero_deviations():
    net = MetaNet(torch.nn.Identity(), (4,), per_feature_scaling=True)
    std = torch.tensor([1.0, 0.0, float("nan"), 2.0])
    net.set_input_statistics(torch.tensor([0.0, 5.0, 0.0, 1.0]), std)
    assert net.ignored_features == (1,)
    x = torch.tensor([[1.0, 7.0, 3.0, 5.0]])
    np.testing.assert_allclose(net.standardize(x).numpy(), [[1.0, 0.0, 3.0, 2.0]])
