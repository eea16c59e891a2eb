"""The flow the estimators share: method settings, `pretrained=` rules, warnings.

No setting is silently ignored: one the method does not take, or one fixed by
meta-training that differs from a pretrained model's, raises; meta-training
parameters set together with ``pretrained=`` warn once.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

import skmeta._meta_training
from skmeta import (
    EpisodicSplit,
    FewShotClassifier,
    FewShotRegressor,
    MetaFeatureExtractor,
    available_methods,
)
from skmeta.datasets import make_sinusoid_tasks
from skmeta.meta.algorithms import ALGORITHMS
from skmeta.meta.callbacks import History
from skmeta.meta.checkpoint import recorded_seed


@pytest.fixture(scope="module")
def maml_model(blobs):
    X, y = blobs
    clf = FewShotClassifier(
        method="maml", n_way=5, k_shot=1, n_query=2, max_iter=3, random_state=0
    )
    return clf.fit(X[y < 16], y[y < 16]).meta_model_


def _novel(blobs):
    X, y = blobs
    return X[y >= 16], y[y >= 16]


class _Stop(Exception):
    """Raised by a stand-in for meta_train, carrying its TrainSettings."""


@pytest.fixture
def train_settings(monkeypatch):
    """Run `fit` up to meta-training and return the TrainSettings it got."""

    def stop(X, y, settings, targets=None, init=None, description=None, groups=None):
        raise _Stop(settings)

    monkeypatch.setattr(skmeta._meta_training, "meta_train", stop)

    def run(estimator, *data, **fit_params):
        with pytest.raises(_Stop) as info:
            estimator.fit(*data, **fit_params)
        return info.value.args[0]

    return run


# -- methods and their settings come from the registry --------------------------


def test_a_registered_method_needs_no_estimator_change(blobs, monkeypatch):
    class FullContext(ALGORITHMS["protonet"]):
        name = "fullcontext"
        summary = "a stand-in for a method with a setting of its own"
        settings = ("distance", "full_context")

        def __init__(self, distance="euclidean", full_context=False):
            super().__init__(distance)
            self.full_context = full_context

    monkeypatch.setitem(ALGORITHMS, "fullcontext", FullContext)
    assert available_methods()["fullcontext"] == FullContext.summary
    X, y = blobs
    clf = FewShotClassifier(
        method="fullcontext", method_params={"full_context": True}, max_iter=2
    ).fit(X, y)
    assert clf.meta_model_.config["method_params"]["full_context"] is True
    with pytest.raises(ValueError, match="'fullcontext'"):  # listed in the error
        FewShotClassifier(method="nope").fit(X, y)


def test_regressor_methods_are_those_that_support_regression(blobs):
    expected = [name for name, cls in ALGORITHMS.items() if cls.supports_regression]
    assert list(available_methods("regression")) == expected
    unsupported = next(n for n, c in ALGORITHMS.items() if not c.supports_regression)
    with pytest.raises(ValueError, match="'method' parameter"):
        FewShotRegressor(method=unsupported).fit(*blobs)


@pytest.mark.parametrize(
    "estimator, match",
    [
        (
            FewShotClassifier(method="maml", distance="cosine"),
            "distance='cosine' does not apply to method='maml' .it takes inner_lr, "
            "inner_steps, first_order, inner_batch_size.; methods that take "
            "distance: protonet",
        ),
        (FewShotClassifier(inner_lr=0.1), "inner_lr=0.1 does not apply to method='p"),
        (
            FewShotClassifier(method="reptile", first_order=True),
            "first_order=True does not apply to method='reptile'",
        ),
        (
            FewShotClassifier(method_params={"full_context": True}),
            "method_params has 'full_context', which method='protonet' does not "
            "take: it takes distance",
        ),
        (
            FewShotClassifier(
                method="maml", inner_lr=0.1, method_params={"inner_lr": 1}
            ),
            "inner_lr given both as a parameter and in method_params",
        ),
        (FewShotClassifier(distance="manhattan"), "distance must be one of"),
        (MetaFeatureExtractor(method="anil", distance="cosine"), "does not apply"),
        (FewShotRegressor(distance="cosine"), "no regression method takes distance"),
        (FewShotRegressor(n_way=5), "'n_way' parameter of FewShotRegressor"),
        (FewShotRegressor(class_augmentation="rot90"), "'class_augmentation' param"),
    ],
)
def test_settings_the_method_does_not_take_are_refused(
    estimator, match, blobs, train_settings
):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        train_settings(estimator, X, y)  # refused before meta-training


def test_method_settings_reach_meta_training(blobs, train_settings):
    X, y = blobs
    maml = train_settings(
        FewShotClassifier(method="maml", method_params={"inner_steps": 2}), X, y
    )
    assert maml.method == "maml" and maml.method_params == {"inner_steps": 2}
    cosine = train_settings(FewShotClassifier(distance="cosine"), X, y)
    assert cosine.method == "protonet" and cosine.method_params == {
        "distance": "cosine"
    }
    assert train_settings(FewShotClassifier(), X, y).method_params == {}
    X, y, groups = make_sinusoid_tasks(10, 20, random_state=0)
    reg = train_settings(FewShotRegressor(inner_steps=3), X, y, groups=groups)
    assert (reg.method, reg.n_way, reg.k_shot, reg.n_query) == ("maml", 1, 10, 10)
    assert reg.method_params == {"inner_lr": 0.01, "inner_steps": 3, "regression": True}


def test_learning_rate_none_takes_the_methods_default(blobs, train_settings):
    X, y = blobs
    rate = train_settings(FewShotClassifier(), X, y).learning_rate
    assert rate == ALGORITHMS["protonet"].default_learning_rate == 4e-3
    rate = train_settings(FewShotClassifier(method="maml"), X, y).learning_rate
    assert rate == ALGORITHMS["maml"].default_learning_rate == 1e-3
    given = train_settings(FewShotClassifier(learning_rate=0.02), X, y)
    assert given.learning_rate == 0.02
    # ProtoNet's rate is its own, not inherited by its subclasses (pretrain,
    # baseline++, rfs), as the docstring says: every other method takes 1e-3
    others = {m: a.default_learning_rate for m, a in ALGORITHMS.items()}
    assert others.pop("protonet") == 4e-3
    assert set(others.values()) == {1e-3}


@pytest.mark.parametrize("n_jobs", [None, 1, 2, -1])
def test_n_jobs_reaches_meta_training(blobs, train_settings, n_jobs):
    X, y = blobs
    settings = train_settings(FewShotClassifier(method="maml", n_jobs=n_jobs), X, y)
    assert settings.n_jobs == n_jobs


@pytest.mark.parametrize(
    "params, reason",
    [
        (dict(method="protonet"), "one batched pass.*maml"),
        (dict(method="pretrain"), "one batched pass"),
        (dict(method="maml", precision="bfloat16"), "reference meta-gradient"),
    ],
)
def test_n_jobs_warns_where_it_does_not_apply(blobs, params, reason):
    X, y = blobs
    est = FewShotClassifier(n_jobs=2, max_iter=2, **params)
    with pytest.warns(UserWarning, match=f"n_jobs=2 is ignored: .*{reason}"):
        est.fit(X, y)


def test_n_jobs_does_not_warn_where_it_applies(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FewShotClassifier(method="maml", n_jobs=2, max_iter=2).fit(X, y)


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2"])
def test_bad_n_jobs_is_refused(blobs, n_jobs):
    with pytest.raises(ValueError, match="'n_jobs' parameter"):
        FewShotClassifier(n_jobs=n_jobs).fit(*blobs)


# -- with pretrained=: what adapts, what must match, what warns -----------------


def test_distance_is_fixed_by_meta_training(blob_model, blobs):
    X, y = _novel(blobs)
    assert FewShotClassifier().distance is None
    assert blob_model.config["method_params"]["distance"] == "euclidean"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FewShotClassifier(pretrained=blob_model, distance="euclidean").fit(X, y)
    for clf in (
        FewShotClassifier(pretrained=blob_model, distance="cosine"),
        FewShotClassifier(pretrained=blob_model, method_params={"distance": "cosine"}),
    ):
        with pytest.raises(
            ValueError,
            match="distance='cosine' differs from the pretrained model's 'euclidean'",
        ):
            clf.fit(X, y)


def test_first_order_is_fixed_and_the_inner_loop_adapts(maml_model, blobs):
    X, y = _novel(blobs)
    with pytest.raises(ValueError, match="first_order=True differs .* False"):
        FewShotClassifier(pretrained=maml_model, first_order=True).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = FewShotClassifier(pretrained=maml_model, inner_steps=3).fit(X, y)
    assert clf._algorithm().inner_steps == 3
    with pytest.raises(ValueError, match="distance=.cosine. does not apply"):
        FewShotClassifier(pretrained=maml_model, distance="cosine").fit(X, y)


def test_a_pretrained_metasgd_model_refuses_inner_lr(blobs):
    X, y = blobs
    model = (
        FewShotClassifier(method="metasgd", n_way=5, k_shot=1, n_query=2, max_iter=2)
        .fit(X[y < 16], y[y < 16])
        .meta_model_
    )
    X, y = _novel(blobs)
    with pytest.raises(ValueError, match="meta-learnt per-weight learning rates"):
        FewShotClassifier(pretrained=model, inner_lr=0.1).fit(X, y)
    FewShotClassifier(pretrained=model, inner_steps=2).fit(X, y)


def test_meta_training_parameters_with_pretrained_warn_once(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(
        pretrained=blob_model, max_iter=50, k_shot=2, input_shape=(10,), n_jobs=2
    )
    with pytest.warns(UserWarning) as record:
        clf.fit(X, y)
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "FewShotClassifier reuses the pretrained model, so these meta-training "
        "settings are ignored: input_shape=(10,), k_shot=2, max_iter=50, n_jobs=2."
    )
    assert record[0].filename == __file__  # points at the caller's fit


def test_defaults_with_pretrained_are_quiet_in_a_grid_search(maml_model, blobs):
    X, y = _novel(blobs)
    cv = EpisodicSplit(n_way=3, k_shot=1, n_query=2, n_episodes=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GridSearchCV(
            FewShotClassifier(pretrained=maml_model),
            {"inner_steps": [1, 2], "inner_lr": [None, 0.1]},
            cv=cv,
            error_score="raise",
        ).fit(X, y)
        MetaFeatureExtractor(pretrained=maml_model).fit(X)


def test_extractor_warns_that_it_does_not_adapt(maml_model, blobs):
    X, _ = _novel(blobs)
    with pytest.warns(UserWarning, match="ignored: inner_steps=3"):
        MetaFeatureExtractor(pretrained=maml_model, inner_steps=3).fit(X)


def test_regressor_warns_about_groups_with_pretrained():
    X, y, groups = make_sinusoid_tasks(20, 10, random_state=0)
    model = FewShotRegressor(max_iter=2, random_state=0).fit(X, y, groups=groups)
    reg = FewShotRegressor(pretrained=model.meta_model_)
    with pytest.warns(UserWarning, match="ignored: max_iter=5, groups"):
        reg.set_params(max_iter=5).fit(X[:10], y[:10], groups=groups[:10])
    assert model.meta_model_.config["method_params"]["inner_lr"] == 0.01
    assert np.isfinite(reg.predict(X[:10])).all()


# -- Ctrl-C, checkpoints and warm starts -------------------------------------------


@pytest.fixture
def interrupt_at(monkeypatch):
    """Make meta-training raise KeyboardInterrupt after iteration `n`'s update."""

    def at(n):
        step = History.on_step_end

        def interrupted(self, loop, loss, metrics):
            step(self, loop, loss, metrics)
            if loop.n_iter == n:
                raise KeyboardInterrupt

        monkeypatch.setattr(History, "on_step_end", interrupted)

    return at


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_an_interrupted_fit_resumes_from_its_checkpoint(
    blobs, tmp_path, interrupt_at, monkeypatch, estimator
):
    if estimator == "classifier":
        make, (X, y), groups = FewShotClassifier, blobs, {}
    else:
        X, y, g = make_sinusoid_tasks(20, 10, random_state=0)
        make, groups = FewShotRegressor, {"groups": g}
    path = tmp_path / "run.ckpt"
    est = make(max_iter=30, checkpoint=path, checkpoint_every=5, random_state=0)
    interrupt_at(17)
    with pytest.warns(UserWarning, match="interrupted .KeyboardInterrupt. after 17"):
        est.fit(X, y, **groups)  # Ctrl-C: fitted with the model so far
    assert est.n_iter_ == 17 and np.isfinite(est.predict(X)).all()
    monkeypatch.undo()
    resumed = est.fit(X, y, **groups).meta_model_  # from iteration 15
    assert est.n_iter_ == 30
    assert est.history_[0]["iter"] == 1  # the history before the interruption
    whole = make(max_iter=30, random_state=0).fit(X, y, **groups).meta_model_
    for name, value in whole.state.items():
        assert torch.equal(resumed.state[name], value), name
    np.testing.assert_array_equal(
        est.predict(X), make(pretrained=whole).fit(X, y).predict(X)
    )
    with pytest.raises(ValueError, match="max_iter=30 there, 40 here"):
        est.set_params(max_iter=40).fit(X, y, **groups)


def test_without_random_state_a_resumed_fit_keeps_the_checkpoint_seed(
    blobs, tmp_path, interrupt_at, monkeypatch
):
    X, y = blobs
    path = tmp_path / "run.ckpt"
    clf = FewShotClassifier(max_iter=20, checkpoint=path)
    interrupt_at(12)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.undo()
    seed = recorded_seed(path)
    assert clf.fit(X, y).n_iter_ == 20  # not refused for another seed
    assert clf.meta_model_.config["training"]["seed"] == seed


def test_warm_start_meta_trains_max_iter_more_iterations(blobs):
    X, y = blobs
    clf = FewShotClassifier(max_iter=10, warm_start=True, random_state=0).fit(X, y)
    first = clf.meta_model_
    assert clf.fit(X, y).n_iter_ == 20
    assert [r["iter"] for r in clf.history_] == list(range(1, 21))
    assert clf.meta_model_ is not first
    assert any(
        not torch.equal(clf.meta_model_.state[name], value)
        for name, value in first.state.items()
    )
    cold = clf.set_params(warm_start=False).fit(X, y)
    assert cold.n_iter_ == 10
    for name, value in first.state.items():
        assert torch.equal(cold.meta_model_.state[name], value)
    clf.set_params(warm_start=True, backbone_params={"hidden_sizes": (8,)})
    with pytest.raises(ValueError, match="warm_start=True continues the fitted model"):
        clf.fit(X, y)


def test_an_interrupted_warm_started_fit_resumes_from_its_checkpoint(
    blobs, tmp_path, interrupt_at, monkeypatch
):
    X, y = blobs
    home = pytest.MonkeyPatch()  # the checkpoint as "~/warm.ckpt"
    home.setenv("HOME", str(tmp_path))
    try:
        clf = FewShotClassifier(max_iter=10, random_state=0).fit(X, y)
        clf.set_params(warm_start=True, checkpoint="~/warm.ckpt", max_iter=20)
        clf.set_params(checkpoint_every=2)
        interrupt_at(15)
        with pytest.warns(UserWarning, match="interrupted"):
            clf.fit(X, y)  # holds the cut-short model now
        assert clf.n_iter_ == 25
        monkeypatch.undo()
        clf.fit(X, y)  # resumes the fit that started from the 10-iteration model
        assert clf.n_iter_ == 30
    finally:
        home.undo()
    whole = FewShotClassifier(max_iter=10, random_state=0).fit(X, y)
    whole.set_params(warm_start=True, max_iter=20).fit(X, y)
    for name, value in whole.meta_model_.state.items():
        assert torch.equal(clf.meta_model_.state[name], value), name
    # that fit done, the next one continues from its model, under a new path
    clf.set_params(checkpoint=tmp_path / "next.ckpt").fit(X, y)
    assert clf.n_iter_ == 50


@pytest.mark.parametrize("tool", ["grid_search", "refit", "cross_val_score"])
def test_ctrl_c_inside_a_search_stops_the_search(blobs, monkeypatch, tool):
    from sklearn.model_selection import cross_val_score

    X, y = blobs
    fits = []
    begin, step = History.on_train_begin, History.on_step_end
    interrupted_fit = 4 if tool == "refit" else 1  # 3 splits, then the refit

    def count(self, loop):
        fits.append(1)
        begin(self, loop)

    def interrupt(self, loop, loss, metrics):
        step(self, loop, loss, metrics)
        if loop.n_iter == 2 and len(fits) == interrupted_fit:
            raise KeyboardInterrupt

    clf = FewShotClassifier(max_iter=5, n_way=3, random_state=0)
    with monkeypatch.context() as patch:
        patch.setattr(History, "on_train_begin", count)
        patch.setattr(History, "on_step_end", interrupt)
        with pytest.warns(UserWarning, match="interrupted"):
            with pytest.raises(KeyboardInterrupt, match="stops here rather than"):
                if tool == "cross_val_score":
                    cross_val_score(clf, X, y, cv=3)
                else:
                    grid = [5, 6] if tool == "grid_search" else [5]
                    GridSearchCV(clf, {"max_iter": grid}, cv=3).fit(X, y)
        assert len(fits) == interrupted_fit  # no fit after the interrupted one
        fits[:] = fits[1:]  # the next fit is interrupted too
        with pytest.warns(UserWarning, match="interrupted"):  # outside a search:
            assert clf.fit(X, y).n_iter_ == 2  # the model so far


def test_checkpoint_and_warm_start_with_pretrained_warn(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model, warm_start=True, checkpoint="c")
    with pytest.warns(UserWarning, match="ignored: warm_start=True, checkpoint='c'"):
        clf.fit(X, y)


@pytest.mark.parametrize(
    "params", [dict(checkpoint=3), dict(checkpoint_every=0), dict(warm_start="yes")]
)
def test_bad_checkpoint_parameters_are_refused(blobs, params):
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        FewShotClassifier(**params).fit(*blobs)


def test_no_convergence_warning_when_stopped_early_or_levelled_off(blobs):
    from sklearn.exceptions import ConvergenceWarning

    from skmeta._loss_warnings import warn_if_still_improving

    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        # early stopping ends before max_iter
        FewShotClassifier(
            max_iter=2000, early_stopping=True, n_iter_no_change=2, random_state=0
        ).fit(X, y)

    class Levelled:  # a history whose loss has flattened out
        config = {"training": {"n_iter": 100}}
        history = [{"loss": 1.0 + 0.001 * (i % 2)} for i in range(20)]

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warn_if_still_improving(Levelled, 100)
    Levelled.history = [{"loss": 4e-10 * (i < 12)} for i in range(20)]
    with warnings.catch_warnings():  # a loss that has reached 0 (a reviewer's)
        warnings.simplefilter("error", ConvergenceWarning)
        warn_if_still_improving(Levelled, 100)
    Levelled.history = [{"loss": 2.0 - 0.05 * i} for i in range(20)]
    with pytest.warns(ConvergenceWarning, match="still falling"):
        warn_if_still_improving(Levelled, 100)


def test_a_loss_that_never_falls_warns_that_nothing_was_learnt(blobs):
    X, y = blobs
    with pytest.warns(UserWarning, match="loss did not fall") as got:
        FewShotClassifier(max_iter=200, learning_rate=1e-9, random_state=0).fit(X, y)
    # not also told to train longer
    assert not [w for w in got if "still falling" in str(w.message)]
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        FewShotClassifier(max_iter=200, random_state=0).fit(X, y)
    assert not [w for w in got if "did not fall" in str(w.message)]


def test_image_rows_given_another_way_warn():
    """(height, width, channels) built a net of 84 input channels, and uint8
    image rows without input_shape became an MLP, both silently (a reviewer)."""
    from skmeta._checks import check_input_shape

    with pytest.warns(UserWarning, match=r"pass input_shape=\(3, 84, 64\)"):
        assert check_input_shape((84, 64, 3), 84 * 64 * 3) == (84, 64, 3)
    with pytest.warns(UserWarning, match=r"input_shape=\(1, 28, 28\)"):
        check_input_shape(None, 784, np.uint8)
    with pytest.warns(UserWarning, match=r"input_shape=\(3, 32, 32\)"):
        check_input_shape(None, 3 * 32 * 32, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_input_shape((3, 84, 64), 84 * 64 * 3)
        check_input_shape((1, 28, 28), 784)
        check_input_shape(None, 784)  # float rows: a table as often as not
        check_input_shape(None, 10, np.uint8)


def test_a_checkpoint_inside_a_search_is_refused_up_front(blobs, tmp_path):
    """Clones share the one file: parallel folds overwrote each other's and
    the search failed at its refit, after all the work (a reviewer)."""
    from sklearn.model_selection import cross_validate

    X, y = blobs
    clf = FewShotClassifier(max_iter=3, checkpoint=tmp_path / "run.ckpt")
    with pytest.raises(ValueError, match="inside a scikit-learn search"):
        cross_validate(clf, X, y, cv=2, error_score="raise")
    assert not (tmp_path / "run.ckpt").exists()
