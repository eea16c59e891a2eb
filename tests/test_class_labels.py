"""Support sets of many classes of one row each: scikit-learn's warning that
such labels "could represent a regression problem" is not raised (it is the
few-shot case), while labels that are no classes are still refused."""

import warnings

import numpy as np
import pytest

from skmeta import FewShotClassifier, MetaFeatureExtractor


@pytest.fixture(scope="module")
def one_shot(blob_model):
    """30 classes of one row each, of the blob model's 10 features."""
    X = np.random.default_rng(0).normal(size=(30, 10)).astype(np.float32)
    return X, np.array([f"c{i}" for i in range(30)])


def test_a_30_way_1_shot_fit_does_not_warn(blob_model, one_shot):
    X, y = one_shot
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = FewShotClassifier(pretrained=blob_model).fit(X, y)
    assert clf.classes_.size == 30


def test_a_30_way_1_shot_partial_fit_does_not_warn(blob_model, one_shot):
    X, y = one_shot
    clf = FewShotClassifier(pretrained=blob_model).fit(X[:2], y[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.partial_fit(X[2:], y[2:])
    assert clf.classes_.size == 30


def test_an_extractors_partial_fit_does_not_warn(one_shot):
    X, y = one_shot
    X, y = np.vstack([X, X + 0.1]), np.concatenate([y, y])  # 30 of 2 rows
    ext = MetaFeatureExtractor(n_way=2, k_shot=1, n_query=1, max_iter=1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ext.partial_fit(X[:40], y[:40])
    assert not [w for w in record if "regression problem" in str(w.message)]


@pytest.mark.parametrize("fit", ["fit", "partial_fit"])
def test_a_float_regression_target_is_still_refused(blob_model, one_shot, fit):
    X, _ = one_shot
    y = np.linspace(0.05, 3.1, 30)
    clf = FewShotClassifier(pretrained=blob_model)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        getattr(clf, fit)(X, y)


@pytest.mark.parametrize(
    "labels",
    [
        np.arange(5),
        np.array([3, 3, 7], dtype=np.uint8),
        np.array([True, False, True]),
        np.array(["a", "b", "c", "a"]),
        np.array([-1, 2]),
        np.array([], dtype=np.int64),
    ],
)
def test_vectors_that_skip_type_of_target_are_classes_to_it(labels):
    # check_class_labels returns at once for integer, boolean and string
    # vectors: scikit-learn's type_of_target finds them classes too
    from sklearn.utils.multiclass import type_of_target

    from skmeta._class_labels import _CLASS_TYPES, check_class_labels

    check_class_labels(labels)
    assert type_of_target(labels, input_name="y") in _CLASS_TYPES


def _missing_label_containers(labels):
    """`labels` with the one at row 4 missing, in the containers users hold."""
    pd = pytest.importorskip("pandas")
    gap = [*labels[:4], None, *labels[5:]]
    containers = {
        "pandas string NA": pd.Series(gap, dtype="string"),
        "pandas category NaN": pd.Series(gap, dtype="category"),
        "object None": np.array(gap, dtype=object),
        "object NaN": np.array([*labels[:4], np.nan, *labels[5:]], dtype=object),
        "list None": gap,
    }
    try:
        import polars as pl
    except ImportError:
        return containers
    return {**containers, "polars null": pl.Series(gap)}


@pytest.mark.parametrize("fit", ["fit", "partial_fit", "partial_fit again"])
@pytest.mark.parametrize("estimator", ["classifier", "extractor"])
def test_a_missing_label_is_refused_naming_its_row(
    blob_model, one_shot, fit, estimator
):
    """A missing label failed in scikit-learn's checks with "boolean value
    of NA is ambiguous" (pandas NA), "'<' not supported between instances of
    'NoneType' and 'str'" (None) or "Input contains NaN" (not naming y)."""
    X, labels = one_shot
    if estimator == "classifier":
        est = FewShotClassifier(pretrained=blob_model)
    else:
        X, labels = np.vstack([X, X + 0.1]), np.concatenate([labels, labels])
        est = MetaFeatureExtractor(n_way=2, k_shot=1, n_query=1, max_iter=1)
    if fit == "partial_fit again":
        est.partial_fit(X, labels)
    method = getattr(est, fit.split()[0])
    for kind, y in _missing_label_containers(list(labels)).items():
        with pytest.raises(ValueError, match="1 missing label.*first at row 4") as got:
            method(X, y)
        assert type(est).__name__ in str(got.value), kind
