"""Feature normalisation of prototype methods: "l2" and SimpleShot's "cl2n"
(skmeta.meta.algorithms.feature_norm), and the base-class mean meta-training
stores with the model."""

import numpy as np
import pytest
import torch
from torch import nn

from skmeta import FewShotClassifier
from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.algorithms.feature_norm import (
    BASE_MEAN,
    base_class_mean,
    normalize_features,
)
from skmeta.meta.algorithms.protonet import prototypes
from skmeta.meta.batches import split_classes
from skmeta.meta.model import MetaModel
from skmeta.meta.net import MetaNet
from skmeta.meta.rows import Rows
from skmeta.meta.train import TrainSettings, meta_train


def _identity_net(dim=3, base_mean=None):
    """A net whose embedding is the row itself (no scaling)."""
    net = MetaNet(nn.Flatten(), (dim,), per_feature_scaling=False)
    if base_mean is not None:
        net.extra[BASE_MEAN] = nn.Parameter(base_mean, requires_grad=False)
    return net.eval()


def _settings(**changes):
    base = dict(
        n_way=5,
        k_shot=2,
        n_query=3,
        input_shape=(10,),
        max_iter=20,
        seed=3,
        method="protonet",
    )
    return TrainSettings(**{**base, **changes})


def test_normalize_features_by_hand():
    x = torch.tensor([[3.0, 4.0, 0.0], [1.0, 1.0, 1.0]])
    mean = torch.tensor([1.0, 0.0, 1.0])
    assert normalize_features(x, None) is x
    expected_l2 = torch.stack([x[0] / 5.0, x[1] / 3**0.5])
    torch.testing.assert_close(normalize_features(x, "l2"), expected_l2)
    centred = torch.tensor([[2.0, 4.0, -1.0], [0.0, 1.0, 0.0]])
    expected = torch.stack([centred[0] / 21**0.5, centred[1]])
    torch.testing.assert_close(normalize_features(x, "cl2n", mean), expected)
    with pytest.raises(ValueError, match="needs base_mean"):
        normalize_features(x, "cl2n")


def test_bad_feature_norm_names_the_setting():
    with pytest.raises(ValueError, match="feature_norm must be one of"):
        make_algorithm("protonet", feature_norm="cl2")
    with pytest.raises(ValueError, match="feature_norm"):
        FewShotClassifier(method_params={"feature_norm": "L2"}).fit(
            np.zeros((20, 2), np.float32), np.repeat(np.arange(4), 5)
        )


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_protonet_cl2n_adapt_and_predict_by_hand(distance):
    g = torch.Generator().manual_seed(0)
    support = torch.randn(6, 3, generator=g) + 2.0
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    queries = torch.randn(4, 3, generator=g) + 2.0
    mean = torch.tensor([2.0, 1.5, 2.5])
    net = _identity_net(base_mean=mean)
    if distance == "cosine":
        net.extra["scale"] = nn.Parameter(torch.tensor(7.0), requires_grad=False)
    algorithm = make_algorithm("protonet", distance=distance, feature_norm="cl2n")
    state = algorithm.adapt(net, support, labels, 3)
    s = (support - mean) / (support - mean).norm(dim=1, keepdim=True)
    protos = torch.stack([s[labels == c].mean(0) for c in range(3)])
    torch.testing.assert_close(state["prototypes"], protos)
    q = ((queries - mean) / (queries - mean).norm(dim=1, keepdim=True)).double()
    protos = protos.double()
    if distance == "euclidean":
        expected = -(torch.cdist(q, protos) ** 2)
    else:
        cos = q @ (protos / protos.norm(dim=1, keepdim=True)).T
        expected = 7.0 * cos
    scores = algorithm.predict(net, state, queries)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)  # float32 rows
    # centring changes the scores: the mean is not ignored
    plain = make_algorithm("protonet", distance=distance, feature_norm="l2")
    l2_scores = plain.predict(net, plain.adapt(net, support, labels, 3), queries)
    assert not torch.allclose(l2_scores, expected)


def test_cl2n_without_a_stored_mean_is_a_clear_error():
    algorithm = make_algorithm("protonet", feature_norm="cl2n")
    with pytest.raises(ValueError, match="mean embedding of the base classes"):
        algorithm.adapt(_identity_net(), torch.zeros(2, 3), torch.tensor([0, 1]), 2)


def test_base_class_mean_samples_rows_through_rows_and_restores_mode(tmp_path):
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    memmap = np.load(tmp_path / "x.npy", mmap_mode="r")
    net = MetaNet(
        nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), (3,), False
    ).train()
    rows = Rows(memmap, (3,), torch.device("cpu"))
    numbers = np.arange(5, 45)
    mean = base_class_mean(net, rows, numbers, np.random.default_rng(1), 16, 5)
    assert net.training  # its mode is restored
    chosen = np.sort(np.random.default_rng(1).choice(numbers, 16, replace=False))
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(X[chosen])).mean(0)
    torch.testing.assert_close(mean, expected)
    every = base_class_mean(net, rows, numbers, np.random.default_rng(1), 100)
    with torch.no_grad():
        torch.testing.assert_close(every, net(torch.from_numpy(X[5:45])).mean(0))


def test_meta_training_stores_the_mean_of_the_embedded_training_rows(blobs):
    X, y = blobs
    model = meta_train(X, y, _settings())
    stored = model.state["extra." + BASE_MEAN]
    assert stored.shape == (model.embedding_dim,)
    # every row (fewer than the sample size), embedded by the deployed network
    expected = torch.from_numpy(model.transform(X).astype(np.float64)).mean(0)
    torch.testing.assert_close(stored.double(), expected, rtol=1e-5, atol=1e-6)
    assert stored.abs().sum() > 0


def test_the_mean_leaves_out_the_held_out_validation_classes(blobs):
    X, y = blobs
    settings = _settings(early_stopping=True, validation_fraction=0.25)
    model = meta_train(X, y, settings)
    embedded = model.transform(X).astype(np.float64)
    stored = model.state["extra." + BASE_MEAN].double().numpy()
    # the same class split as meta-training's: its generator, after the draw
    # of torch's seed (meta_train)
    rng = np.random.default_rng(settings.seed)
    rng.integers(2**63 - 1)
    train_rows, _ = split_classes(y, 0.25, rng)
    assert np.unique(y[train_rows]).size == model.config["training"]["n_classes"]
    # float32 sums in another order: a tolerance for entries near zero too
    np.testing.assert_allclose(
        stored, embedded[train_rows].mean(0), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(stored, embedded.mean(0), rtol=1e-3)


def test_pretrained_model_takes_cl2n_anew_and_scores_as_by_hand(blobs, tmp_path):
    X, y = blobs
    base = y < 16
    model = meta_train(X[base], y[base], _settings(method="pretrain"))
    assert model.config["method_params"]["feature_norm"] is None
    model.save(tmp_path / "m.safetensors")
    loaded = MetaModel.load(tmp_path / "m.safetensors")
    torch.testing.assert_close(
        loaded.state["extra." + BASE_MEAN], model.state["extra." + BASE_MEAN]
    )
    novel = np.flatnonzero(y >= 16)
    support, queries = novel[::3], novel[1::3]
    clf = FewShotClassifier(pretrained=loaded, method_params={"feature_norm": "cl2n"})
    clf.fit(X[support], y[support])
    mean = loaded.state["extra." + BASE_MEAN].double()
    s = torch.from_numpy(loaded.transform(X[support])).double() - mean
    q = torch.from_numpy(loaded.transform(X[queries])).double() - mean
    s, q = s / s.norm(dim=1, keepdim=True), q / q.norm(dim=1, keepdim=True)
    codes = torch.from_numpy(np.searchsorted(clf.classes_, y[support]))
    expected = -(torch.cdist(q, prototypes(s, codes, 8)) ** 2)
    np.testing.assert_allclose(
        clf.decision_function(X[queries]), expected.numpy(), rtol=1e-4, atol=1e-5
    )
    assert clf.score(X[queries], y[queries]) > 0.5


def test_models_saved_without_the_mean_still_load_and_refuse_cl2n(blobs, tmp_path):
    X, y = blobs
    model = meta_train(X, y, _settings())
    old_state = {k: v for k, v in model.state.items() if BASE_MEAN not in k}
    old_config = model.thawed_config()
    old_config["method_params"] = {"distance": "euclidean"}  # as files had it
    MetaModel(old_state, old_config, model.history).save(tmp_path / "old.safetensors")
    old = MetaModel.load(tmp_path / "old.safetensors")
    plain = FewShotClassifier(pretrained=old).fit(X[:60], y[:60])
    assert plain.score(X[:60], y[:60]) > 0.5
    l2 = FewShotClassifier(pretrained=old, method_params={"feature_norm": "l2"})
    l2.fit(X[:60], y[:60])
    with pytest.raises(ValueError, match="feature_norm='l2', or meta-train"):
        FewShotClassifier(pretrained=old, method_params={"feature_norm": "cl2n"}).fit(
            X[:60], y[:60]
        )


def test_methods_without_prototypes_keep_no_mean(blobs):
    X, y = blobs
    model = meta_train(X, y, _settings(method="maml", max_iter=2))
    assert not any(BASE_MEAN in k for k in model.state)


def test_the_base_class_mean_pass_shows_progress_when_verbose(monkeypatch):
    """It ran silently after the bar said done: 5 minutes for a ResNet-12 on
    84 px photos on 2 CPU cores (a reviewer); it now embeds at most 1,024
    rows, behind a bar of its own (shown once it has taken a second)."""
    from skmeta.meta.algorithms import feature_norm
    from skmeta.meta.train import TrainSettings, meta_train

    assert feature_norm.BASE_MEAN_ROWS == 1024
    bars, original = [], feature_norm.tqdm

    def recorded(*args, **kwargs):
        bars.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(feature_norm, "tqdm", recorded)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6)).astype(np.float32)
    y = np.repeat(np.arange(6), 10)
    settings = TrainSettings(
        n_way=3, k_shot=2, n_query=2, input_shape=(6,), max_iter=2, verbose=1
    )
    meta_train(X, y, settings)
    assert [(b["desc"], b["disable"]) for b in bars] == [("base-class mean", False)]
