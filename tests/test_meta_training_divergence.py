"""A diverging meta-training fails fit with the settings to change, and a
search shows the candidate as failed."""

import numpy as np
import pytest
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skmeta import FewShotClassifier


def _maml(**params):
    base = dict(method="maml", n_way=5, k_shot=1, n_query=5, max_iter=15)
    return FewShotClassifier(**{**base, "inner_steps": 3, "random_state": 0, **params})


def test_fit_names_the_iteration_and_the_inner_loop_settings(blobs):
    X, y = blobs
    with pytest.raises(FloatingPointError) as error:
        _maml(inner_lr=1e6).fit(X, y)
    message = str(error.value)
    assert "Meta-training diverged at iteration" in message
    for setting in ("learning_rate=0.001", "inner_lr=1000000.0", "inner_steps=3"):
        assert setting in message


def test_grid_search_shows_the_diverged_candidate_as_nan(blobs):
    X, y = blobs
    search = GridSearchCV(
        _maml(),
        {"inner_lr": [0.4, 1e6]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        error_score=np.nan,
    )
    with pytest.warns(FitFailedWarning, match="inner_lr=1000000.0"):
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores[0]) and scores[0] > 0.2  # 24 classes: chance 0.04
    assert np.isnan(scores[1])
    assert search.best_params_ == {"inner_lr": 0.4}


def test_a_regressor_diverging_on_unscaled_targets_names_normalize_y():
    """Reptile with its defaults diverged on make_regression's targets
    (deviation 42), and the message named the inner loop alone (a reviewer)."""
    from sklearn.datasets import make_regression
    from sklearn.preprocessing import StandardScaler

    from skmeta import FewShotRegressor

    X, y = make_regression(200, 10, n_informative=1, bias=5, noise=20, random_state=42)
    X = StandardScaler().fit_transform(X)
    with (
        pytest.warns(UserWarning, match="Set normalize_y=True"),
        pytest.raises(FloatingPointError) as error,
    ):
        FewShotRegressor(method="reptile", max_iter=50, random_state=0).fit(X, y)
    assert "set normalize_y=True" in str(error.value)
    reg = FewShotRegressor(
        method="reptile", max_iter=50, normalize_y=True, random_state=0
    ).fit(X, y)
    assert reg.score(X, y) > 0.5
