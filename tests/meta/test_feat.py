"""FEAT (skmeta.meta.algorithms.feat)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from embedding_helpers import (
    check_partial_fit_equals_fit,
    check_saved_and_loaded,
    check_transductive_refused,
    deployed_loss,
    learnt_accuracy,
    linear_net,
)
from torch import nn

from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.algorithms.feat import set_to_set
from skmeta.meta.net import MetaNet


def _net(algorithm, dim=4, seed=0):
    net = linear_net(algorithm, dim, seed)
    with torch.no_grad():  # away from the initial values, to see each weight act
        net.extra["feat_out"].normal_()
        net.extra["feat_norm_weight"].uniform_(0.5, 1.5)
        net.extra["feat_norm_bias"].normal_()
        net.extra["feat_out_bias"].normal_()
    return net


def _batch(seed=1, n_tasks=2):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.randn(n_tasks, 6, 4, generator=g),
        torch.tensor([0, 0, 1, 1, 2, 2]),
        torch.randn(n_tasks, 9, 4, generator=g),
        torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 2]),  # not class-major
        n_way=3,
    )


def test_set_function_by_hand():
    algorithm = make_algorithm("feat")
    net = _net(algorithm)
    e = {k: v.detach().double() for k, v in net.extra.items()}
    w = {k: e[f"feat_{k}"] / 2.0 for k in ("query", "key", "value", "out")}
    protos = torch.randn(3, 4, dtype=torch.float64)
    normed = []
    for p in protos:  # layer norm first
        h = (p - p.mean()) / torch.sqrt(p.var(unbiased=False) + 1e-5)
        normed.append(h * e["feat_norm_weight"] + e["feat_norm_bias"])
    attention = torch.empty(3, 3, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            attention[i, j] = (w["query"] @ normed[i]) @ (w["key"] @ normed[j]) / 2.0
    attention = torch.softmax(attention, 1)
    moved = []
    for i in range(3):
        read = sum(attention[i, j] * (w["value"] @ normed[j]) for j in range(3))
        moved.append(protos[i] + w["out"] @ read + e["feat_out_bias"])
    torch.testing.assert_close(set_to_set(e, protos[None])[0], torch.stack(moved))


def test_meta_training_starts_from_protonet():
    algorithm = make_algorithm("feat")
    torch.manual_seed(0)
    net = MetaNet(nn.Linear(4, 4), (4,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, 4, 3).items():
        net.extra[name] = nn.Parameter(value)
    protos = torch.randn(2, 3, 4)
    with torch.no_grad():
        torch.testing.assert_close(set_to_set(net.extra, protos), protos)


def test_set_function_ignores_the_order_of_a_set():
    net = _net(make_algorithm("feat"))
    protos = torch.randn(2, 5, 4)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        torch.testing.assert_close(
            set_to_set(net.extra, protos)[:, perm],
            set_to_set(net.extra, protos[:, perm]),
        )


def test_predictions_are_distances_to_the_adapted_prototypes():
    algorithm = make_algorithm("feat", temperature=2.0)
    net = _net(algorithm)
    support_x, query_x = torch.randn(5, 4), torch.randn(7, 4)
    support_y = torch.tensor([0, 1, 2, 1, 0])
    state = algorithm.adapt(net, support_x, support_y, 3)
    scores = algorithm.predict(net, state, query_x)
    with torch.no_grad():
        s, q = net(support_x).double(), net(query_x).double()
        protos = torch.stack([s[support_y == c].mean(0) for c in range(3)])
        extra = {k: v.double() for k, v in net.extra.items()}
        moved = set_to_set(extra, protos[None])[0]
        expected = -((q[:, None] - moved[None]) ** 2).sum(-1) / 2.0
    torch.testing.assert_close(scores, expected)
    # the adaptation moved the prototypes: not ProtoNet's scores
    assert not torch.allclose(scores, -((q[:, None] - protos[None]) ** 2).sum(-1) / 2)


def test_meta_training_loss_without_regulariser_is_the_deployed_prediction():
    algorithm = make_algorithm("feat")  # balance=0 by default
    net = _net(algorithm)
    batch = _batch()
    loss, _ = algorithm.loss(net, batch)
    expected = deployed_loss(algorithm, net, batch, F.cross_entropy)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    names = {n for n, p in net.named_parameters() if p.grad is not None}
    assert {"backbone.weight", "extra.feat_query", "extra.feat_out"} <= names
    assert algorithm.episode_metrics(net, batch)[0] == pytest.approx(loss.item())


def test_regulariser_by_hand():
    plain = make_algorithm("feat")
    regularised = make_algorithm("feat", balance=0.1)
    net = _net(regularised)
    batch = _batch(n_tasks=1)
    with torch.no_grad():
        extra = dict(net.extra)
        s, q = net(batch.support_x[0]), net(batch.query_x[0])
        rows = torch.cat([s, q])
        labels = torch.cat([batch.support_y, batch.query_y])
        members = [rows[labels == c] for c in range(3)]  # 2 shots + 3 queries
        centres = torch.stack([set_to_set(extra, m[None])[0].mean(0) for m in members])
        # each row as embedded, against the transformed rows' centres
        logits = -((rows[:, None] - centres[None]) ** 2).sum(-1) / 16.0
        aux = F.cross_entropy(logits, labels)
        expected = plain.loss(net, batch)[0] + 0.1 * aux
        got = regularised.loss(net, batch)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # and the regulariser's gradient reaches the set function's weights
    loss, _ = regularised.loss(net, batch)
    loss.backward()
    assert net.extra["feat_value"].grad.abs().sum() > 0


def test_a_class_without_rows_takes_no_part_in_the_others_scores():
    algorithm = make_algorithm("feat")
    net = _net(algorithm)
    support_x, query_x = torch.randn(6, 4), torch.randn(5, 4)
    support_y = torch.tensor([0, 1, 2, 0, 1, 2])
    three = algorithm.predict(
        net, algorithm.adapt(net, support_x, support_y, 3), query_x
    )
    # class 1 declared but without rows: the others' scores as before
    shifted = torch.tensor([0, 2, 3, 0, 2, 3])
    four = algorithm.predict(net, algorithm.adapt(net, support_x, shifted, 4), query_x)
    torch.testing.assert_close(four[:, [0, 2, 3]], three)


def test_partial_fit_equals_fit_on_the_rows_so_far(blobs):
    check_partial_fit_equals_fit(blobs, "feat")


@pytest.mark.parametrize(
    "settings, name",
    [
        ({"temperature": 0}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"balance": -0.1}, "balance"),
        ({"balance": True}, "balance"),
        ({"aux_temperature": "16"}, "aux_temperature"),
        ({"aux_temperature": 8.0}, "aux_temperature.*balance=0"),  # unused
    ],
)
def test_settings_are_checked(settings, name):
    with pytest.raises(ValueError, match=name):
        make_algorithm("feat", **settings)


def test_numpy_scalars_are_settings_too():
    algorithm = make_algorithm("feat", temperature=np.float32(2), balance=np.int64(1))
    assert (algorithm.temperature, algorithm.balance) == (2.0, 1.0)
    assert type(algorithm.temperature) is float


def test_meta_training_learns_new_classes(blobs):
    model, accuracy = learnt_accuracy(blobs, "feat", {"balance": 0.1})
    assert model.config["method_params"] == {
        "temperature": 1.0,
        "balance": 0.1,
        "aux_temperature": 16.0,
    }
    assert make_algorithm("feat").balance == 0.0  # off unless asked
    assert accuracy > 0.8


def test_estimator_takes_it_by_name_and_saves_it(blobs, tmp_path):
    loaded = check_saved_and_loaded(
        blobs, tmp_path / "feat.safetensors", "feat", {"temperature": 2.0}
    )
    assert loaded.config["method_params"]["temperature"] == 2.0


def test_transductive_deployment_is_refused(blobs):
    check_transductive_refused(blobs, "feat")
