"""Metamorphic relations: two runs whose inputs differ by a transformation
that must not change the answer (or must change it in a known way).

On tiny models of every method: permuting the support rows, renaming the
classes, batching, reordering and chunking the queries, and the dtype,
memory order and container of X. Relations that do not hold by design are
not tested: gradient adaptation in mini-batches depends on the row order
(docs/user_guide/performance.rst), MANN's predictions on the label codes
(its controller reads them), a transductive method's on the unlabelled rows.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from skmeta import FewShotClassifier, FewShotRegressor, available_methods
from skmeta.datasets import make_sinusoid_tasks
from skmeta.meta.model import MetaModel
from skmeta.meta.train import TrainSettings, meta_train
from skmeta.meta.transductive import TRANSDUCTIVE

METHODS = list(available_methods())
NOVEL = [16, 17, 18, 19]
GRADIENT = ["maml", "fomaml", "metasgd", "anil", "reptile"]
# one method of each family in the default run, every method with -m slow
FAMILIES = {"protonet", "anil", "feat", "r2d2"}


def sweep(methods, fast=FAMILIES):
    slow = pytest.mark.slow
    return [m if m in fast else pytest.param(m, marks=slow) for m in methods]


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def task(blobs):
    """Three support rows of each of 4 novel classes; their 48 other rows
    as queries."""
    X, y = blobs
    rows = [np.flatnonzero(y == c) for c in NOVEL]
    support = np.concatenate([r[:3] for r in rows])
    query = np.concatenate([r[3:] for r in rows])
    return X[support], y[support], X[query]


@pytest.fixture(scope="module")
def models(blobs):
    """One model per method, meta-trained for one iteration, on demand."""
    X, y = blobs
    cache = {}

    def model(method):
        if method not in cache:
            settings = TrainSettings(
                n_way=4, k_shot=2, n_query=2, input_shape=(10,), max_iter=1,
                seed=0, method=method,
            )  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[method] = meta_train(X[y < 16], y[y < 16], settings)
        return cache[method]

    return model


def adapted(model, X, y, **params):
    return FewShotClassifier(pretrained=model, random_state=0, **params).fit(X, y)


@pytest.mark.parametrize("method", sweep(METHODS, FAMILIES | {"mann"}))
def test_support_row_order_changes_nothing(models, task, method):
    Xs, ys, Xq = task
    perm = np.random.default_rng(0).permutation(len(ys))
    a = adapted(models(method), Xs, ys)
    b = adapted(models(method), Xs[perm], ys[perm])
    close(b.predict_proba(Xq), a.predict_proba(Xq))
    np.testing.assert_array_equal(b.predict(Xq), a.predict(Xq))


@pytest.mark.parametrize("method", sweep(m for m in METHODS if m != "mann"))
def test_renamed_classes_rename_the_predictions(models, task, method):
    """Strings in the reverse order of the integers: classes_ is sorted, so
    predict_proba's columns come reversed."""
    Xs, ys, Xq = task
    names = dict(zip(NOVEL, ["d", "c", "b", "a"], strict=True))
    a = adapted(models(method), Xs, ys)
    b = adapted(models(method), Xs, np.array([names[v] for v in ys]))
    np.testing.assert_array_equal(b.classes_, ["a", "b", "c", "d"])
    close(b.predict_proba(Xq)[:, ::-1], a.predict_proba(Xq))
    np.testing.assert_array_equal(b.predict(Xq), [names[v] for v in a.predict(Xq)])


@pytest.mark.parametrize("method", sweep(METHODS))
def test_queries_alone_shuffled_chunked_or_converted_agree(
    models, task, method, monkeypatch
):
    Xs, ys, Xq = task
    clf = adapted(models(method), Xs, ys)
    proba = clf.predict_proba(Xq)
    alone = np.vstack([clf.predict_proba(Xq[i : i + 1]) for i in range(0, 48, 7)])
    close(alone, proba[::7])
    perm = np.random.default_rng(1).permutation(len(Xq))
    close(clf.predict_proba(Xq[perm]), proba[perm])
    close(clf.predict_proba(np.asfortranarray(Xq, dtype=np.float64)), proba)
    close(clf.predict_proba(pd.DataFrame(Xq)), proba)
    # forward passes of 5 rows: the chunks end inside the support and queries
    monkeypatch.setattr(MetaModel, "batch_size", lambda self, device="cpu": 5)
    close(clf.predict_proba(Xq), proba)
    close(adapted(models(method), Xs, ys).predict_proba(Xq), proba)


@pytest.mark.parametrize("method", sweep(METHODS))
def test_predict_is_the_argmax_of_the_scores_and_probabilities(models, task, method):
    Xs, ys, Xq = task
    clf = adapted(models(method), Xs, ys)
    labels = clf.predict(Xq)
    np.testing.assert_array_equal(
        labels, clf.classes_[clf.decision_function(Xq).argmax(1)]
    )
    np.testing.assert_array_equal(labels, clf.classes_[clf.predict_proba(Xq).argmax(1)])


def test_exact_ties_go_to_the_first_class_everywhere():
    model = MetaModel.from_module(torch.nn.Identity(), input_shape=(2,))
    X = np.array([[0, 0], [2, 0], [9, 9]], np.float32)
    clf = FewShotClassifier(pretrained=model).fit(X, ["b", "a", "c"])
    midway = np.array([[1, 0], [1, 5]], np.float32)
    np.testing.assert_array_equal(clf.predict(midway), ["a", "a"])
    assert np.ptp(clf.decision_function(midway)[:, :2], axis=1).max() == 0
    np.testing.assert_array_equal(clf.predict_proba(midway).argmax(1), [0, 0])


@pytest.mark.parametrize("method", sweep(["protonet", "maml"], {"protonet"}))
def test_open_set_predict_is_the_argmax_or_unknown_below_the_threshold(
    blobs, task, method
):
    X, y = blobs
    Xs, ys, Xq = task
    settings = TrainSettings(
        n_way=4, k_shot=2, n_query=2, input_shape=(10,), max_iter=1, seed=0,
        method=method, calibrate=True, n_val_episodes=10,
    )  # fmt: skip
    model = meta_train(X[y < 16], y[y < 16], settings)
    clf = adapted(model, Xs, ys, unknown_label=-1, rejection_rate=0.3)
    scores, labels = clf.decision_function(Xq), clf.predict(Xq)
    rejected = scores.max(1) < clf.unknown_threshold_
    assert 0 < rejected.sum() < len(Xq)
    expected = np.where(rejected, -1, clf.classes_[scores.argmax(1)])
    np.testing.assert_array_equal(labels, expected)
    kept = clf.classes_[clf.predict_proba(Xq).argmax(1)]
    np.testing.assert_array_equal(labels[~rejected], kept[~rejected])
    perm = np.random.default_rng(0).permutation(len(ys))
    again = adapted(model, Xs[perm], ys[perm], unknown_label=-1, rejection_rate=0.3)
    np.testing.assert_array_equal(again.predict(Xq), labels)
    np.testing.assert_array_equal(clf.predict(Xq[::-1]), labels[::-1])


@pytest.mark.parametrize("name", list(TRANSDUCTIVE))
def test_transduction_ignores_row_order_and_follows_renamed_classes(models, task, name):
    """The unlabelled rows are used by design; their order is not, nor are
    the class codes."""
    Xs, ys, Xq = task
    X = np.vstack([Xs, Xq])
    y = np.concatenate([ys, np.full(len(Xq), -1)])
    fast = {"n_iter": 50} if "tim" in name else None

    def fit(X, y):
        return adapted(
            models("protonet"), X, y, transductive=name, transductive_params=fast
        )

    a = fit(X, y)
    perm = np.random.default_rng(0).permutation(len(y))
    close(fit(X[perm], y[perm]).predict_proba(Xq), a.predict_proba(Xq))
    codes = {**dict(zip(NOVEL, [9, 5, 2, 0], strict=True)), -1: -1}
    b = fit(X, np.array([codes[v] for v in y]))
    close(b.predict_proba(Xq)[:, ::-1], a.predict_proba(Xq))
    np.testing.assert_array_equal(b.transduction_, [codes[v] for v in a.transduction_])


def test_test_time_views_keep_the_relations(image_model, images):
    X, y = images
    support = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(6, 10)])
    Xs, ys, Xq = X[support], y[support], X[y >= 6]
    views = {"test_time_shifts": [1], "test_time_turns": "rot90"}
    clf = adapted(image_model, Xs, ys, **views)
    proba = clf.predict_proba(Xq)
    perm = np.random.default_rng(0).permutation(len(ys))
    close(adapted(image_model, Xs[perm], ys[perm], **views).predict_proba(Xq), proba)
    close(
        np.vstack([clf.predict_proba(Xq[i : i + 1]) for i in (0, 9, 31)]),
        proba[[0, 9, 31]],
    )
    close(clf.predict_proba(Xq[::-1]), proba[::-1])


@pytest.mark.parametrize("method", sweep(GRADIENT, {"maml"}))
def test_regression_ignores_support_order_and_query_batching(method):
    X, y, groups = make_sinusoid_tasks(10, 10, random_state=0)
    Xn, yn, _ = make_sinusoid_tasks(1, 10, random_state=5)
    grid = np.linspace(-5, 5, 23)[:, None]
    model = FewShotRegressor(
        method=method, k_shot=5, n_query=5, max_iter=2, random_state=0,
        backbone_params={"hidden_sizes": (16, 16)},
    ).fit(X, y, groups=groups).meta_model_  # fmt: skip
    a = FewShotRegressor(pretrained=model, random_state=0).fit(Xn, yn)
    perm = np.random.default_rng(0).permutation(len(yn))
    b = FewShotRegressor(pretrained=model, random_state=0).fit(Xn[perm], yn[perm])
    close(b.predict(grid), a.predict(grid))
    close(
        np.concatenate([a.predict(grid[i : i + 1]) for i in range(23)]), a.predict(grid)
    )
    close(a.predict(np.asfortranarray(grid, dtype=np.float32)), a.predict(grid))
