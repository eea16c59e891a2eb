"""The gradient-based family through the estimators (issue 4)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import skmeta._meta_training
from skmeta import EpisodicSplit, FewShotClassifier, MetaModel


def _meta_train_maml(blobs, **params):
    """MAML meta-trained on the 16 base classes of `blobs` (5-way 1-shot)."""
    X, y = blobs
    base = y < 16
    clf = FewShotClassifier(
        method="maml", n_way=5, k_shot=1, n_query=5, random_state=0, **params
    )
    return clf.fit(X[base], y[base]).meta_model_


@pytest.fixture(scope="module")
def maml_model(blobs):
    return _meta_train_maml(blobs, inner_steps=2, max_iter=40)


def test_meta_training_records_resolved_inner_settings(maml_model):
    assert maml_model.method == "maml"
    assert dict(maml_model.config["method_params"]) == {
        "inner_lr": 0.4,
        "inner_steps": 2,
        "first_order": False,
    }


def test_grid_search_over_inner_loop_runs_no_meta_training(
    maml_model, blobs, monkeypatch
):
    X, y = blobs
    novel = y >= 16

    def no_meta_training(*args, **kwargs):
        raise AssertionError("meta-training ran inside the grid search")

    monkeypatch.setattr(skmeta._meta_training, "meta_train", no_meta_training)
    copies = []
    original_clone = MetaModel.__sklearn_clone__

    def spy(self):
        copies.append(self)
        return original_clone(self)

    monkeypatch.setattr(MetaModel, "__sklearn_clone__", spy)
    search = GridSearchCV(
        FewShotClassifier(pretrained=maml_model),
        {"inner_lr": [0.1, 0.5], "inner_steps": [1, 3]},
        cv=EpisodicSplit(n_way=4, k_shot=1, n_query=4, n_episodes=5, random_state=0),
    ).fit(X[novel], y[novel])
    assert len(search.cv_results_["params"]) == 4
    assert copies and all(c is maml_model for c in copies)  # shared, never copied
    assert search.best_estimator_.meta_model_ is maml_model
    scores = search.cv_results_["mean_test_score"]
    assert len(set(np.round(scores, 6))) > 1  # the settings do change adaptation


def test_inner_settings_change_adaptation(maml_model, blobs):
    X, y = blobs
    novel = y >= 16
    a = FewShotClassifier(pretrained=maml_model).fit(X[novel], y[novel])
    b = FewShotClassifier(pretrained=maml_model, inner_steps=5, inner_lr=0.1).fit(
        X[novel], y[novel]
    )
    assert not np.allclose(a.decision_function(X[novel]), b.decision_function(X[novel]))


def test_inner_batch_size_adapts_by_minibatches(maml_model, blobs, tmp_path):
    X, y = blobs
    novel = y >= 16  # 120 rows
    whole = FewShotClassifier(pretrained=maml_model, inner_steps=6)
    capped = FewShotClassifier(
        pretrained=maml_model, inner_steps=6, method_params={"inner_batch_size": 40}
    )
    a = whole.fit(X[novel], y[novel]).decision_function(X[novel])
    b = capped.fit(X[novel], y[novel]).decision_function(X[novel])
    assert not np.allclose(a, b)  # the setting reaches adaptation
    # stochastic steps on a third of the rows still learn the new classes
    assert capped.score(X[novel], y[novel]) > 0.8 * whole.score(X[novel], y[novel])
    # a model meta-trained with it records it, and its file keeps it
    model = _meta_train_maml(blobs, max_iter=3, method_params={"inner_batch_size": 64})
    assert model.config["method_params"]["inner_batch_size"] == 64
    model.save(tmp_path / "m.safetensors")
    loaded = MetaModel.load(tmp_path / "m.safetensors")
    assert loaded.algorithm().inner_batch_size == 64
    # whole-set steps at any size (None) are recorded as such; the default
    # ("auto") is left out of the file, as before the setting existed
    whole = {"inner_batch_size": None}
    exact = _meta_train_maml(blobs, max_iter=3, method_params=whole)
    exact.save(tmp_path / "exact.safetensors")
    loaded = MetaModel.load(tmp_path / "exact.safetensors")
    assert loaded.config["method_params"]["inner_batch_size"] is None
    assert loaded.algorithm().batch_rows(10**6) is None
    assert (
        "inner_batch_size"
        not in _meta_train_maml(blobs, max_iter=3).config["method_params"]
    )
    with pytest.raises(ValueError, match="inner_batch_size"):
        FewShotClassifier(
            pretrained=maml_model, method_params={"inner_batch_size": 0}
        ).fit(X[novel], y[novel])


def test_inner_settings_on_a_prototype_model_are_refused(blob_model, blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="does not apply to method=.protonet."):
        FewShotClassifier(pretrained=blob_model, inner_lr=0.1).fit(X, y)


@pytest.mark.parametrize(
    "method", ["maml", "fomaml", "metasgd", "anil", "protomaml", "reptile"]
)
def test_each_method_learns_new_classes(blobs, method):
    X, y = blobs
    base, novel = y < 16, y >= 16
    model = (
        FewShotClassifier(
            method=method,
            n_way=5,
            k_shot=2,
            n_query=4,
            inner_steps=3,
            inner_lr=0.3,
            max_iter=40,
            random_state=0,
        )
        .fit(X[base], y[base])
        .meta_model_
    )
    clf = FewShotClassifier(pretrained=model)
    first = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(16, 24)])
    clf.fit(X[first], y[first])  # 8-way 2-shot: not the 5 ways of training
    assert clf.classes_.size == 8
    assert clf.score(X[novel], y[novel]) > 0.6, method
    assert clone(clf).pretrained is model


def test_max_grad_norm_reaches_meta_training_and_is_validated(blobs):
    X, y = blobs
    clf = FewShotClassifier(
        method="anil", n_way=5, k_shot=1, n_query=5, max_iter=20, random_state=0
    )
    clipped = clone(clf).set_params(max_grad_norm=0.5).fit(X, y)
    history = clipped.meta_model_.history
    assert all(record["grad_norm"] > 0 for record in history)
    assert clipped.meta_model_.config["training"]["max_grad_norm"] == 0.5
    with pytest.raises(ValueError, match="max_grad_norm"):
        clone(clf).set_params(max_grad_norm=0.0).fit(X, y)


@pytest.mark.parametrize("method", ["maml", "fomaml", "metasgd"])
def test_default_inner_loop_adapts_the_backbone(blobs, method):
    """At its defaults the inner loop moves the body too, not only the head;
    with one step the body keeps its meta-trained weights (the shared head's
    class rows are equal, so the body's first gradient is zero, up to float
    rounding)."""
    X, y = blobs
    base, novel = y < 16, y >= 16
    clf = FewShotClassifier(
        method=method, n_way=5, k_shot=1, n_query=5, max_iter=5, random_state=0
    ).fit(X[base], y[base])
    assert clf.meta_model_.config["method_params"]["inner_steps"] == 2
    meta = clf.meta_model_.state

    def body_change(adapted):
        return {
            name: (weight - meta[name]).abs().max().item()
            for name, weight in adapted["weights"].items()
        }

    moved = body_change(
        FewShotClassifier(pretrained=clf.meta_model_).fit(X[novel], y[novel]).adapted_
    )
    assert moved and all(change > 0 for change in moved.values())
    one_step = FewShotClassifier(pretrained=clf.meta_model_, inner_steps=1)
    kept = body_change(one_step.fit(X[novel], y[novel]).adapted_)
    # zero up to float rounding, against steps that move every body tensor
    assert kept.keys() == moved.keys()
    assert max(kept.values()) < 1e-4 * min(moved.values())


@pytest.mark.parametrize(
    ("method", "regression", "steps"),
    [
        ("maml", False, 2),
        ("maml", True, 1),
        ("fomaml", False, 2),
        ("metasgd", False, 2),
        ("anil", False, 1),
        ("protomaml", False, 1),
        ("reptile", False, 5),
    ],
)
def test_default_inner_steps_are_the_fewest_that_adapt_everything(
    method, regression, steps
):
    from skmeta.meta.algorithms import make_algorithm

    params = {"regression": True} if regression else {}
    assert make_algorithm(method, **params).inner_steps == steps
