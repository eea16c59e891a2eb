import urllib.error

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.meta.backbones import build_backbone, resolve_backbone
from skmeta.meta.model import MetaModel
from skmeta.meta.train import TrainSettings, meta_train
from skmeta.meta.vision import TorchvisionBackbone

torchvision = pytest.importorskip("torchvision")  # the vision extra

SHAPE = (3, 32, 32)


def _resnet18_state(seed=0) -> dict:
    torch.manual_seed(seed)
    return torchvision.models.resnet18().state_dict()


def _same_body(module: TorchvisionBackbone, state: dict) -> bool:
    own = module.model.state_dict()
    body = [k for k in state if not k.startswith("fc.")]
    return set(own) == set(body) and all(torch.equal(own[k], state[k]) for k in body)


def test_head_removed_features_out():
    net = build_backbone("torchvision:resnet18", SHAPE, None).eval()
    assert isinstance(net.model.fc, nn.Identity)
    with torch.inference_mode():
        assert net(torch.rand(2, *SHAPE)).shape == (2, 512)


def test_grey_images_are_repeated_to_three_channels():
    net = build_backbone("torchvision:resnet18", (1, 32, 32), None).eval()
    grey = torch.rand(2, 1, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(net(grey), net.model(grey.repeat(1, 3, 1, 1)))


@pytest.mark.parametrize(
    "name, dim",
    [
        ("squeezenet1_1", 512),  # its head is a 1x1 convolution
        ("mobilenet_v3_small", 1024),  # the last linear layer of `classifier`
        ("shufflenet_v2_x0_5", 1024),
        ("googlenet", 1024),  # side heads dropped; a plain tensor in training
    ],
)
def test_other_models_give_flat_features_in_train_and_eval(name, dim):
    net = build_backbone(f"torchvision:{name}", (3, 64, 64), None)
    x = torch.rand(2, 3, 64, 64)
    assert net.train()(x).shape == (2, dim)
    with torch.inference_mode():
        assert net.eval()(x).shape == (2, dim)


def test_unknown_names_and_shapes_are_refused_clearly():
    with pytest.raises(ValueError, match="Did you mean resnet18"):
        resolve_backbone("torchvision:resnet81", SHAPE)
    with pytest.raises(ValueError, match="needs images"):
        resolve_backbone("torchvision:resnet18", (10,))
    with pytest.raises(ValueError, match=r"input_shape=\(3, H, W\)"):
        build_backbone("torchvision:resnet18", (2, 32, 32), None)


@pytest.mark.parametrize("kind", ["torch", "safetensors", "headless", "checkpoint"])
def test_weights_from_a_local_file(tmp_path, kind):
    state = _resnet18_state()
    path = tmp_path / ("w.safetensors" if kind == "safetensors" else "w.pth")
    if kind == "safetensors":
        save_file(state, str(path))
    elif kind == "headless":
        torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    elif kind == "checkpoint":
        torch.save({"state_dict": state, "epoch": 3}, path)
    else:
        torch.save(state, path)
    net = build_backbone("torchvision:resnet18", SHAPE, {"weights": str(path)})
    assert _same_body(net, state)


def test_bad_weight_files_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        build_backbone("torchvision:resnet18", SHAPE, {"weights": "/no/such.pth"})
    wrong = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), wrong)
    with pytest.raises(ValueError, match="does not fit torchvision's resnet18"):
        build_backbone("torchvision:resnet18", SHAPE, {"weights": str(wrong)})
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="not a state dict saved with torch.save"):
        build_backbone("torchvision:resnet18", SHAPE, {"weights": str(junk)})


def test_weights_name_goes_to_torchvision(monkeypatch):
    state, urls = _resnet18_state(seed=1), []

    def fake_download(url, *args, **kwargs):
        urls.append(url)
        return state

    monkeypatch.setattr(
        torchvision.models._api, "load_state_dict_from_url", fake_download
    )
    net = build_backbone("torchvision:resnet18", SHAPE, {"weights": "IMAGENET1K_V1"})
    assert urls == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url]
    assert _same_body(net, state)
    build_backbone("torchvision:resnet18", SHAPE, {"weights": "DEFAULT"})
    assert len(urls) == 2
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        build_backbone("torchvision:resnet18", SHAPE, {"weights": "IMAGENET9K"})


def test_offline_download_says_to_pass_a_file(monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(OSError, match=r"pass its path.*resnet18-f37072fd\.pth"):
        build_backbone("torchvision:resnet18", SHAPE, {"weights": "IMAGENET1K_V1"})


def _rows(n_classes=4, per_class=4, shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    patterns = rng.random((n_classes, int(np.prod(shape))))
    X = patterns[y] + 0.1 * rng.random((y.size, patterns.shape[1]))
    return X.astype(np.float32), y


def test_meta_trained_model_reloads_without_the_weights_file(tmp_path):
    weights = tmp_path / "resnet18.pth"
    torch.save(_resnet18_state(), weights)
    X, y = _rows()
    settings = TrainSettings(
        n_way=2,
        k_shot=1,
        n_query=1,
        input_shape=SHAPE,
        backbone="torchvision:resnet18",
        backbone_params={"weights": str(weights), "trainable_blocks": 1},
        max_iter=1,
        seed=0,
    )
    model = meta_train(X, y, settings)
    assert model.config["backbone"] == "torchvision:resnet18"
    net = model.network()
    with torch.inference_mode():
        expected = net(torch.from_numpy(X)).numpy()
    # the inference path (batch norms folded) equals the plain forward
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-4, atol=1e-4)
    path = tmp_path / "model.safetensors"
    model.save(path)
    weights.unlink()  # the model file holds the weights
    loaded = MetaModel.load(path)
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    clf = FewShotClassifier(pretrained=loaded).fit(X[::2], y[::2])
    protos = np.stack([expected[::2][y[::2] == c].mean(0) for c in range(4)])
    nearest = ((expected[1::2, None] - protos[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(clf.predict(X[1::2]), nearest)


def test_estimators_accept_torchvision_names():
    X, y = _rows()
    extractor = MetaFeatureExtractor(
        backbone="torchvision:resnet18",
        input_shape=SHAPE,
        n_way=2,
        k_shot=1,
        n_query=1,
        max_iter=1,
        random_state=0,
    ).fit(X, y)
    assert extractor.transform(X).shape == (16, 512)
    with pytest.raises(ValueError, match="torchvision has no classification model"):
        FewShotClassifier(
            backbone="torchvision:nope", input_shape=SHAPE, max_iter=1
        ).fit(X, y)
    with pytest.raises(ValueError, match="'torchvision:<model name>'"):
        FewShotClassifier(backbone="torchvision:", input_shape=SHAPE).fit(X, y)


def test_rebuilding_never_reads_weights_and_keeps_their_architecture(tmp_path):
    """GoogLeNet's ImageNet weights come with an input transform; a model
    rebuilt for a saved state dict has it too, without the file."""
    path = tmp_path / "googlenet.pth"
    torch.save(torchvision.models.googlenet(init_weights=True).state_dict(), path)
    params = {"weights": str(path)}
    loaded = build_backbone("torchvision:googlenet", SHAPE, params)
    path.unlink()
    rebuilt = build_backbone("torchvision:googlenet", SHAPE, params, load_weights=False)
    assert loaded.model.transform_input and rebuilt.model.transform_input
    assert loaded.model.aux1 is None and rebuilt.model.aux1 is None
    assert loaded.state_dict().keys() == rebuilt.state_dict().keys()
    rebuilt.load_state_dict(loaded.state_dict())
    x = torch.rand(2, *SHAPE)
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt.eval()(x), loaded.eval()(x))
