"""Settings that others make inert warn instead of being silently ignored."""

import warnings

import numpy as np
import pytest

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor


def _blobs(n_classes=10, per_class=12, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    X = rng.normal(size=(n_classes, dim))[y] * 3 + rng.normal(size=(y.size, dim))
    return X.astype(np.float32), y


X, y = _blobs()


@pytest.mark.parametrize(
    "params, named",
    [
        ({"checkpoint_every": 5}, "checkpoint_every=5 (it needs checkpoint=PATH)"),
        ({"n_iter_no_change": 3}, "n_iter_no_change=3 (it needs early_stopping"),
        ({"validation_fraction": 0.3}, "validation_fraction=0.3 (it needs"),
    ],
)
def test_an_inert_setting_warns(params, named):
    with pytest.warns(UserWarning, match=r"These settings are ignored: .*") as got:
        MetaFeatureExtractor(n_way=5, max_iter=2, **params).fit(X, y)
    assert any(named in str(w.message) for w in got)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"checkpoint_every": 5, "checkpoint": "run.ckpt"},
        {"n_iter_no_change": 3, "early_stopping": True, "validation_fraction": 0.3},
        {"validation_fraction": 0.3, "calibrate": True},
    ],
)
def test_settings_in_use_do_not_warn(params, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        MetaFeatureExtractor(n_way=4, max_iter=2, **params).fit(X, y)
    assert not [w for w in got if "settings are ignored" in str(w.message)]


def test_the_regressor_warns_for_an_inert_validation_fraction():
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(60, 1)).astype(np.float32)
    groups = np.repeat(np.arange(6), 10)
    with pytest.warns(UserWarning, match="validation_fraction=0.4"):
        FewShotRegressor(max_iter=2, validation_fraction=0.4).fit(
            Xr, Xr[:, 0], groups=groups
        )


def test_replay_per_class_warns_for_a_method_that_keeps_no_rows():
    model = MetaFeatureExtractor(n_way=5, max_iter=2, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="replay_per_class=3 is ignored"):
        FewShotClassifier(pretrained=model.meta_model_, replay_per_class=3).fit(X, y)


def test_the_warning_points_at_the_users_line():
    with pytest.warns(UserWarning, match="settings are ignored") as got:
        MetaFeatureExtractor(n_way=5, max_iter=2, checkpoint_every=3).fit(X, y)
    (warning,) = [w for w in got if "settings are ignored" in str(w.message)]
    assert warning.filename == __file__
