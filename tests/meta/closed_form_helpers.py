"""Checks shared by the closed-form head methods' tests (R2-D2, MetaOptNet):
each is run there with the method's name, its regularisation setting and the
scikit-learn estimator its head equals."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from embedding_helpers import learnt_accuracy
from torch import nn

from skmeta.meta.algorithms import AdaptationDiverged, TaskBatch, make_algorithm
from skmeta.meta.net import MetaNet


def tiny_net(algorithm, dim=4, width=8, seed=0):
    """An MLP with a batch norm, and the method's meta-parameters."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Linear(dim, width), nn.BatchNorm1d(width), nn.ReLU())
    net = MetaNet(backbone, (dim,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, width, 3).items():
        net.extra[name] = nn.Parameter(value.clone())
    return net


def task_batch(n_tasks=2, n_way=3, k_shot=2, n_query=4, dim=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        torch.randn(n_tasks, n_way * k_shot, dim, generator=g),
        torch.arange(n_way).repeat_interleave(k_shot),
        torch.randn(n_tasks, n_way * n_query, dim, generator=g),
        torch.arange(n_way).repeat_interleave(n_query),
        n_way,
    )


def check_loss_is_the_deployed_head(method, setting, value, solver):
    """The training loss embeds support and query in two passes, solves the
    head on the support and scores the queries with the learnt scale; the
    gradient reaches the backbone (through the head) and the scale."""
    algorithm = make_algorithm(method, **{setting: value})
    net = tiny_net(algorithm).train()
    batch = task_batch()
    loss, metrics = algorithm.loss(net, batch)
    support = net(batch.support_x.reshape(-1, 4)).view(2, 6, -1)
    query = net(batch.query_x.reshape(-1, 4)).view(2, 12, -1)
    logits = []
    for t in range(2):
        weight, bias = solver(support[t : t + 1], batch.support_y, 3, value)
        logits.append(10.0 * (query[t].double() @ weight[0].T + bias[0]))
    logits = torch.cat(logits).float()
    targets = batch.query_y.repeat(2)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))
    assert metrics["accuracy"] == (logits.argmax(1) == targets).float().mean().item()
    loss.backward()
    assert net.extra["scale"].grad.abs() > 0
    assert net.backbone[0].weight.grad.abs().sum() > 0
    # the deployed adapt / predict (eval mode: running statistics) is the
    # same head: scores are scale * (w . x + b) of the solver's head
    net.eval()
    state = algorithm.adapt(net, batch.support_x[0], batch.support_y, 3)
    with torch.no_grad():
        emb = net(batch.support_x[0]).unsqueeze(0)
        weight, bias = solver(emb, batch.support_y, 3, value)
        expected = 10.0 * (net(batch.query_x[0]).double() @ weight[0].T + bias[0])
    # float64 heads solved on float32 embeddings: a query batch of 5 against
    # one of 12 may take another float32 kernel (CPU-dependent), so the
    # comparison allows float32's rounding, not float64's
    torch.testing.assert_close(state["weight"], weight[0], rtol=1e-5, atol=1e-6)
    outputs = algorithm.predict(net, state, batch.query_x[0], batch_size=5)
    torch.testing.assert_close(outputs, expected, rtol=1e-5, atol=1e-5)
    # validation scores the deployed heads, all tasks at once
    deployed = [
        algorithm.evaluate(
            algorithm.predict(
                net,
                algorithm.adapt(net, batch.support_x[t], batch.support_y, 3),
                batch.query_x[t],
            ),
            batch.query_y,
        )
        for t in range(2)
    ]
    loss, accuracy = algorithm.episode_metrics(net, batch)
    assert loss == pytest.approx(np.mean([d[0] for d in deployed]), rel=1e-5)
    assert accuracy == pytest.approx(np.mean([d[1] for d in deployed]))
    # a network whose embeddings turned NaN: adaptation says so
    with torch.no_grad():
        net.backbone[0].weight[0, 0] = float("nan")
    with pytest.raises(AdaptationDiverged, match="not finite"):
        algorithm.adapt(net, batch.support_x[0], batch.support_y, 3)
    assert not torch.isfinite(algorithm.loss(net, batch)[0])


def check_meta_training_learns(blobs, method):
    """Meta-trained on 16 classes, 1-shot accuracy on 8 new ones, 8-way (more
    ways than meta-training's 5)."""
    model, accuracy = learnt_accuracy(blobs, method)
    history = model.history
    assert history[-1]["loss"] < history[0]["loss"]
    assert accuracy > 0.8


def check_estimator_head_is_sklearn(blobs, method, setting, reference, tmp_path):
    """Through the estimators: meta-trained by name, adapted by a pretrained
    classifier with another value of the setting (an adaptation setting),
    whose head is `reference`'s (a scikit-learn classifier with that value)
    fitted on the same embeddings; the model survives save and load."""
    from skmeta import FewShotClassifier, available_methods
    from skmeta.meta.model import MetaModel

    assert method in available_methods()
    X, y = blobs
    meta = FewShotClassifier(method=method, max_iter=30, random_state=0)
    model = meta.fit(X[y < 16], y[y < 16]).meta_model_
    assert model.config["method_params"] == {setting: 1.0}
    new = y >= 16
    X_new, y_new = X[new], y[new]
    shots = np.concatenate([np.flatnonzero(y_new == c)[:3] for c in range(16, 24)])
    clf = FewShotClassifier(pretrained=model, method_params={setting: 0.3})
    clf.fit(X_new[shots], y_new[shots])
    features = model.transform(X_new[shots])
    fitted = reference.set_params(**{setting: 0.3}).fit(features, y_new[shots])
    np.testing.assert_allclose(clf.adapted_["weight"], fitted.coef_, atol=1e-4)
    np.testing.assert_allclose(clf.adapted_["bias"], fitted.intercept_, atol=1e-4)
    scale = float(model.state["extra.scale"])
    queries = model.transform(X_new)
    np.testing.assert_allclose(
        clf.decision_function(X_new),
        scale * fitted.decision_function(queries),
        rtol=1e-3,
        atol=1e-3,
    )
    assert (clf.predict(X_new) == fitted.predict(queries)).mean() > 0.99
    assert clf.score(X_new, y_new) > 0.8
    # two classes: scikit-learn's one binary classifier; the decision
    # function is the difference of the two rows' logits, 2 * scale * its own
    pair = np.isin(y_new[shots], [16, 17])
    binary = FewShotClassifier(pretrained=model, method_params={setting: 0.3})
    binary.fit(X_new[shots][pair], y_new[shots][pair])
    fitted = reference.fit(features[pair], y_new[shots][pair])
    np.testing.assert_allclose(
        binary.decision_function(X_new),
        2 * scale * fitted.decision_function(queries),
        rtol=1e-3,
        atol=1e-3,
    )
    # another value is another head
    default = FewShotClassifier(pretrained=model).fit(X_new[shots], y_new[shots])
    assert not np.allclose(default.adapted_["weight"], clf.adapted_["weight"])
    # save / load: same settings, same scale, same predictions
    model.save(tmp_path / "model.skmeta")
    loaded = MetaModel.load(tmp_path / "model.skmeta")
    assert loaded.method == method
    assert loaded.config["method_params"] == {setting: 1.0}
    again = FewShotClassifier(pretrained=loaded, method_params={setting: 0.3})
    again.fit(X_new[shots], y_new[shots])
    np.testing.assert_array_equal(
        again.decision_function(X_new), clf.decision_function(X_new)
    )
