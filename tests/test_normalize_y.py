"""``normalize_y``: regression targets standardised for meta-training by
statistics the model records, applied to every task, predictions scaled back."""

import warnings

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor, MetaModel
from skmeta.datasets import make_sinusoid_tasks
from skmeta.meta.target_scaling import fit_target_scaling, scale_targets

SHIFT, SCALE = 300.0, 100.0


def _regressor(**params):
    settings = {
        "k_shot": 5,
        "n_query": 5,
        "meta_batch_size": 4,
        "max_iter": 100,
        "learning_rate": 3e-3,
        "inner_lr": 0.05,
        "backbone_params": {"hidden_sizes": (16, 16)},
        "random_state": 0,
    }
    return FewShotRegressor(**{**settings, **params})


@pytest.fixture(scope="module")
def waves():
    return make_sinusoid_tasks(60, 12, random_state=0)


@pytest.fixture(scope="module")
def fitted(waves):
    """The same run on y and on SCALE * y + SHIFT, both with normalize_y."""
    X, y, groups = waves
    plain = _regressor(normalize_y=True).fit(X, y, groups=groups)
    moved = _regressor(normalize_y=True).fit(X, SCALE * y + SHIFT, groups=groups)
    return plain, moved


def test_units_of_y_do_not_change_what_is_learnt(fitted, waves):
    """The standardised targets of y and of 100 y + 300 are the same numbers,
    so both runs learn the same network, and predictions follow y's units."""
    plain, moved = fitted
    X_new, y_new, _ = make_sinusoid_tasks(1, 5, random_state=5)
    grid = np.linspace(-5, 5, 30)[:, None]
    a = FewShotRegressor(pretrained=plain.meta_model_).fit(X_new, y_new)
    b = FewShotRegressor(pretrained=moved.meta_model_).fit(X_new, SCALE * y_new + SHIFT)
    np.testing.assert_allclose(
        b.predict(grid), SCALE * a.predict(grid) + SHIFT, rtol=1e-4, atol=1e-2
    )
    # fit's own adaptation, at the end of meta-training, is in y's units too
    X, y, _ = waves
    np.testing.assert_allclose(
        moved.predict(X[:20]), SCALE * plain.predict(X[:20]) + SHIFT, atol=1e-2
    )
    scaling = moved.meta_model_.config["target_scaling"]
    assert scaling["mean"] == pytest.approx(SCALE * float(np.mean(y)) + SHIFT)
    assert scaling["std"] == pytest.approx(SCALE * float(np.std(y)), rel=1e-6)


def test_without_it_shifted_targets_warn_and_with_it_they_do_not(waves):
    X, y, groups = waves
    with pytest.warns(UserWarning, match="Set normalize_y=True"):
        _regressor(max_iter=2).fit(X, y + SHIFT, groups=groups)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _regressor(max_iter=2, normalize_y=True).fit(X, y + SHIFT, groups=groups)
    assert not [w for w in record if "normalize_y" in str(w.message)]


def test_the_scaling_survives_a_file_and_applies_with_pretrained(fitted, tmp_path):
    _, moved = fitted
    path = tmp_path / "moved.safetensors"
    moved.meta_model_.save(path)
    loaded = MetaModel.load(path)
    assert dict(loaded.config["target_scaling"]) == dict(
        moved.meta_model_.config["target_scaling"]
    )
    X_new, y_new, _ = make_sinusoid_tasks(1, 5, random_state=6)
    y_new = SCALE * y_new + SHIFT
    from_file = FewShotRegressor(pretrained=loaded).fit(X_new, y_new)
    in_memory = FewShotRegressor(pretrained=moved.meta_model_).fit(X_new, y_new)
    np.testing.assert_array_equal(from_file.predict(X_new), in_memory.predict(X_new))
    # normalize_y is a meta-training setting: with pretrained it is unused
    with pytest.warns(UserWarning, match="normalize_y=True"):
        FewShotRegressor(pretrained=loaded, normalize_y=True).fit(X_new, y_new)


def test_warm_start_keeps_the_scaling_or_refuses_a_change(waves):
    X, y, groups = waves
    reg = _regressor(max_iter=3, normalize_y=True, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, y + SHIFT, groups=groups)
        first = dict(reg.meta_model_.config["target_scaling"])
        reg.fit(X, 2 * y + SHIFT, groups=groups)  # the first run's numbers stay
    assert dict(reg.meta_model_.config["target_scaling"]) == first
    # targets in new units meet the first run's scaling: said (a review)
    with pytest.warns(UserWarning, match="warm_start keeps the first run's"):
        reg.fit(X, 1000 * y + 5000, groups=groups)
    reg.set_params(normalize_y=False)
    with pytest.raises(ValueError, match="normalize_y=True, not False"):
        reg.fit(X, y + SHIFT, groups=groups)


def test_classifiers_and_extractors_refuse_it(blobs):
    X, y = blobs
    for estimator in (FewShotClassifier, MetaFeatureExtractor):
        with pytest.raises(InvalidParameterError, match="normalize_y"):
            estimator(normalize_y=True, max_iter=1).fit(X, y)


def test_the_torch_layer_scaling():
    assert fit_target_scaling(np.array([1.0, 3.0]), False) is None
    assert fit_target_scaling(np.array([2.0, 2.0]), True) == {"mean": 2.0, "std": 1.0}
    with pytest.raises(ValueError, match="regression targets only"):
        fit_target_scaling(None, True)
    y = np.array([1.0, 3.0], dtype=np.float32)
    scaled = scale_targets(fit_target_scaling(y, True), y)
    assert scaled.dtype == np.float32 and scaled.tolist() == [-1.0, 1.0]


def test_numpy_false_is_false_for_the_classifier(blobs):
    X, y = blobs
    FewShotClassifier(normalize_y=np.False_, max_iter=1).fit(X, y)
