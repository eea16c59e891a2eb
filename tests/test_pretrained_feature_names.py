"""A pretrained model meta-trained on named columns checks X's names, as
scikit-learn checks an estimator's own (``check_feature_names``)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmeta import FewShotClassifier, MetaFeatureExtractor


@pytest.fixture(scope="module")
def named():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(12), 10)
    X = rng.normal(size=(12, 6))[y] * 3 + rng.normal(size=(y.size, 6))
    frame = pd.DataFrame(X.astype(np.float32), columns=[f"f{i}" for i in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = (
            MetaFeatureExtractor(n_way=5, max_iter=5, random_state=0)
            .fit(frame[y < 8], y[y < 8])
            .meta_model_
        )
    return model, frame, y


def test_the_same_columns_are_taken(named):
    model, frame, y = named
    new = y >= 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = FewShotClassifier(pretrained=model).fit(frame[new], y[new])
    assert list(clf.feature_names_in_) == list(frame.columns)


def test_reordered_columns_are_refused(named):
    model, frame, y = named
    new = y >= 8
    with pytest.raises(ValueError, match="same names in another order"):
        FewShotClassifier(pretrained=model).fit(frame[frame.columns[::-1]][new], y[new])


def test_other_columns_are_refused(named):
    model, frame, y = named
    other = frame.rename(columns={"f0": "height"})
    with pytest.raises(ValueError, match=r"unseen at meta-training: \['height'\]"):
        MetaFeatureExtractor(pretrained=model).fit(other, y)


def test_rows_without_names_warn(named):
    model, frame, y = named
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        FewShotClassifier(pretrained=model).fit(frame.to_numpy(), y)


def test_a_column_transformers_prefixed_names_get_the_fix(named):
    """A ColumnTransformer under set_output names its outputs "num__f0": the
    error says how to keep the model's names, and the fix works."""
    model, frame, y = named
    new = y >= 8

    def scaled(**options):
        columns = ColumnTransformer([("num", StandardScaler(), list(frame.columns))])
        return columns.set_params(**options).set_output(transform="pandas")

    pipe = make_pipeline(scaled(), FewShotClassifier(pretrained=model))
    with pytest.raises(ValueError, match="verbose_feature_names_out=False"):
        pipe.fit(frame[new], y[new])
    fixed = make_pipeline(
        scaled(verbose_feature_names_out=False), FewShotClassifier(pretrained=model)
    ).fit(frame[new], y[new])
    assert list(fixed[-1].feature_names_in_) == list(frame.columns)
