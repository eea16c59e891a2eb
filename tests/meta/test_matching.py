"""Matching Networks (skmeta.meta.algorithms.matching)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from embedding_helpers import deployed_loss, learnt_accuracy, linear_net

from skmeta.meta.algorithms import TaskBatch, make_algorithm

_net = linear_net


def test_predictions_are_attention_over_the_support_labels():
    algorithm = make_algorithm("matching")
    net = _net(algorithm)
    support_x, query_x = torch.randn(5, 4), torch.randn(7, 4)
    support_y = torch.tensor([0, 1, 2, 1, 0])
    state = algorithm.adapt(net, support_x, support_y, 3)
    log_probs = algorithm.predict(net, state, query_x)
    with torch.no_grad():
        q, s = net(query_x).double(), net(support_x).double()
        sims = F.cosine_similarity(q[:, None], s[None], dim=-1)
        attention = torch.softmax(10.0 * sims, 1)
        expected = attention @ F.one_hot(support_y, 3).double()
    torch.testing.assert_close(log_probs.exp(), expected)
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(7).double())


@pytest.mark.parametrize("full_context", [False, True])
def test_meta_training_loss_is_the_deployed_prediction(full_context):
    algorithm = make_algorithm("matching", full_context=full_context, read_steps=2)
    net = _net(algorithm)
    g = torch.Generator().manual_seed(1)
    batch = TaskBatch(
        torch.randn(2, 6, 4, generator=g),
        torch.tensor([0, 0, 1, 1, 2, 2]),
        torch.randn(2, 9, 4, generator=g),
        torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]),
        n_way=3,
    )
    loss, _ = algorithm.loss(net, batch)
    expected = deployed_loss(algorithm, net, batch, F.nll_loss)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    names = [n for n, p in net.named_parameters() if p.grad is not None]
    assert "extra.scale" in names and "backbone.weight" in names
    assert any("fce_query" in n for n in names) == full_context
    assert any("fce_backward" in n for n in names) == full_context


def test_settings_are_checked():
    with pytest.raises(ValueError, match="read_steps"):
        make_algorithm("matching", read_steps=0)


@pytest.mark.parametrize("full_context", [False, True])
def test_meta_training_learns_new_classes(blobs, full_context):
    model, accuracy = learnt_accuracy(blobs, "matching", {"full_context": full_context})
    assert model.config["method_params"] == {
        "full_context": full_context,
        "read_steps": 4,
    }
    assert accuracy > 0.8


def test_estimator_takes_it_by_name_and_method_params(blobs):
    from skmeta import FewShotClassifier, available_methods

    assert "matching" in available_methods()
    X, y = blobs
    base = FewShotClassifier(
        method="matching",
        method_params={"full_context": True, "read_steps": 2},
        max_iter=30,
        random_state=0,
    ).fit(X[y < 16], y[y < 16])
    assert base.meta_model_.config["method_params"]["full_context"] is True
    new = y >= 16
    first = np.unique(y[new], return_index=True)[1]
    clf = FewShotClassifier(pretrained=base.meta_model_)
    clf.fit(X[new][first], y[new][first])
    proba = clf.predict_proba(X[new])
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert clf.score(X[new], y[new]) > 0.5
