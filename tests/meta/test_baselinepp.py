"""Baseline++ (skmeta.meta.algorithms.baselinepp): cosine-classifier
pre-training, then cosine prototypes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skmeta import FewShotClassifier, available_methods
from skmeta.meta.algorithms import LabelledBatch, make_algorithm
from skmeta.meta.algorithms.baselinepp import cosine_classifier_logits
from skmeta.meta.model import MetaModel
from skmeta.meta.net import MetaNet
from skmeta.meta.train import TrainSettings, meta_train


def _net(algorithm, dim=4, n_classes=3, seed=0):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(dim, 8), nn.ReLU())
    net = MetaNet(backbone, (dim,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, 8, n_classes).items():
        net.extra[name] = nn.Parameter(value.clone())
    return net


def test_registered_with_cosine_deployment_by_default():
    assert "baseline++" in available_methods()
    algorithm = make_algorithm("baseline++")
    assert algorithm.distance == "cosine" and algorithm.feature_norm is None
    assert not algorithm.episodic


def test_cosine_classifier_logits_by_hand():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(5, 4, generator=g), torch.randn(3, 4, generator=g)
    scale = torch.tensor(2.5)
    expected = torch.empty(5, 3)
    for i in range(5):
        for j in range(3):
            expected[i, j] = 2.5 * (x[i] @ w[j]) / (x[i].norm() * w[j].norm())
    torch.testing.assert_close(cosine_classifier_logits(x, w, scale), expected)


def test_meta_parameters_are_a_bias_free_head_and_a_scale():
    algorithm = make_algorithm("baseline++")
    params = algorithm.meta_parameters(None, 8, 3)
    assert set(params) == {"head_weight", "scale"}
    assert params["head_weight"].shape == (3, 8)
    assert float(params["scale"]) == 10.0


def test_loss_is_cross_entropy_of_scaled_cosines_and_learns_the_scale():
    algorithm = make_algorithm("baseline++")
    net = _net(algorithm)
    g = torch.Generator().manual_seed(1)
    batch = LabelledBatch(torch.randn(6, 4, generator=g), torch.tensor([0, 1, 2] * 2))
    loss, metrics = algorithm.loss(net, batch)
    emb = net(batch.x)
    cos = F.cosine_similarity(emb[:, None], net.extra["head_weight"][None], dim=-1)
    logits = net.extra["scale"] * cos
    torch.testing.assert_close(loss, F.cross_entropy(logits, batch.y))
    expected_accuracy = (logits.argmax(1) == batch.y).float().mean().item()
    assert metrics["accuracy"] == pytest.approx(expected_accuracy)
    loss.backward()
    assert net.extra["scale"].grad is not None and net.extra["scale"].grad != 0


def test_deployment_scores_cosines_scaled_by_the_learnt_scale():
    algorithm = make_algorithm("baseline++")
    net = _net(algorithm).eval()
    with torch.no_grad():
        net.extra["scale"].fill_(3.0)
    g = torch.Generator().manual_seed(2)
    support, queries = torch.randn(6, 4, generator=g), torch.randn(5, 4, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    scores = algorithm.predict(net, algorithm.adapt(net, support, labels, 3), queries)
    with torch.no_grad():
        s, q = net(support).double(), net(queries).double()
    protos = torch.stack([s[labels == c].mean(0) for c in range(3)])
    expected = 3.0 * F.cosine_similarity(q[:, None], protos[None], dim=-1)
    torch.testing.assert_close(scores, expected)


def test_estimator_meta_trains_learns_the_scale_and_round_trips(blobs, tmp_path):
    X, y = blobs
    base, novel = y < 16, np.flatnonzero(y >= 16)
    settings = TrainSettings(
        n_way=5,
        k_shot=2,
        n_query=3,
        input_shape=(10,),
        max_iter=60,
        seed=0,
        method="baseline++",
    )
    model = meta_train(X[base], y[base], settings)
    assert float(model.state["extra.scale"]) != 10.0  # learnt
    assert model.state["extra.head_weight"].shape == (16, model.embedding_dim)
    assert "extra.head_bias" not in model.state
    support, queries = novel[::3], novel[1::3]
    clf = FewShotClassifier(pretrained=model).fit(X[support], y[support])
    assert clf.score(X[queries], y[queries]) > 0.7  # 8-way, chance 0.125
    model.save(tmp_path / "b.safetensors")
    again = FewShotClassifier(pretrained=MetaModel.load(tmp_path / "b.safetensors"))
    again.fit(X[support], y[support])
    np.testing.assert_array_equal(
        again.predict_proba(X[queries]), clf.predict_proba(X[queries])
    )
    fresh = FewShotClassifier(
        method="baseline++", max_iter=30, n_way=5, k_shot=2, n_query=3, random_state=0
    )
    fresh.fit(X[support], y[support])
    assert fresh.meta_model_.method == "baseline++"
