"""Divergence of adaptation is never silent (skmeta/meta/algorithms/divergence.py),
and through the estimators: fit raises, a grid search shows which diverged."""

import warnings

import numpy as np
import pytest
import torch
from maml_helpers import _batch, _tiny_net
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV

from skmeta import EpisodicSplit, FewShotClassifier, FewShotRegressor
from skmeta.meta.algorithms import (
    AdaptationDiverged,
    AdaptationWarning,
    make_algorithm,
)
from skmeta.meta.train import TrainSettings, meta_train


@pytest.fixture(scope="module")
def maml_model(blobs):
    X, y = blobs
    base = y < 16
    settings = TrainSettings(
        n_way=5,
        k_shot=1,
        n_query=5,
        input_shape=(10,),
        method="maml",
        method_params={"inner_steps": 2},
        max_iter=20,
        seed=0,
    )
    return meta_train(X[base], y[base], settings)


def test_fit_raises_naming_the_settings_and_the_step(maml_model, blobs):
    X, y = blobs
    novel = y >= 16
    clf = FewShotClassifier(pretrained=maml_model, inner_lr=1e6, inner_steps=5)
    with pytest.raises(ValueError, match=r"inner step 3 \(inner_steps=5, inner_lr="):
        clf.fit(X[novel], y[novel])
    with pytest.raises(AdaptationDiverged, match="inner_lr=1000000.0"):
        clf.fit(X[novel], y[novel])


def test_a_rising_support_loss_warns(maml_model, blobs):
    X, y = blobs
    novel = y >= 16
    clf = FewShotClassifier(pretrained=maml_model, inner_lr=1e3, inner_steps=1)
    with pytest.warns(AdaptationWarning, match="inner_steps=1, inner_lr=1000.0") as got:
        clf.fit(X[novel], y[novel])
    assert got[0].filename == __file__  # the user's line, not skmeta's
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdaptationWarning)
        FewShotClassifier(pretrained=maml_model, inner_steps=3).fit(X[novel], y[novel])


def test_grid_search_shows_which_candidates_diverged(maml_model, blobs):
    X, y = blobs
    novel = y >= 16
    search = GridSearchCV(
        FewShotClassifier(pretrained=maml_model, inner_lr=1e6),
        {"inner_steps": [1, 5]},
        cv=EpisodicSplit(n_way=4, k_shot=1, n_query=4, n_episodes=3, random_state=0),
    )
    with pytest.warns(FitFailedWarning, match="inner_steps=5, inner_lr=1000000.0"):
        search.fit(X[novel], y[novel])
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert search.best_params_ == {"inner_steps": 1}


def test_meta_sgd_names_its_learnt_rates():
    algorithm = make_algorithm("metasgd", inner_lr=1e8, inner_steps=4)
    net, batch = _tiny_net(algorithm), _batch()
    with pytest.raises(AdaptationDiverged, match="meta-learnt step sizes") as error:
        algorithm.adapt(net, batch.support_x[0], batch.support_y, 3)
    # its rates are the model's: fit cannot take another inner_lr
    assert "or meta-train with a smaller inner_lr" in str(error.value)


def test_validation_records_a_diverged_episode_as_nan():
    algorithm = make_algorithm("maml", inner_lr=1e8, inner_steps=4)
    net, batch = _tiny_net(algorithm), _batch()
    loss, score = algorithm.episode_metrics(net, batch)
    assert np.isnan(loss) and np.isnan(score)


def test_predict_refuses_non_finite_outputs():
    algorithm = make_algorithm("maml", inner_lr=0.1, inner_steps=1)
    net, batch = _tiny_net(algorithm), _batch()
    state = algorithm.adapt(net, batch.support_x[0], batch.support_y, 3)
    state["head_bias"] = torch.full_like(state["head_bias"], float("inf"))
    with pytest.raises(AdaptationDiverged, match="outputs are not finite"):
        algorithm.predict(net, state, batch.query_x[0])


def test_regressor_diverging_raises():
    rng = np.random.default_rng(0)
    X = rng.uniform(-5, 5, (200, 1)).astype(np.float32)
    groups = np.repeat(np.arange(20), 10)
    y = np.sin(X[:, 0] + groups * 0.3).astype(np.float32)
    model = (
        FewShotRegressor(method="maml", k_shot=5, n_query=5, max_iter=5)
        .fit(X, y, groups=groups)
        .meta_model_
    )
    FewShotRegressor(pretrained=model, inner_steps=2).fit(X[:10], y[:10])
    reg = FewShotRegressor(pretrained=model, inner_lr=1e4, inner_steps=10)
    with pytest.raises(ValueError, match="inner_steps=10, inner_lr=10000.0"):
        reg.fit(X[:10], y[:10])


def test_with_one_inner_step_the_advice_is_the_rate_alone():
    from skmeta.meta.algorithms.divergence import settings_text

    one = settings_text(make_algorithm("maml", inner_lr=0.5, inner_steps=1))
    assert one.endswith("inner_lr=0.5); use a smaller inner_lr")
    three = settings_text(make_algorithm("maml", inner_lr=0.5, inner_steps=3))
    assert three.endswith("use fewer inner_steps or a smaller inner_lr")
    learnt = settings_text(make_algorithm("metasgd", inner_lr=0.5, inner_steps=1))
    assert learnt.endswith("; meta-train with a smaller inner_lr")


@pytest.mark.parametrize("last, warns", [(1.04, False), (1.2, True), (0.5, False)])
def test_only_a_rise_beyond_five_percent_warns(last, warns):
    """Rises of 0.0-0.5% warned as divergence on up to a fifth of sine waves
    at a model's own settings (a reviewer)."""
    from skmeta.meta.algorithms.divergence import check_adaptation

    method = make_algorithm("maml", inner_steps=2)
    losses = [torch.tensor(1.0), torch.tensor(1.1), torch.tensor(last)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        check_adaptation(method, losses, [torch.zeros(2)])
    said = [w for w in record if issubclass(w.category, AdaptationWarning)]
    assert len(said) == int(warns)
    if warns:
        assert "rose by 20%" in str(said[0].message)
