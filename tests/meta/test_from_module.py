import pickle

import numpy as np
import pytest
import torch
from torch import nn

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.meta.input_normalization import IMAGENET_MEAN, IMAGENET_STD
from skmeta.meta.model import MetaModel

SHAPE = (3, 8, 8)


class SmallConv(nn.Module):
    def __init__(self, width=6):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x):
        return self.pool(torch.relu(self.norm(self.conv(x))))  # (batch, 6, 2, 2)


def _module(seed=0):
    torch.manual_seed(seed)
    module = SmallConv()
    module.norm.running_mean.uniform_(-0.2, 0.2)
    module.norm.running_var.uniform_(0.5, 1.5)
    return module.eval()


def _blobs(n_classes=4, per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    centres = rng.random((n_classes, int(np.prod(SHAPE))))
    X = centres[y] + 0.05 * rng.standard_normal((y.size, centres.shape[1]))
    return X.astype(np.float32), y


def _forward(module, X, shape=SHAPE):
    with torch.inference_mode():
        return module(torch.from_numpy(X).view(-1, *shape)).flatten(1).numpy()


def test_extractor_and_classifier_use_the_module_as_it_is():
    module = _module()
    model = MetaModel.from_module(module, SHAPE)
    assert model.embedding_dim == 24 and model.method == "protonet"
    assert model.input_shape == SHAPE
    assert MetaModel.from_module(module, np.array(SHAPE)).input_shape == SHAPE
    X, y = _blobs()
    expected = _forward(module, X)
    features = MetaFeatureExtractor(pretrained=model).fit(X).transform(X)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    clf = FewShotClassifier(pretrained=model).fit(X[::2], y[::2])
    protos = np.stack([expected[::2][y[::2] == c].mean(0) for c in range(4)])
    nearest = ((expected[1::2, None] - protos[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(clf.predict(X[1::2]), nearest)
    assert clf.score(X[1::2], y[1::2]) == 1.0


def test_the_model_is_independent_of_the_module():
    module = _module()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    model = MetaModel.from_module(module, SHAPE, method="maml")
    X, y = _blobs()
    FewShotClassifier(pretrained=model).fit(X, y)
    for key, value in module.state_dict().items():  # the module is untouched
        assert torch.equal(value, before[key]), key
    assert type(module.norm) is nn.BatchNorm2d  # no task batch norm swapped in
    embedded = model.transform(X)
    with torch.no_grad():
        module.conv.weight.mul_(2)  # later changes do not reach the model
    np.testing.assert_array_equal(model.transform(X), embedded)


def test_config_records_how_the_model_was_made():
    module = _module()
    module.conv.requires_grad_(False)
    config = MetaModel.from_module(module, SHAPE, method="maml").config
    assert config["from_module"] and config["training"]["from_module"]
    assert config["backbone"] == "custom"
    assert config["backbone_name"].endswith("test_from_module.SmallConv")
    assert config["task_norm"] and config["input_normalization"] is None
    assert list(config["frozen_parameters"]) == [
        "backbone.conv.bias",
        "backbone.conv.weight",
    ]


def test_frozen_parameters_are_not_adapted():
    module = _module()
    module.conv.requires_grad_(False)
    model = MetaModel.from_module(
        module, SHAPE, method="maml", method_params={"inner_steps": 2}
    )
    X, y = _blobs()
    state = model.adapt(model.algorithm(), X, y, 4)
    assert set(state["weights"]) == {"backbone.norm.weight", "backbone.norm.bias"}


def test_save_and_load_need_a_module_of_the_same_architecture(tmp_path):
    model = MetaModel.from_module(_module(), SHAPE)
    X, _ = _blobs()
    path = tmp_path / "wrapped.safetensors"
    model.save(path)
    with pytest.raises(ValueError, match="module of the same architecture"):
        MetaModel.load(path)
    other = _module(seed=5)  # other weights: replaced by the file's
    for backbone in (other, SmallConv):
        loaded = MetaModel.load(path, backbone=backbone)
        np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
        assert loaded.config == model.config
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.transform(X), model.transform(X))
    with pytest.raises(ValueError, match="do not fit"):
        MetaModel.load(path, backbone=SmallConv(width=3))


def test_pretrained_torchvision_resnet_with_imagenet_normalization():
    torchvision = pytest.importorskip("torchvision")  # the vision extra
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18()
    resnet.fc = nn.Identity()
    resnet.eval()
    shape = (3, 32, 32)
    model = MetaModel.from_module(
        resnet, shape, input_normalization="imagenet", pixel_range=255.0
    )
    assert model.embedding_dim == 512
    X = np.random.default_rng(0).integers(0, 256, (6, 3 * 32 * 32)).astype(np.float32)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        x = torch.from_numpy(X).view(-1, *shape)
        expected = resnet((x / 255 - mean) / std).numpy()
    # the inference path folds resnet's batch norms where it can
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-4, atol=1e-4)


def test_bad_modules_and_settings_are_refused_clearly():
    with pytest.raises(TypeError, match="torch.nn.Module instance"):
        MetaModel.from_module(SmallConv, SHAPE)
    with pytest.raises(ValueError, match="does not embed rows"):
        MetaModel.from_module(_module(), (1, 8, 8))
    with pytest.raises(ValueError, match="positive ints"):
        MetaModel.from_module(_module(), (3, 0, 8))
    with pytest.raises(ValueError, match="needs input_shape"):
        MetaModel.from_module(nn.Linear(4, 2), (4,), input_normalization="imagenet")
    with pytest.raises(ValueError, match="method="):
        MetaModel.from_module(_module(), SHAPE, method="nope")


def test_reloading_with_a_module_of_another_width_blames_the_module(tmp_path):
    """A module changed before saving (its head replaced), rebuilt from its
    bare class, was reported as an invalid file (a reviewer)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.Linear(32, 10))
    net[2] = nn.Identity()  # the head taken off: embeds in 32
    path = tmp_path / "headless.safetensors"
    MetaModel.from_module(net, SHAPE).save(path)

    def bare():
        return nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.Linear(32, 10))

    with pytest.raises(ValueError, match="embeds in 10 features, not the 32"):
        MetaModel.load(path, backbone=bare)
    assert MetaModel.load(path, backbone=net).embedding_dim == 32
