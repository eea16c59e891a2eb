"""The shortcuts of the serving path (``predict``, ``predict_proba``,
``transform`` on a few rows) skip scikit-learn's calls only where those
would pass the rows through unchanged: everything else, every error and
warning, is still scikit-learn's own."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor
from skmeta._checks import ROW_DTYPES
from skmeta._fast_checks import check_fitted, checked_rows
from skmeta.meta.inference import _SMALL_FLOATS, all_finite


@pytest.fixture(scope="module")
def fitted(blob_model, blobs):
    X, y = blobs
    novel = y >= 16
    return FewShotClassifier(pretrained=blob_model).fit(X[novel], y[novel])


def _error(call):
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


def test_plain_finite_rows_are_returned_as_they_are(fitted, blobs):
    X = np.array(blobs[0][:3], dtype=np.float32)  # a copy: NaN is written in
    assert checked_rows(fitted, X) is X
    pixels = np.zeros((2, X.shape[1]), dtype=np.uint8)
    assert checked_rows(fitted, pixels) is pixels
    with sklearn.config_context(assume_finite=True):
        X[0, 0] = np.nan
        assert checked_rows(fitted, X) is X


@pytest.mark.parametrize(
    "rows",
    [
        "nan",
        "inf",
        "float64",
        "narrow",
        "empty",
        "vector",
        "fortran",
        "list",
    ],
)
def test_other_rows_get_scikit_learns_answer(fitted, blobs, rows):
    X = np.ascontiguousarray(blobs[0][:4], dtype=np.float32)
    X = {
        "nan": np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X),
        "inf": np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X),
        "float64": X.astype(np.float64),
        "narrow": X[:, :-1].copy(),
        "empty": X[:0],
        "vector": X[0],
        "fortran": np.asfortranarray(X),
        "list": X.tolist(),
    }[rows]
    if rows in ("nan", "inf"):
        X = X.astype(np.float32)

    def sklearns():
        return validate_data(fitted, X, reset=False, dtype=ROW_DTYPES)

    try:
        expected = sklearns()
    except Exception:
        assert _error(lambda: checked_rows(fitted, X)) == _error(sklearns)
        # and so through predict, as before
        assert _error(lambda: fitted.predict(X)) == _error(sklearns)
        return
    got = checked_rows(fitted, X)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_rows_of_a_model_fitted_with_feature_names_go_through_scikit_learn(
    blob_model, blobs
):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X[y >= 16], columns=[f"f{i}" for i in range(X.shape[1])])
    named = FewShotClassifier(pretrained=blob_model).fit(frame, y[y >= 16])
    with pytest.warns(UserWarning, match="feature names"):
        checked_rows(named, np.ascontiguousarray(X[:2]))


@pytest.mark.parametrize("n_rows", [1, 10, _SMALL_FLOATS // 10 + 1])
def test_all_finite_is_numpys_test(n_rows):
    X = np.random.default_rng(0).normal(size=(n_rows, 10)).astype(np.float32)
    assert all_finite(X)
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[-1, -1] = bad
        assert not all_finite(Y)
    huge = np.full_like(X, 3e38)  # its sum overflows: still finite
    assert all_finite(huge)


def test_the_shortcut_predictions_equal_scikit_learns_path(fitted, blobs):
    X = np.ascontiguousarray(blobs[0][:7], dtype=np.float32)
    through_sklearn = X.astype(np.float64)  # converted by validate_data
    expected = fitted.predict_proba(through_sklearn)
    assert np.array_equal(fitted.predict_proba(X), expected)


@pytest.mark.parametrize(
    "estimator", [FewShotClassifier, FewShotRegressor, MetaFeatureExtractor]
)
def test_unfitted_estimators_raise_scikit_learns_error(blob_model, estimator):
    unfitted = estimator(pretrained=blob_model)
    assert _error(lambda: check_fitted(unfitted)) == _error(
        lambda: check_is_fitted(unfitted)
    )
    method = "transform" if estimator is MetaFeatureExtractor else "predict"
    X = np.zeros((1, 10), dtype=np.float32)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(unfitted, method)(X)


def _support_cases(X, y):
    X32 = np.ascontiguousarray(X[:6], dtype=np.float32)
    y6 = y[:6]
    nan = X32.copy()
    nan[2, 3] = np.nan
    return {
        "float32": (X32, y6),
        "float64": (X32.astype(np.float64), y6),
        "uint8": (np.zeros((6, 10), dtype=np.uint8), y6),
        "fortran": (np.asfortranarray(X32), y6),
        "strings": (X32, np.array([f"c{v}" for v in y6])),
        "booleans": (X32, y6 % 2 == 0),
        "float targets": (X32, y6.astype(np.float64)),
        "float16 rows": (X32.astype(np.float16), y6),
        "nan rows": (nan, y6),
        "nan targets": (X32, np.where(y6 == y6[0], np.nan, 1.0)),
        "short y": (X32, y6[:5]),
        "column y": (X32, y6[:, None]),
        "no rows": (X32[:0], y6[:0]),
        "no columns": (X32[:, :0], y6),
        "lists": (X32.tolist(), y6.tolist()),
        "objects": (X32, y6.astype(object)),
    }


@pytest.mark.parametrize("y_numeric", [False, True])
@pytest.mark.parametrize("case", list(_support_cases(np.zeros((6, 10)), np.arange(6))))
def test_checked_support_is_validate_data(blobs, case, y_numeric):
    from skmeta._fast_checks import checked_support
    from skmeta._tasks import FIT_DTYPES

    X, y = _support_cases(*blobs)[case]
    mine, theirs = FewShotClassifier(), FewShotClassifier()
    for estimator in (mine, theirs):
        estimator.feature_names_in_ = np.array(["stale"], dtype=object)

    def sklearns():
        return validate_data(theirs, X, y, dtype=FIT_DTYPES, y_numeric=y_numeric)

    try:
        X_ref, y_ref = sklearns()
    except Exception:
        got = _error(
            lambda: checked_support(mine, X, y, FIT_DTYPES, y_numeric=y_numeric)
        )
        assert got == _error(sklearns)
        return
    X_got, y_got = checked_support(mine, X, y, FIT_DTYPES, y_numeric=y_numeric)
    assert X_got.dtype == X_ref.dtype and np.array_equal(X_got, X_ref)
    assert y_got.dtype == y_ref.dtype and np.array_equal(y_got, y_ref, equal_nan=False)
    assert mine.n_features_in_ == theirs.n_features_in_
    assert not hasattr(mine, "feature_names_in_")
    assert not hasattr(theirs, "feature_names_in_")


def test_the_speed_switch_turns_the_shortcuts_off(fitted, blobs, monkeypatch):
    """``SKMETA_ACCEL=0`` (``accel.set_enabled(False)``) sends every row and
    label vector through scikit-learn, as it turns every speed path off."""
    from skmeta._class_labels import check_class_labels
    from skmeta._fast_checks import checked_support
    from skmeta.meta import accel

    X = np.ascontiguousarray(blobs[0][:4], dtype=np.float32)
    y = np.array([0, 1, 0, 1])
    expected = fitted.predict_proba(X)
    calls = []
    monkeypatch.setattr(
        "skmeta._fast_checks.validate_data",
        lambda *args, **kwargs: (
            calls.append("validate_data") or validate_data(*args, **kwargs)
        ),
    )
    monkeypatch.setattr(
        "skmeta._class_labels.type_of_target",
        lambda y, **kwargs: calls.append("type_of_target") or "binary",
    )
    previous = accel.set_enabled(False)
    try:
        assert np.array_equal(fitted.predict_proba(X), expected)
        checked_support(MetaFeatureExtractor(), X, y, ROW_DTYPES)
        check_class_labels(y)
    finally:
        accel.set_enabled(previous)
    assert calls == ["validate_data", "validate_data", "type_of_target"]
    checked_support(MetaFeatureExtractor(), X, y, ROW_DTYPES)
    check_class_labels(y)
    assert checked_rows(fitted, X) is X and len(calls) == 3  # on again: none


def test_large_reversed_or_read_only_rows_take_numpys_finite_test(blob_model):
    """torch.from_numpy refused a negative stride (fit crashed with torch's
    error) and warned of read-only memory, past 65,536 values."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 2000)
    X = rng.normal(size=(len(y), blob_model.input_shape[0])).astype(np.float32)
    assert X.size > _SMALL_FLOATS
    frozen = X.copy()
    frozen.flags.writeable = False
    assert all_finite(X[::-1]) and all_finite(frozen)
    broken = X[::-1].copy()
    broken[-1, 0] = np.nan
    assert not all_finite(broken[::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torch warning either
        fitted = MetaFeatureExtractor(pretrained=blob_model).fit(X[::-1], y[::-1])
        FewShotClassifier(pretrained=blob_model).fit(frozen, y).predict(frozen)
    assert fitted.transform(X[::-1][:3]).shape[0] == 3
