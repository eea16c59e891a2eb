import copy
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.base import clone
from torch import nn

from skmeta.meta.model import MetaModel
from skmeta.meta.train import TrainSettings, meta_train


def test_save_load_roundtrip_gives_identical_embeddings(blob_model, blobs, tmp_path):
    X, _ = blobs
    path = tmp_path / "model.safetensors"
    blob_model.save(path)
    loaded = MetaModel.load(path)
    assert loaded.config == blob_model.config
    assert loaded.history == blob_model.history
    np.testing.assert_array_equal(loaded.transform(X), blob_model.transform(X))


def test_load_refuses_corrupt_and_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 definitely not a model" * 10)
    with pytest.raises(ValueError, match="not a valid skmeta model file"):
        MetaModel.load(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    with pytest.raises(ValueError, match="not a skmeta model"):
        MetaModel.load(foreign)
    pickled = tmp_path / "model.pt"
    torch.save({"a": 1}, pickled)
    with pytest.raises(ValueError, match="not a valid skmeta model file"):
        MetaModel.load(pickled)
    with pytest.raises(FileNotFoundError):
        MetaModel.load(tmp_path / "missing.safetensors")


def test_weights_that_do_not_fit_the_config_are_refused(blob_model):
    state = dict(blob_model.state)
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="do not fit"):
        MetaModel(state, blob_model.config)


class Tiny(nn.Module):
    def __init__(self, width=3):
        super().__init__()
        self.linear = nn.Linear(10, width)

    def forward(self, x):
        return self.linear(x)


def test_custom_backbone_needs_factory_at_load(blobs, tmp_path):
    X, y = blobs
    model = meta_train(
        X,
        y,
        TrainSettings(
            n_way=3,
            k_shot=1,
            n_query=2,
            input_shape=(10,),
            backbone=Tiny,
            backbone_params={"width": 3},
            max_iter=3,
        ),
    )
    assert model.embedding_dim == 3
    path = tmp_path / "custom.safetensors"
    model.save(path)
    with pytest.raises(ValueError, match="custom backbone"):
        MetaModel.load(path)
    loaded = MetaModel.load(path, backbone=Tiny)
    np.testing.assert_array_equal(loaded.transform(X[:5]), model.transform(X[:5]))
    # pickling keeps the factory (by reference, like any pickled class)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(model)).transform(X[:5]), model.transform(X[:5])
    )


def test_clone_and_copies_share_the_weights(blob_model):
    assert clone(blob_model) is blob_model
    assert copy.deepcopy(blob_model) is blob_model
    assert copy.copy(blob_model) is blob_model


def test_immutable(blob_model):
    with pytest.raises(AttributeError, match="immutable"):
        blob_model.history = ()
    with pytest.raises(TypeError):
        blob_model.state["input_mean"] = torch.zeros(1)
    with pytest.raises(TypeError):
        blob_model.config["method"] = "maml"


def test_pickle_roundtrip(blob_model, blobs):
    X, _ = blobs
    restored = pickle.loads(pickle.dumps(blob_model))
    np.testing.assert_array_equal(restored.transform(X), blob_model.transform(X))
    assert all(t.device.type == "cpu" for t in restored.state.values())


def test_transform_chunking_and_readonly_input(blob_model, blobs):
    X, _ = blobs
    full = blob_model.transform(X, batch_size=1000)
    chunked = blob_model.transform(X, batch_size=7)
    np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-5)
    readonly = X.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(
        blob_model.transform(readonly), blob_model.transform(X)
    )


@pytest.mark.parametrize(
    "backbone, input_shape, rows",
    [
        # widest activation 64x28x28 floats: 1.25M / 50,176
        ("conv4", (1, 28, 28), 24),
        ("conv4_strided", (1, 28, 28), 99),  # 64x14x14
        # the 256-wide dense layers: 262,144 / 256 (its widest, 784, is far
        # within the 1.25M budget)
        ("mlp", (784,), 1024),
    ],
)
def test_inference_chunks_keep_activations_cache_sized(backbone, input_shape, rows):
    from skmeta.meta.backbones import build_backbone
    from skmeta.meta.inference import inference_batch_size
    from skmeta.meta.net import MetaNet

    net = MetaNet(
        build_backbone(backbone, input_shape, None),
        input_shape,
        per_feature_scaling=len(input_shape) == 1,
    )
    assert inference_batch_size(net, torch.device("cpu")) == rows
    assert inference_batch_size(net, torch.device("meta")) == 4096  # small nets


def test_gpu_inference_chunks_keep_the_widest_activation_within_a_gib():
    """At 84x84 a Conv4's first activation (64x84x84 floats) took 6.9 GiB at
    the fixed 4,096 rows a GPU chunk had (reviewer)."""
    from skmeta.meta.backbones import build_backbone
    from skmeta.meta.inference import inference_batch_size
    from skmeta.meta.net import MetaNet, widest_activations

    net = MetaNet(build_backbone("conv4", (3, 84, 84), None), (3, 84, 84), False)
    rows = inference_batch_size(net, torch.device("meta"))
    widest = widest_activations(net)[0]
    assert 16 <= rows < 4096 and rows * widest * 4 <= 2**30 < (rows + 1) * widest * 4


def test_repr_names_method_and_backbone(blob_model):
    assert repr(blob_model).startswith("MetaModel(method='protonet', backbone='mlp'")


def test_transform_folds_the_input_scaling_into_the_mlp(blob_model, blobs):
    from skmeta.meta.accel.fusion import inference_network as embedding_network

    X, _ = blobs
    net = blob_model.network()
    assert blob_model.config["per_feature_scaling"]
    assert not torch.allclose(net.input_scale, torch.ones_like(net.input_scale))
    folded = embedding_network(net)
    assert folded is not net and not isinstance(folded, type(net))
    with torch.inference_mode():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(blob_model.transform(X), expected, rtol=1e-4, atol=1e-5)
    # the shared network is untouched
    assert net.backbone.layers[0].weight.data_ptr() != folded[0].weight.data_ptr()


def _strided_conv_model(images, **changes):
    X, y = images
    settings = dict(
        n_way=3,
        k_shot=2,
        n_query=2,
        input_shape=(1, 12, 12),
        max_iter=5,
        seed=0,
        backbone="conv4_strided",
    )
    return meta_train(X, y, TrainSettings(**{**settings, **changes}))


def test_convolutional_embedder_folds_batch_norm(images):
    from skmeta.meta.accel.fusion import inference_network as embedding_network

    model = _strided_conv_model(images)
    net = model.network()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 4 and all(
        not torch.equal(m.running_var, torch.ones_like(m.running_var)) for m in norms
    )
    fused = embedding_network(net)
    assert fused is not net
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    # the shared network keeps its batch norms
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 4
    X = images[0]
    with torch.inference_mode():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-4, atol=1e-5)


def test_task_batch_norm_is_not_folded(images):
    # MAML-style models normalise with each batch's statistics: nothing folds
    from skmeta.meta.accel.fusion import inference_network as embedding_network

    model = _strided_conv_model(images, method="maml", max_iter=2)
    assert model.config["task_norm"]
    assert embedding_network(model.network()) is model.network()


class _PeekingBackbone(nn.Module):
    """Calls one entry of its Sequential on its own: folding would change it."""

    def __init__(self, peek: bool):
        super().__init__()
        self.peek = peek
        self.block = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
        )

    def forward(self, x):
        out = self.block(x)
        if self.peek:
            out = torch.cat([out, self.block[0](x)], 1)
        return out.flatten(1)


@pytest.mark.parametrize("peek", [False, True])
def test_embedder_falls_back_when_folding_changes_the_output(peek):
    from skmeta.meta.accel.fusion import inference_network as embedding_network
    from skmeta.meta.net import MetaNet

    net = MetaNet(_PeekingBackbone(peek), (1, 6, 6), per_feature_scaling=False)
    norm = net.backbone.block[1]
    norm.running_mean.fill_(0.5)
    norm.running_var.fill_(4.0)
    net.eval()
    embedder = embedding_network(net)
    assert (embedder is net) == peek
    x = torch.randn(3, 36)
    with torch.inference_mode():
        torch.testing.assert_close(embedder(x), net(x), rtol=1e-4, atol=1e-5)


def test_per_block_downsampling_saves_and_loads(images, tmp_path):
    """A Conv4 with one downsampling per block meta-trains, and its model file
    (the choices as a JSON list) loads to the same embeddings."""
    mixed = ("maxpool", "strided", "strided", "strided")
    model = _strided_conv_model(
        images, backbone="conv4", backbone_params={"downsample": mixed}
    )
    path = tmp_path / "mixed.safetensors"
    model.save(path)
    loaded = MetaModel.load(path)
    X = images[0]
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


@pytest.mark.parametrize("method, folded", [("protonet", True), ("maml", False)])
def test_fit_and_predict_embed_with_the_folded_network(blobs, method, folded):
    """The methods that classify embeddings adapt and predict with the
    inference copy (batch norms folded: 1.6x faster fit+predict), as
    transform does; the gradient methods with the network they adapt."""
    from skmeta import FewShotClassifier
    from skmeta.meta.train import TrainSettings, meta_train

    X, y = blobs
    settings = TrainSettings(
        n_way=5, k_shot=2, n_query=5, input_shape=(10,), max_iter=2, method=method
    )
    model = meta_train(X[y < 16], y[y < 16], settings)
    fast = model.inference_network("cpu")
    assert fast is not model.network("cpu")
    calls, original = [], fast.forward
    fast.forward = lambda x: calls.append(len(x)) or original(x)  # this copy's
    clf = FewShotClassifier(pretrained=model).fit(X[y >= 16], y[y >= 16])
    clf.predict(X[y >= 16][:7])
    assert calls == ([int((y >= 16).sum()), 7] if folded else [])
