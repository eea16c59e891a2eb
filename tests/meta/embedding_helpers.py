"""A tiny network and shared checks for the tests of the methods that
classify embeddings (Matching Networks, Relation Networks, FEAT, FRN)."""

import numpy as np
import pytest
import torch
from torch import nn

from skmeta import FewShotClassifier, MetaModel, available_methods
from skmeta.meta.net import MetaNet
from skmeta.meta.train import TrainSettings, meta_train


def linear_net(algorithm, dim=4, seed=0, n_classes=3):
    """A linear backbone of width `dim` and `algorithm`'s meta-parameters
    (for `n_classes` base classes), seeded."""
    torch.manual_seed(seed)
    net = MetaNet(nn.Linear(dim, dim), (dim,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, dim, n_classes).items():
        net.extra[name] = nn.Parameter(value.clone())
    return net


def deployed_loss(algorithm, net, batch, criterion) -> float:
    """The mean over `batch`'s tasks of `criterion(outputs, query labels)`,
    the outputs those of the deployed ``adapt`` then ``predict``."""
    losses = [
        criterion(
            algorithm.predict(
                net,
                algorithm.adapt(net, batch.support_x[t], batch.support_y, batch.n_way),
                batch.query_x[t],
            ),
            batch.query_y,
        )
        for t in range(batch.n_tasks)
    ]
    return torch.stack(losses).mean().item()


def learnt_accuracy(blobs, method, method_params=None, max_iter=60):
    """Meta-train `method` on the 16 base classes of `blobs` (5-way 2-shot,
    `max_iter` iterations), then adapt to one shot of each of the 8 new
    classes (more ways than meta-training's): the model and its accuracy
    on every new row."""
    X, y = blobs
    base, new = y < 16, y >= 16
    settings = TrainSettings(
        n_way=5,
        k_shot=2,
        n_query=5,
        input_shape=(10,),
        method=method,
        method_params=method_params or {},
        max_iter=max_iter,
        seed=0,
    )
    model = meta_train(X[base], y[base], settings)
    algorithm = model.algorithm()
    X_new, y_new = X[new], y[new] - 16
    first = np.unique(y_new, return_index=True)[1]  # one shot per class
    state = model.adapt(algorithm, X_new[first], y_new[first], 8)
    scores = model.predict(algorithm, state, X_new)  # 8 ways: more than 5
    assert scores.shape == (len(y_new), 8)
    return model, (scores.argmax(1) == y_new).mean()


def check_partial_fit_equals_fit(blobs, method):
    """``partial_fit`` in two calls, a class declared before its rows, gives
    the probabilities of ``fit`` on the same rows."""
    X, y = blobs
    base = FewShotClassifier(method=method, max_iter=20, random_state=0)
    model = base.fit(X[y < 16], y[y < 16]).meta_model_
    X_new, y_new = X[y >= 16], y[y >= 16]
    online = FewShotClassifier(pretrained=model)
    online.partial_fit(X_new[:12], y_new[:12], classes=np.arange(16, 24))
    online.partial_fit(X_new[12:40], y_new[12:40])
    once = FewShotClassifier(pretrained=model).fit(X_new[:40], y_new[:40])
    np.testing.assert_allclose(
        online.predict_proba(X_new), once.predict_proba(X_new), rtol=1e-6, atol=1e-9
    )


def check_saved_and_loaded(blobs, path, method, method_params):
    """The estimators take `method` by name; its model file keeps
    `method_params` and gives the same probabilities once loaded. Returns
    the loaded model."""
    assert method in available_methods()
    X, y = blobs
    base = FewShotClassifier(
        method=method, method_params=method_params, max_iter=30, random_state=0
    ).fit(X[y < 16], y[y < 16])
    base.meta_model_.save(path)
    loaded = MetaModel.load(path)
    new = y >= 16
    first = np.unique(y[new], return_index=True)[1]
    before = FewShotClassifier(pretrained=base.meta_model_).fit(
        X[new][first], y[new][first]
    )
    after = FewShotClassifier(pretrained=loaded).fit(X[new][first], y[new][first])
    proba = after.predict_proba(X[new])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(proba, before.predict_proba(X[new]), rtol=1e-6)
    return loaded


def check_transductive_refused(blobs, method):
    """``transductive=`` is refused for `method`, naming it."""

    X, y = blobs
    base = FewShotClassifier(method=method, max_iter=5, random_state=0).fit(
        X[y < 16], y[y < 16]
    )
    clf = FewShotClassifier(pretrained=base.meta_model_, transductive="ptmap")
    labels = np.where(np.arange(20) < 8, y[y >= 16][:20], -1)
    with pytest.raises(ValueError, match=method):
        clf.fit(X[y >= 16][:20], labels)
