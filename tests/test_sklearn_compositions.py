"""The estimators composed with the rest of scikit-learn as any estimator is:
wrappers, model inspection, curves, dataframe input and output, routing.

Labels are strings whose sorted order is the reverse of the blobs' class
numbers, so a probability column out of place shows as wrong predictions.
"""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.frozen import FrozenEstimator
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    TunedThresholdClassifierCV,
    cross_val_predict,
    learning_curve,
    validation_curve,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.utils import estimator_html_repr

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.meta.train import TrainSettings, meta_train


@pytest.fixture(scope="module")
def novel(blobs):
    """The 8 novel classes of the blobs (15 rows each), labelled "z".."s"."""
    X, y = blobs
    keep = y >= 16
    names = np.array([chr(ord("z") - c + 16) for c in range(16, 24)])
    return X[keep], names[y[keep] - 16]


@pytest.fixture(scope="module")
def maml_model(blobs):
    X, y = blobs
    base = y < 16
    settings = TrainSettings(
        method="maml", n_way=5, k_shot=2, n_query=5, input_shape=(10,), max_iter=5
    )
    return meta_train(X[base], y[base], settings)


def test_probability_wrappers_keep_the_columns_in_place(blob_model, novel):
    X, y = novel
    clf = FewShotClassifier(pretrained=blob_model)
    wrappers = [
        CalibratedClassifierCV(clf, cv=3),
        StackingClassifier([("few", clf), ("lr", LogisticRegression())], cv=3),
        VotingClassifier([("few", clf), ("lr", LogisticRegression())], voting="soft"),
    ]
    for wrapper in wrappers:
        wrapper.fit(X, y)
        np.testing.assert_array_equal(wrapper.classes_, np.unique(y))
        proba = wrapper.predict_proba(X)
        assert np.mean(wrapper.classes_[proba.argmax(1)] == y) > 0.9, wrapper


def test_frozen_classifier_is_not_refit_by_a_wrapper(blob_model, novel):
    X, y = novel
    fitted = FewShotClassifier(pretrained=blob_model).fit(X[::2], y[::2])
    prototypes = fitted.adapted_["prototypes"]
    stack = StackingClassifier([("few", FrozenEstimator(fitted))], cv=3).fit(X, y)
    assert stack.estimators_[0].estimator is fitted
    assert fitted.adapted_["prototypes"] is prototypes  # adapted to X[::2] only
    assert stack.score(X, y) > 0.9


def test_cross_val_predict_aligns_folds_missing_classes(blob_model, novel):
    X, y = novel
    order = np.argsort(y, kind="stable")  # KFold(3) splits 2 of the 8 classes
    X, y = X[order], y[order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "does not match"
        proba = cross_val_predict(
            FewShotClassifier(pretrained=blob_model),
            X,
            y,
            cv=KFold(3),
            method="predict_proba",
        )
    classes = np.unique(y)
    assert proba.shape == (len(y), classes.size)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    own = proba[np.arange(len(y)), np.searchsorted(classes, y)]
    split = np.isin(y, classes[[2, 5]])  # rows of these are in two folds
    assert (classes[proba[split].argmax(1)] == y[split]).all()
    assert (own[~split] == 0).all()  # a class missing from the training fold


def test_tuned_threshold_on_a_binary_problem(blob_model, novel):
    X, y = novel
    two = (y == "z") | (y == "y")
    tuned = TunedThresholdClassifierCV(
        FewShotClassifier(pretrained=blob_model), cv=3, scoring="balanced_accuracy"
    ).fit(X[two], y[two])
    np.testing.assert_array_equal(tuned.classes_, ["y", "z"])
    proba = tuned.estimator_.predict_proba(X[two])[:, 1]
    expected = np.where(proba >= tuned.best_threshold_, "z", "y")
    np.testing.assert_array_equal(tuned.predict(X[two]), expected)


def test_self_training_labels_the_minus_one_rows(blob_model, novel):
    # the wrapper's own -1 marker: an inductive classifier never sees it
    X, y = novel
    hidden = np.random.default_rng(0).random(len(y)) < 0.6
    partial = np.where(hidden, -1, y.astype(object))
    self_training = SelfTrainingClassifier(FewShotClassifier(pretrained=blob_model))
    self_training.fit(X, partial)
    np.testing.assert_array_equal(self_training.classes_, np.unique(y))
    assert np.mean(self_training.transduction_[hidden] == y[hidden]) > 0.9


def test_inspection_and_curves(blob_model, maml_model, novel):
    X, y = novel
    clf = FewShotClassifier(pretrained=blob_model).fit(X, y)
    importance = permutation_importance(clf, X, y, n_repeats=2, random_state=0)
    assert importance.importances_mean.shape == (10,)
    assert importance.importances_mean.max() > 0.05
    # partial_fit with classes= adds ProtoNet's sums: the refit curve's scores
    sizes = dict(cv=3, train_sizes=[0.1, 0.5, 1.0])
    incremental = learning_curve(clf, X, y, exploit_incremental_learning=True, **sizes)
    np.testing.assert_array_equal(incremental[2], learning_curve(clf, X, y, **sizes)[2])
    # inner_steps set by the curve reaches adaptation: the scores move with it
    _, test = validation_curve(
        FewShotClassifier(pretrained=maml_model),
        X,
        y,
        param_name="inner_steps",
        param_range=[1, 3],
        cv=3,
        scoring="neg_log_loss",
    )
    assert not np.allclose(test[0], test[1])


def test_nullable_and_polars_inputs_are_plain_numbers(blob_model, novel):
    pd = pytest.importorskip("pandas")
    X, y = novel
    columns = [f"f{i}" for i in range(10)]
    expected = FewShotClassifier(pretrained=blob_model).fit(X, y).predict_proba(X)
    frames = {"Float64": pd.DataFrame(X, columns=columns).astype("Float64")}
    try:
        import polars as pl

        frames["polars"] = pl.DataFrame(X, schema=columns)
    except ImportError:
        pass
    for kind, frame in frames.items():
        clf = FewShotClassifier(pretrained=blob_model).fit(frame, y)
        assert list(clf.feature_names_in_) == columns, kind
        np.testing.assert_allclose(clf.predict_proba(frame), expected, atol=1e-6)
    gap = frames["Float64"].copy()
    gap.iloc[3, 2] = pd.NA
    with pytest.raises(ValueError, match="Input X contains NaN"):
        FewShotClassifier(pretrained=blob_model).fit(gap, y)
    labels = pd.Categorical(y, categories=[*np.unique(y), "unused"])
    clf = FewShotClassifier(pretrained=blob_model).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, np.unique(y))  # no "unused"


@pytest.mark.parametrize("container", ["pandas", "polars"])
def test_dataframe_output_in_a_column_transformer(blob_model, blobs, container):
    pd = pytest.importorskip("pandas")
    pytest.importorskip(container)
    X, y = blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)], index=X[:, 0])
    frame["kind"] = np.where(y % 2, "odd", "even")
    columns = ColumnTransformer(
        [
            ("emb", MetaFeatureExtractor(pretrained=blob_model), frame.columns[:10]),
            ("kind", OneHotEncoder(sparse_output=False), ["kind"]),
        ]
    ).set_output(transform=container)
    out = columns.fit_transform(frame)
    names = [f"emb__metafeatureextractor{i}" for i in range(64)]
    assert list(out.columns) == [*names, "kind__kind_even", "kind__kind_odd"]
    assert list(columns.get_feature_names_out()) == list(out.columns)
    if container == "pandas":
        np.testing.assert_array_equal(out.index, frame.index)
    np.testing.assert_array_equal(
        np.asarray(out[names[:3]]), blob_model.transform(X)[:, :3]
    )


def test_pipeline_parameters_clone_repr_and_pickle(blob_model, blobs):
    X, y = blobs
    pipe = make_pipeline(
        StandardScaler(),
        MetaFeatureExtractor(pretrained=blob_model),
        LogisticRegression(max_iter=300),
    )
    params = pipe.get_params(deep=True)
    assert params["metafeatureextractor__pretrained"] is blob_model
    pipe.set_params(metafeatureextractor__device="cpu")
    assert pipe[1].device == "cpu"
    copy = clone(pipe)
    assert copy[1].pretrained is blob_model  # shared, never copied
    html = estimator_html_repr(pipe.fit(X, y))
    assert "MetaFeatureExtractor" in html and "MetaModel(" in html
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(restored.predict_proba(X), pipe.predict_proba(X))
    assert not hasattr(clone(pipe)[1], "meta_model_")


def test_routing_sends_groups_to_the_splitter_and_to_meta_training(blobs):
    X, y = blobs
    groups = y // 4  # 6 groups of 4 classes

    def pipe(**request):
        extractor = MetaFeatureExtractor(
            within_group_episodes=1.0, n_way=3, k_shot=2, n_query=2, max_iter=2
        )
        return make_pipeline(
            extractor.set_fit_request(**request), KNeighborsClassifier(1)
        )

    grid = {"kneighborsclassifier__n_neighbors": [1]}
    with sklearn.config_context(enable_metadata_routing=True):
        # meta-training with within_group_episodes needs them: routed to both
        search = GridSearchCV(pipe(groups=True), grid, cv=GroupKFold(2))
        search.fit(X, y, groups=groups)
        with pytest.raises(UnsetMetadataPassedError, match="MetaFeatureExtractor"):
            unset = GridSearchCV(pipe(), grid, cv=GroupKFold(2), error_score="raise")
            unset.fit(X, y, groups=groups)
