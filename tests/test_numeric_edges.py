"""Valid but numerically awkward data: values far beyond the scale of a
pretrained model's training rows, scores near float32's limit, float64
columns whose variation float32 cannot hold. The answer is a result or a
clear error, never NaN probabilities or torch's own error."""

import warnings

import numpy as np
import pytest

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta._checks import check_float32_range


@pytest.fixture(scope="module")
def models(blobs):
    """Tiny ProtoNet and FRN models (hidden layer of 16: FRN's ridge solve on
    X + 1e9 is singular in float32 with this one)."""
    X, y = blobs
    base = y < 16
    return {
        method: MetaFeatureExtractor(
            method=method,
            max_iter=2,
            backbone_params={"hidden_sizes": (16,)},
            random_state=0,
        )
        .fit(X[base], y[base])
        .meta_model_
        for method in ("protonet", "frn")
    }


def _support(rng):
    return rng.standard_normal((10, 10)), np.repeat(np.arange(5), 2)


def test_scores_beyond_float32_are_refused_not_nan(models):
    X, y = _support(np.random.default_rng(0))
    clf = FewShotClassifier(pretrained=models["protonet"]).fit(X * 1e20, y)
    for answer in (clf.predict, clf.predict_proba, clf.decision_function):
        with pytest.raises(ValueError, match="not finite.*Rescale X"):
            answer(X[:3] * 1e20)
    clf = FewShotClassifier(pretrained=models["protonet"]).fit(X, y)
    with pytest.raises(ValueError, match="row 1 of X are not finite"):
        clf.predict(np.stack([X[0], X[1] * 1e30]))
    assert np.isfinite(clf.predict_proba(X * 1e3)).all()  # large, but finite


def test_predict_proba_does_not_overflow_at_float32s_limit(models):
    X, y = _support(np.random.default_rng(0))
    clf = FewShotClassifier(pretrained=models["protonet"]).fit(X, y)
    clf.temperature_ = 0.5  # a calibrated temperature below 1
    scores = np.array([[-3e38, -2e38, -3e38, -3e38, -3e38]], dtype=np.float32)
    clf._outputs = lambda X: scores.copy()
    proba = clf.predict_proba(X[:1])
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, [[0, 1, 0, 0, 0]])
    assert clf.classes_[proba.argmax(1)] == clf.predict(X[:1])


def test_a_failed_linear_solve_is_a_clear_error(models):
    X, y = _support(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the float32 precision warning
        with pytest.raises(ValueError, match="frn's linear solve.*rescale X"):
            FewShotClassifier(pretrained=models["frn"]).fit(X + 1e9, y)


def test_float64_variation_below_float32_precision_warns(models):
    X, y = _support(np.random.default_rng(0))
    X[:, 3] += 1e9  # varies by about 4, float32's spacing there is 64
    with pytest.warns(UserWarning, match=r"column\(s\) 3 vary by less than float32"):
        FewShotClassifier(pretrained=models["protonet"]).fit(X, y)
    X[:, 3] -= 1e9
    X[:, 4] = 1e9  # constant: nothing lost
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FewShotClassifier(pretrained=models["protonet"]).fit(X, y)
    with pytest.warns(UserWarning, match="y varies by less than float32"):
        check_float32_range(1e9 + np.arange(3.0), "y")
    column = np.array([[0.3], [0.1 + 0.2], [0.3]])  # float64 rounding alone
    assert column[0, 0] != column[1, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_float32_range(column, "X")
