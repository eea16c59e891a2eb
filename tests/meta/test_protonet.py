"""Prototypical Networks (skmeta.meta.algorithms.protonet)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.algorithms.protonet import prototype_logits, prototypes
from skmeta.meta.batches import ValidationEpisodes
from skmeta.meta.callbacks import validation_metrics
from skmeta.meta.net import MetaNet
from skmeta.meta.rows import Rows


def _net(algorithm, dim=4, seed=0):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(dim, 8), nn.BatchNorm1d(8), nn.ReLU())
    net = MetaNet(backbone, (dim,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, 8, 3).items():
        net.extra[name] = nn.Parameter(value.clone())
    return net


def _batch(n_tasks=2, n_way=3, k_shot=2, n_query=4, dim=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.randn(n_tasks, n_way * k_shot, dim, generator=g),
        torch.arange(n_way).repeat_interleave(k_shot),
        torch.randn(n_tasks, n_way * n_query, dim, generator=g),
        torch.arange(n_way).repeat_interleave(n_query),
        n_way,
    )


def test_prototypes_are_class_means_and_logits_minus_squared_distances():
    emb = torch.randn(7, 5, dtype=torch.float64)
    labels = torch.tensor([2, 0, 1, 0, 2, 2, 1])
    protos = prototypes(emb, labels, 3)
    for c in range(3):
        torch.testing.assert_close(protos[c], emb[labels == c].mean(0))
    queries = torch.randn(4, 5, dtype=torch.float64)
    logits = prototype_logits(queries, protos, "euclidean")
    torch.testing.assert_close(logits, -(torch.cdist(queries, protos) ** 2))
    scale = torch.tensor(3.0, dtype=torch.float64)
    cosine = prototype_logits(queries, protos, "cosine", scale)
    torch.testing.assert_close(
        cosine, 3 * F.cosine_similarity(queries[:, None], protos[None], dim=-1)
    )


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_training_loss_embeds_support_and_query_in_two_passes(distance):
    algorithm = make_algorithm("protonet", distance=distance)
    net = _net(algorithm).train()
    batch = _batch()
    loss, metrics = algorithm.loss(net, batch)
    # by hand: each set through the network on its own (its own batch norm
    # statistics in training mode), prototypes of the support, queries scored
    support = net(batch.support_x.reshape(-1, 4)).view(2, 6, -1)
    query = net(batch.query_x.reshape(-1, 4)).view(2, 12, -1)
    scale = net.extra["scale"] if distance == "cosine" else None
    logits = torch.stack(
        [
            prototype_logits(
                query[t], prototypes(support[t], batch.support_y, 3), distance, scale
            )
            for t in range(2)
        ]
    )
    targets = batch.query_y.repeat(2)
    torch.testing.assert_close(loss, F.cross_entropy(logits.view(-1, 3), targets))
    accuracy = (logits.view(-1, 3).argmax(1) == targets).float().mean().item()
    assert metrics["accuracy"] == pytest.approx(accuracy)
    # one pass over both sets would normalise with their joint statistics
    joint = net(torch.cat([batch.support_x, batch.query_x], 1).reshape(-1, 4))
    assert not torch.allclose(joint[:6], support[0])


def test_predictions_of_a_row_do_not_depend_on_its_batch():
    algorithm = make_algorithm("protonet")
    net = _net(algorithm).eval()
    batch = _batch()
    state = algorithm.adapt(net, batch.support_x[0], batch.support_y, 3)
    whole = algorithm.predict(net, state, batch.query_x[0])
    alone = torch.cat(
        [algorithm.predict(net, state, row[None]) for row in batch.query_x[0]]
    )
    assert whole.dtype == torch.float64
    torch.testing.assert_close(whole, alone, rtol=1e-6, atol=1e-6)


def test_validation_in_chunks_of_tasks_equals_one_pass():
    algorithm = make_algorithm("protonet")
    net = _net(algorithm).eval()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    support = rng.integers(0, 60, (5, 6))
    query = rng.integers(0, 60, (5, 12))
    rows = Rows(X, (4,), torch.device("cpu"))
    ways = torch.arange(3)
    episodes = ValidationEpisodes(
        rows, support, query, ways.repeat_interleave(2), ways.repeat_interleave(4), 3
    )
    whole = TaskBatch(
        torch.from_numpy(X[support]),
        ways.repeat_interleave(2),
        torch.from_numpy(X[query]),
        ways.repeat_interleave(4),
        3,
    )
    loss, accuracy = validation_metrics(algorithm, net, episodes)
    expected = algorithm.episode_metrics(net, whole)
    assert loss == pytest.approx(expected[0], rel=1e-6)
    assert accuracy == pytest.approx(expected[1])
    assert len(list(episodes.batches(max_rows=40))) == 3  # 2 tasks per chunk


def test_pretrain_validates_with_prototypes_under_early_stopping(blobs):
    from skmeta.meta.train import TrainSettings, meta_train

    X, y = blobs
    settings = TrainSettings(
        n_way=4,
        k_shot=2,
        n_query=3,
        input_shape=(10,),
        method="pretrain",
        early_stopping=True,
        validation_fraction=0.3,
        max_iter=20,
    )
    model = meta_train(X, y, settings)  # crashed: validation episodes are not
    # the labelled mini-batches pretrain trains on
    assert "val_accuracy" in model.history[-1]


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_margin_subtracts_from_each_querys_own_logit_in_training_only(distance):
    plain = make_algorithm("protonet", distance=distance)
    wide = make_algorithm("protonet", distance=distance, margin=2.5)
    net = _net(plain).train()
    batch = _batch()
    loss, metrics = plain.loss(net, batch)
    wide_loss, wide_metrics = wide.loss(net, batch)
    # by hand: the plain logits, the margin taken from each query's own class
    logits, targets = plain._episode_logits(net, batch)
    margin = 2.5 * F.one_hot(targets, 3)
    torch.testing.assert_close(wide_loss, F.cross_entropy(logits - margin, targets))
    assert wide_loss > loss
    # the accuracy reported, validation and deployment score the plain logits
    assert wide_metrics["accuracy"] == pytest.approx(metrics["accuracy"])
    net.eval()
    assert wide.episode_metrics(net, batch) == pytest.approx(
        plain.episode_metrics(net, batch)
    )
    state = wide.adapt(net, batch.support_x[0], batch.support_y, 3)
    torch.testing.assert_close(
        wide.predict(net, state, batch.query_x[0]),
        plain.predict(
            net,
            plain.adapt(net, batch.support_x[0], batch.support_y, 3),
            batch.query_x[0],
        ),
    )
    assert (
        make_algorithm("protonet", distance=distance, margin=0).loss(
            net.train(), batch
        )[0]
        == loss
    )


@pytest.mark.parametrize("margin", [-1.0, float("nan"), float("inf"), "1", True])
def test_bad_margin_is_refused(margin):
    with pytest.raises(ValueError, match="margin must be a finite float"):
        make_algorithm("protonet", margin=margin)


def test_margin_through_the_estimators_is_saved_and_refused_by_pretrain(blobs):
    from skmeta import MetaFeatureExtractor

    X, y = blobs
    params = dict(n_way=4, k_shot=2, n_query=3, max_iter=5, random_state=0)
    fitted = MetaFeatureExtractor(method_params={"margin": 1.5}, **params).fit(X, y)
    assert fitted.meta_model_.config["method_params"]["margin"] == 1.5
    assert np.isfinite(fitted.transform(X[:5])).all()
    with pytest.raises(ValueError, match="does not take"):
        MetaFeatureExtractor(
            method="pretrain", method_params={"margin": 1.5}, **params
        ).fit(X, y)
