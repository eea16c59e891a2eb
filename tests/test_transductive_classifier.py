"""FewShotClassifier(transductive=...): y == -1 rows are unlabelled."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor
from skmeta._base import MetaEstimator
from skmeta.meta.model import MetaModel
from skmeta.meta.transductive import TRANSDUCTIVE, make_transductive

N_CLASSES, DIM = 4, 16
LABELS = np.array([3, 7, 11, 20])  # class names that are not codes
FAST = {"tim": {"n_iter": 200}, "alpha-tim": {"n_iter": 200}}


@pytest.fixture(scope="module")
def identity_model():
    """A model whose embedding is the row itself: what the methods see is
    the synthetic data."""
    return MetaModel.from_module(torch.nn.Identity(), input_shape=(DIM,))


def make_rows(seed, per_class, outlier=3.0):
    """One labelled row per class, `outlier` away from its class centre, then
    `per_class` unlabelled rows per class around the centres."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(N_CLASSES, DIM) + 2.0
    directions = rng.normal(size=(N_CLASSES, DIM))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    support = centres + outlier * directions
    rows = np.repeat(centres, per_class, axis=0)
    rows += 0.7 * rng.normal(size=rows.shape)
    X = np.vstack([support, rows]).astype(np.float32)
    truth = np.concatenate([LABELS, np.repeat(LABELS, per_class)])
    y = np.concatenate([LABELS, np.full(len(rows), -1)])
    return X, y, truth


def transductive(model, name, **kwargs):
    return FewShotClassifier(
        pretrained=model,
        transductive=name,
        transductive_params=FAST.get(name),
        **kwargs,
    )


@pytest.mark.parametrize("name", list(TRANSDUCTIVE))
def test_transduction_labels_every_row_as_the_torch_layer(identity_model, name):
    X, y, truth = make_rows(0, 10)
    clf = transductive(identity_model, name).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, LABELS)
    assert clf.transduction_.shape == y.shape
    labelled = y != -1
    np.testing.assert_array_equal(clf.transduction_[labelled], y[labelled])
    state = make_transductive(name, **FAST.get(name, {})).fit(
        torch.from_numpy(X[labelled]),
        torch.arange(N_CLASSES),
        torch.from_numpy(X[~labelled]),
        N_CLASSES,
    )
    inferred = LABELS[state["unlabelled_scores"].argmax(1).numpy()]
    np.testing.assert_array_equal(clf.transduction_[~labelled], inferred)
    assert set(clf.adapted_) == set(state)
    proba = clf.predict_proba(X[:7])
    assert proba.shape == (7, N_CLASSES) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert clf.decision_function(X[:7]).shape == (7, N_CLASSES)


@pytest.mark.parametrize("name", ["bdcspn", "laplacianshot", "ptmap"])
def test_the_unlabelled_rows_improve_fit_and_predict(identity_model, name):
    gains_fit, gains_predict = [], []
    for seed in range(3):
        X, y, truth = make_rows(seed, 15)
        new_X, _, new_truth = make_rows(seed + 100, 15)  # fresh rows, same classes
        new_X, new_truth = new_X[N_CLASSES:], new_truth[N_CLASSES:]
        labelled = y != -1
        inductive = FewShotClassifier(pretrained=identity_model)
        inductive.fit(X[labelled], y[labelled])
        clf = transductive(identity_model, name).fit(X, y)
        unlabelled = ~labelled
        gains_fit.append(
            np.mean(clf.transduction_[unlabelled] == truth[unlabelled])
            - inductive.score(X[unlabelled], truth[unlabelled])
        )
        gains_predict.append(
            clf.score(new_X, new_truth) - inductive.score(new_X, new_truth)
        )
    assert np.mean(gains_fit) > 0.02
    assert np.mean(gains_predict) > 0.02


def test_no_unlabelled_row_is_the_methods_inductive_form(identity_model):
    X, y, _ = make_rows(1, 5)
    labelled = y != -1
    with pytest.warns(UserWarning, match="got no unlabelled row"):
        clf = transductive(identity_model, "bdcspn").fit(X[labelled], y[labelled])
    np.testing.assert_array_equal(clf.transduction_, y[labelled])
    # BD-CSPN without unlabelled rows: cosine nearest labelled row (1-shot)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    expected = LABELS[(unit[~labelled] @ unit[labelled].T).argmax(1)]
    np.testing.assert_array_equal(clf.predict(X[~labelled]), expected)


def test_a_wrapper_that_passes_no_unlabelled_row_is_named_in_the_warning(
    identity_model,
):
    # SelfTrainingClassifier fits its estimator on the labelled rows alone:
    # the advice is to fit the transductive classifier itself, not a search
    from sklearn.semi_supervised import SelfTrainingClassifier

    X, y, truth = make_rows(3, 5)
    wrapper = SelfTrainingClassifier(transductive(identity_model, "bdcspn"))
    with pytest.warns(UserWarning, match="no unlabelled row") as got:
        wrapper.fit(X, y)
    message = str(got[0].message)
    assert "SelfTrainingClassifier" in message
    assert "fit this classifier itself with them marked y == -1" in message
    direct = transductive(identity_model, "bdcspn").fit(X, y)  # as advised
    unlabelled = y == -1
    assert np.mean(direct.transduction_[unlabelled] == truth[unlabelled]) > 0.5


@pytest.mark.parametrize("wrapper", ["voting", "one-vs-rest"])
def test_a_wrapper_that_re_encodes_the_labels_is_named_in_the_warning(
    identity_model, wrapper
):
    """VotingClassifier and OneVsRestClassifier fit their members on codes
    of y, so y == -1 reaches them as a class: the warning says so (it named
    wrappers of labelled rows only), and the wrapper's classes_ hold -1."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.multiclass import OneVsRestClassifier

    X, y, _ = make_rows(3, 5)
    member = transductive(identity_model, "bdcspn")
    if wrapper == "voting":
        meta = VotingClassifier([("t", member)], voting="soft")
    else:
        meta = OneVsRestClassifier(member)
    with pytest.warns(UserWarning, match="no unlabelled row") as got:
        meta.fit(X, y)
    message = str(got[0].message)
    assert "re-encodes the labels" in message and "makes -1 a class" in message
    assert -1 in meta.classes_


def test_default_keeps_minus_one_an_ordinary_label(identity_model):
    X, y, _ = make_rows(0, 3)
    clf = FewShotClassifier(pretrained=identity_model).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.concatenate([[-1], LABELS]))
    assert not hasattr(clf, "transduction_")
    assert set(clf.adapted_) == {"prototypes", "sums", "counts"}
    # an inductive refit of a transductive classifier keeps nothing of it
    clf.set_params(transductive="bdcspn").fit(X, y)
    assert hasattr(clf, "transduction_") and "shift" in clf.adapted_
    clf.set_params(transductive=None).fit(X, y)
    assert not hasattr(clf, "transduction_") and "shift" not in clf.adapted_


def test_string_labels_with_minus_one(identity_model):
    X, y, truth = make_rows(0, 4)
    names = np.array(["w", "x", "y", "z"])
    as_text = np.array(
        [names[np.searchsorted(LABELS, v)] if v != -1 else -1 for v in y], dtype=object
    )
    clf = transductive(identity_model, "bdcspn").fit(X, as_text)
    np.testing.assert_array_equal(clf.classes_, names)
    numeric = transductive(identity_model, "bdcspn").fit(X, y)
    expected = names[np.searchsorted(LABELS, numeric.transduction_)]
    np.testing.assert_array_equal(clf.transduction_, expected)


def test_boolean_labels_with_minus_one(identity_model):
    """Bools beside the integer -1 of the unlabelled rows (an object array,
    which episodic_score builds itself) are bool classes, as inductively."""
    from skmeta import episodic_score

    X, y, _ = make_rows(0, 4)
    two = np.isin(y, LABELS[:2]) | (y == -1)
    X, y = X[two], y[two]
    flags = np.array([bool(v == LABELS[0]) if v != -1 else -1 for v in y], object)
    clf = transductive(identity_model, "bdcspn").fit(X, flags)  # raised before
    assert clf.classes_.dtype == bool and clf.classes_.tolist() == [False, True]
    numeric = transductive(identity_model, "bdcspn").fit(X, y)
    np.testing.assert_array_equal(clf.transduction_, numeric.transduction_ == LABELS[0])
    truth = np.arange(40) % 2 == 0
    rows = np.vstack([X[:2]] * 20)
    score = episodic_score(
        transductive(identity_model, "bdcspn"),
        rows,
        truth,
        n_way=2,
        n_query=5,
        n_episodes=3,
        random_state=0,
    )
    assert 0 <= score.mean <= 1


@pytest.mark.parametrize("dtype", [str, object])
def test_the_string_minus_one_is_a_class_and_warns(identity_model, dtype):
    """In an object array too, the array the docs recommend for marking rows
    beside string labels, where it became a class in silence (reviewer)."""
    X, y, _ = make_rows(0, 4)
    as_text = y.astype(str).astype(dtype)  # "-1" among "3", "7": not the marker
    with pytest.warns(UserWarning, match="string '-1', which is taken as a class"):
        clf = transductive(identity_model, "bdcspn").fit(X, as_text)
    assert "-1" in clf.classes_


def test_meta_training_uses_the_labelled_rows_only(monkeypatch):
    seen = {}
    original = MetaEstimator._meta_train

    def spy(self, X, labels, *args):
        seen["rows"], seen["labels"] = len(X), set(labels.tolist())
        return original(self, X, labels, *args)

    monkeypatch.setattr(MetaEstimator, "_meta_train", spy)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8)).astype(np.float32) + np.repeat(
        np.eye(6, 8) * 4, 20, 0
    )
    y = np.repeat(np.arange(6), 20)
    y_semi = np.where(np.arange(120) % 4 == 0, -1, y)
    clf = FewShotClassifier(
        transductive="bdcspn", max_iter=3, n_way=3, k_shot=2, n_query=3, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y_semi)
    assert seen == {"rows": 90, "labels": set(range(6))}
    assert clf.transduction_.shape == (120,)
    np.testing.assert_array_equal(clf.classes_, np.arange(6))


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"transductive": "tim", "method": "maml"}, ValueError, "nearest prototype"),
        (
            {"transductive": "tim", "method": "matching"},
            ValueError,
            "method='matching'",
        ),
        ({"transductive_params": {"lam": 1.0}}, ValueError, "transductive=None"),
        (
            {"transductive": "ptmap", "transductive_params": {"lam": 1.0, "k": 2}},
            ValueError,
            "'k', which transductive='ptmap' does not take",
        ),
        ({"transductive": "nope"}, ValueError, "transductive"),
    ],
)
def test_refused_settings(params, error, message):
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = np.repeat(np.arange(4), 10)
    with pytest.raises(error, match=message):
        FewShotClassifier(max_iter=1, **params).fit(X, y)


def test_a_pretrained_model_of_another_method_is_refused(identity_model):
    maml = MetaModel.from_module(torch.nn.Identity(), input_shape=(DIM,), method="maml")
    X, y, _ = make_rows(0, 2)
    with pytest.raises(ValueError, match="method='maml' does not"):
        transductive(maml, "bdcspn").fit(X, y)


def test_the_methods_deployment_settings_warn_as_ignored(identity_model):
    X, y, _ = make_rows(0, 2)
    clf = transductive(identity_model, "bdcspn", method_params={"feature_norm": "l2"})
    with pytest.warns(UserWarning, match="feature_norm='l2' is ignored with"):
        clf.fit(X, y)
    # the same labels as without the setting: it was not applied
    plain = transductive(identity_model, "bdcspn").fit(X, y)
    np.testing.assert_array_equal(clf.transduction_, plain.transduction_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.fit(X, y)  # no setting given, no warning


def test_labelled_rows_are_needed(identity_model):
    X, y, _ = make_rows(0, 2)
    with pytest.raises(ValueError, match="Every row of y is -1"):
        transductive(identity_model, "bdcspn").fit(X, np.full(len(y), -1))
    one_class = np.where(y == LABELS[0], y, -1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        transductive(identity_model, "bdcspn").fit(X, one_class)


def test_a_class_labelled_minus_one_is_named_as_the_reason(identity_model):
    # classes -1 and 1 (scikit-learn's check_classifiers_classes): under
    # transductive the -1 rows are unlabelled, leaving one class
    X, _, truth = make_rows(0, 3)
    y = np.where(truth == LABELS[0], -1, 1)
    with pytest.raises(ValueError, match="reads as 'unlabelled'.*e.g. y \\+ 1"):
        transductive(identity_model, "bdcspn").fit(X, y)
    with pytest.warns(UserWarning, match="no unlabelled row"):  # the fix works
        clf = transductive(identity_model, "bdcspn").fit(X, y + 1)
    np.testing.assert_array_equal(clf.classes_, [0, 2])


def test_regressor_refuses_and_extractor_warns(identity_model):
    X = np.random.default_rng(0).normal(size=(40, DIM)).astype(np.float32)
    with pytest.raises(ValueError, match="transductive"):
        FewShotRegressor(transductive="tim").fit(X, X[:, 0])
    extractor = MetaFeatureExtractor(pretrained=identity_model, transductive="tim")
    with pytest.warns(UserWarning, match="transductive='tim' is ignored"):
        extractor.fit(X)


def test_clone_get_params_and_pickle(identity_model):
    X, y, _ = make_rows(0, 5)
    clf = transductive(identity_model, "laplacianshot")
    params = clone(clf).get_params()
    assert params["transductive"] == "laplacianshot"
    assert params["transductive_params"] is None
    clf.set_params(transductive_params={"lam": 0.3}).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.transduction_, clf.transduction_)
    np.testing.assert_array_equal(
        restored.decision_function(X), clf.decision_function(X)
    )
    assert clone(clf).transductive_params == {"lam": 0.3}


def test_episodic_score_gives_the_episodes_queries_as_unlabelled_rows(identity_model):
    from skmeta import episodic_score

    X, _, truth = make_rows(2, 6)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        episodic_score(
            transductive(identity_model, "bdcspn"),
            X,
            truth,
            n_way=3,
            n_query=3,
            n_episodes=3,
            random_state=0,
        )
    assert not [w for w in got if "no unlabelled row" in str(w.message)]


@pytest.mark.parametrize("n_rows", [1, N_CLASSES - 1])
def test_fewer_unlabelled_rows_than_classes_warn(identity_model, n_rows):
    """One -1 row per fit labelled 24% right with bdcspn, 17% with ptmap at
    5-way 1-shot on Omniglot (79.5% inductive), in silence."""
    X, y, _ = make_rows(0, 1)
    X, y = X[: N_CLASSES + n_rows], y[: N_CLASSES + n_rows]
    with pytest.warns(UserWarning, match=f"got {n_rows} unlabelled row.* for 4 cl"):
        clf = transductive(identity_model, "bdcspn").fit(X, y)
    assert not clf.adapted_["shift"].any()  # skipped: too few rows for it
    with pytest.warns(UserWarning, match="every class present"):
        with pytest.raises(ValueError, match="transductive='ptmap' got"):
            transductive(identity_model, "ptmap").fit(X, y)
    X, y, _ = make_rows(0, 1)  # one row per class: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        transductive(identity_model, "bdcspn").fit(X, y)


def test_laplacianshot_center_base_takes_the_models_base_mean(identity_model, blobs):
    X, y = blobs
    base = FewShotClassifier(max_iter=5, n_way=5, k_shot=1, random_state=0)
    model = base.fit(X[y < 16], y[y < 16]).meta_model_
    rows = np.flatnonzero(y >= 16)[:40]
    labels = np.where(np.arange(40) < 8, -1, y[rows])
    clf = FewShotClassifier(
        pretrained=model,
        transductive="laplacianshot",
        transductive_params={"center": "base"},
    ).fit(X[rows], labels)
    stored = model.network("cpu").extra["base_mean"].double()
    torch.testing.assert_close(clf.adapted_["center"], stored)
    wrapped = FewShotClassifier(
        pretrained=identity_model,
        transductive="laplacianshot",
        transductive_params={"center": "base"},
    )
    X, y, _ = make_rows(0, 2)
    with pytest.raises(ValueError, match="this model does not hold.*center='task'"):
        wrapped.fit(X, y)
