"""The estimators' warnings about features constant in meta-training (which
the network ignores): named at fit, and at transform, predict or a
pretrained model's fit when they vary in the rows given."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor

SMALL = dict(n_way=4, k_shot=2, n_query=3, max_iter=3, random_state=0)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(12), 10)
    X = (rng.normal(size=(120, 8)) + y[:, None] * 0.5).astype(np.float32)
    X[:, [2, 5]] = 1.5  # constant in meta-training
    return X, y


def _varied(X):
    out = X.copy()
    out[:, 5] = np.random.default_rng(1).normal(size=len(X))
    return out


def _messages(record, text):
    return [str(w.message) for w in record if text in str(w.message)]


def test_fit_names_the_constant_columns_by_index(table):
    X, y = table
    with pytest.warns(UserWarning, match="constant in the meta-training") as rec:
        MetaFeatureExtractor(**SMALL).fit(X, y)
    (message,) = _messages(rec, "constant in the meta-training")
    assert "column 2, column 5" in message


def test_fit_names_them_by_feature_name(table):
    X, y = table
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    with pytest.warns(UserWarning, match="'f2', 'f5'"):
        FewShotClassifier(**SMALL).fit(frame, y)


def test_transform_warns_once_when_an_ignored_column_varies(table):
    X, y = table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ext = MetaFeatureExtractor(**SMALL).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows where they stay constant: silent
        same = ext.transform(X)
    with pytest.warns(UserWarning, match="vary in these rows") as rec:
        varied = ext.transform(_varied(X))
    (message,) = _messages(rec, "vary in these rows")
    assert "column 5" in message and "column 2" not in message
    np.testing.assert_array_equal(varied, same)  # and they change nothing


def test_a_pretrained_classifier_warns_at_fit_and_predict(table):
    X, y = table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MetaFeatureExtractor(**SMALL).fit(X, y).meta_model_
    clf = FewShotClassifier(pretrained=model)
    with pytest.warns(UserWarning, match="vary in these rows"):
        clf.fit(_varied(X), y)
    with pytest.warns(UserWarning, match="vary in these rows"):
        varied = clf.predict_proba(_varied(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(clf.predict_proba(X), varied)


def test_a_regressor_warns_at_predict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    X[:, 1] = 0.0
    y = X[:, 0] * rng.normal(size=20).repeat(10)
    groups = np.arange(20).repeat(10)
    with pytest.warns(UserWarning, match="column 1"):
        reg = FewShotRegressor(k_shot=3, n_query=3, max_iter=2, random_state=0)
        reg.fit(X, y, groups=groups)
    with pytest.warns(UserWarning, match="vary in these rows"):
        reg.predict(np.where(np.arange(4) == 1, rng.normal(size=(5, 4)), X[:5]))


def test_no_warning_without_constant_columns(table):
    X, y = table
    X = X + np.random.default_rng(2).normal(size=X.shape).astype(np.float32)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ext = MetaFeatureExtractor(**SMALL).fit(X, y)
        ext.transform(X)
    assert not _messages(rec, "meta-training data")
