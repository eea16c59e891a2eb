import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score

from skmeta import FewShotClassifier, FewShotRegressor
from skmeta.datasets import make_sinusoid_tasks


@pytest.fixture(scope="module")
def sine_model():
    X, y, groups = make_sinusoid_tasks(500, 20, random_state=0)
    reg = FewShotRegressor(
        k_shot=5,
        n_query=10,
        meta_batch_size=5,
        max_iter=300,
        learning_rate=3e-3,
        inner_lr=0.05,
        backbone_params={"hidden_sizes": (40, 40), "out_features": 40},
        random_state=0,
    )
    return reg.fit(X, y, groups=groups).meta_model_


def test_make_sinusoid_tasks_follows_the_maml_protocol():
    X, y, groups, amp, phase = make_sinusoid_tasks(
        50, 8, random_state=0, return_params=True
    )
    assert X.shape == (400, 1) and np.all(np.abs(X) <= 5)
    assert np.all((amp >= 0.1) & (amp <= 5)) and np.all((phase >= 0) & (phase <= np.pi))
    np.testing.assert_allclose(y, amp[groups] * np.sin(X[:, 0] - phase[groups]))
    grid, _, _ = make_sinusoid_tasks(2, 5, evenly_spaced=True, random_state=0)
    assert grid[:5, 0].tolist() == [-5.0, -2.5, 0.0, 2.5, 5.0]
    with pytest.raises(ValueError, match="n_tasks"):
        make_sinusoid_tasks(0)


def test_meta_trained_regressor_adapts_to_a_new_wave(sine_model):
    assert (
        sine_model.method == "maml" and sine_model.config["method_params"]["regression"]
    )
    X_grid = np.linspace(-5, 5, 100)[:, None]
    errors, unadapted = [], []
    for seed in range(20):
        X, y, _, amp, phase = make_sinusoid_tasks(
            1, 10, random_state=100 + seed, return_params=True
        )
        truth = amp[0] * np.sin(X_grid[:, 0] - phase[0])
        reg = FewShotRegressor(pretrained=sine_model, inner_steps=5).fit(X, y)
        assert reg.n_iter_ == 0
        errors.append(np.mean((reg.predict(X_grid) - truth) ** 2))
        unadapted.append(np.mean(truth**2))
    # a few steps on 10 points explain much of a wave never seen
    assert np.mean(errors) < 0.6 * np.mean(unadapted)


def test_inner_loop_grid_search_on_regression_tasks(sine_model):
    X, y, groups = make_sinusoid_tasks(6, 10, random_state=5)
    search = GridSearchCV(
        FewShotRegressor(pretrained=sine_model),
        {"inner_steps": [1, 5]},
        cv=GroupKFold(3),
        scoring="neg_mean_squared_error",
    )
    search.fit(X, y, groups=groups)
    assert search.best_estimator_.meta_model_ is sine_model


def test_without_groups_it_is_a_plain_regressor():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(200)
    reg = FewShotRegressor(max_iter=300, inner_steps=1, random_state=0)
    assert cross_val_score(reg, X, y, cv=3).mean() > 0.8


def test_errors_are_clear(sine_model, blob_model, blobs):
    X, y, groups = make_sinusoid_tasks(10, 4, random_state=0)
    with pytest.raises(ValueError, match="needs k_shot \\+ n_query = 10 rows"):
        FewShotRegressor(k_shot=5, n_query=5, max_iter=2).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="groups has 3 values"):
        FewShotRegressor(max_iter=2).fit(X, y, groups=[0, 1, 2])
    with pytest.raises(ValueError, match="meta-trained for classification"):
        FewShotRegressor(pretrained=blob_model).fit(*blobs)
    with pytest.raises(ValueError, match="'method' parameter"):
        FewShotRegressor(method="protonet").fit(X, y)
    with pytest.raises(ValueError, match="expects 1"):
        FewShotRegressor(pretrained=sine_model).fit(np.hstack([X, X]), y)
    # and the classifier refuses a regression model
    with pytest.raises(ValueError, match="meta-trained for regression"):
        FewShotClassifier(pretrained=sine_model).fit(X, (y > 0).astype(int))


def _n_tasks_seen(reg) -> int:
    return reg.meta_model_.config["training"]["n_classes"]


def test_groups_reach_meta_training_through_metadata_routing():
    """Without routing, cross_validate hands groups to the splitter only; with
    scikit-learn's metadata routing and set_fit_request(groups=True), fit gets
    them too, so each fold meta-trains on its tasks, not on one."""
    import sklearn
    from sklearn.model_selection import cross_validate

    X, y, groups = make_sinusoid_tasks(12, 20, random_state=0)
    settings = dict(k_shot=5, n_query=5, max_iter=3, random_state=0)
    plain = cross_validate(
        FewShotRegressor(**settings),
        X,
        y,
        groups=groups,
        cv=GroupKFold(2),
        return_estimator=True,
    )
    assert [_n_tasks_seen(r) for r in plain["estimator"]] == [1, 1]
    with sklearn.config_context(enable_metadata_routing=True):
        reg = FewShotRegressor(**settings).set_fit_request(groups=True)
        routed = cross_validate(
            reg,
            X,
            y,
            params={"groups": groups},
            cv=GroupKFold(2),
            return_estimator=True,
        )
        assert [_n_tasks_seen(r) for r in routed["estimator"]] == [6, 6]
        search = GridSearchCV(
            reg,
            {"inner_steps": [1, 2]},
            cv=GroupKFold(2),
            scoring="neg_mean_squared_error",
        ).fit(X, y, groups=groups)
        assert _n_tasks_seen(search.best_estimator_) == 12


def test_task_split_scores_a_pretrained_regressor_task_by_task(sine_model):
    from skmeta import TaskSplit

    X, y, groups = make_sinusoid_tasks(30, 20, random_state=3)
    cv = TaskSplit(k_shot=5, n_query=10, n_tasks=20, random_state=0)
    folds = list(cv.split(X, groups=groups))
    assert len(folds) == cv.get_n_splits() == 20
    for support, query in folds:
        assert len(support) == 5 and len(query) == 10
        assert len(set(groups[support]) | set(groups[query])) == 1  # one task
        assert not set(support) & set(query)
    scores = cross_val_score(
        FewShotRegressor(pretrained=sine_model),
        X,
        y,
        groups=groups,
        cv=cv,
        scoring="neg_mean_squared_error",
    )
    unadapted = np.mean(y**2)
    assert -scores.mean() < unadapted
    with pytest.raises(ValueError, match="needs groups"):
        next(cv.split(X))
    from skmeta import episodic_score

    regressor = FewShotRegressor(pretrained=sine_model)
    mse = episodic_score(
        regressor, X, y, cv=cv, groups=groups, scoring="neg_mean_squared_error"
    )
    np.testing.assert_allclose(mse.scores, scores)
    assert "%" not in str(mse) and str(mse).startswith(f"{mse.mean:.4g} ± ")


def test_undertrained_meta_training_says_so():
    """The issue's case: a default MAML regressor stops while still learning."""
    from sklearn.exceptions import ConvergenceWarning

    X, y, groups = make_sinusoid_tasks(200, 20, random_state=0)
    match = "max_iter=1000 while its meta-training loss was still falling"
    with pytest.warns(ConvergenceWarning, match=match):  # one task per update
        FewShotRegressor(meta_batch_size=1, random_state=0).fit(X, y, groups=groups)


def test_meta_batch_size_none_is_25_tasks_with_groups_and_1_without():
    X, y, groups = make_sinusoid_tasks(30, 8, random_state=0)
    with_groups = FewShotRegressor(k_shot=4, n_query=4, max_iter=2, random_state=0)
    training = with_groups.fit(X, y, groups=groups).meta_model_.config["training"]
    assert training["meta_batch_size"] == 25
    one_task = FewShotRegressor(k_shot=4, n_query=4, max_iter=2).fit(X, y)
    assert one_task.meta_model_.config["training"]["meta_batch_size"] == 1
    given = FewShotRegressor(k_shot=4, n_query=4, max_iter=2, meta_batch_size=3)
    config = given.fit(X, y, groups=groups).meta_model_.config
    assert config["training"]["meta_batch_size"] == 3


def test_targets_far_from_meta_trainings_warn(sine_model):
    recorded = sine_model.config["provenance"]["targets"]
    assert recorded["std"] > 0
    X, y, _ = make_sinusoid_tasks(n_tasks=1, n_samples_per_task=10, random_state=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the task's own scale, or quieter: quiet
        FewShotRegressor(pretrained=sine_model).fit(X, y)
        FewShotRegressor(pretrained=sine_model).fit(X, 0.01 * y)
    for scaled in (100 * y, y + 1e3):
        with pytest.warns(UserWarning, match="lies far from the targets"):
            FewShotRegressor(pretrained=sine_model).fit(X, scaled)
    # a shift of 3.5 deviations: the 10 of before let MSE go from 1.1 to
    # 1,046 (a shift of 10 on waves of deviation 2) in silence (a reviewer)
    shifted = y - np.mean(y) + recorded["mean"] + 3.5 * recorded["std"]
    with pytest.warns(UserWarning, match="lies far from the targets"):
        FewShotRegressor(pretrained=sine_model).fit(X, shifted)


def test_targets_of_1e20_warn_with_their_spread_not_an_overflow(sine_model):
    X, y, _ = make_sinusoid_tasks(n_tasks=1, n_samples_per_task=10, random_state=7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="diverged"):  # as it should
            FewShotRegressor(pretrained=sine_model).fit(X, 1e20 * y)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    far = [str(w.message) for w in caught if "lies far from" in str(w.message)]
    assert len(far) == 1 and "std inf" not in far[0], far


@pytest.mark.parametrize(
    "shift, scale, warns",
    [(0, 1, False), (300, 1, True), (0, 1e4, True), (0, 1e-4, True), (2, 1, False)],
)
def test_meta_training_on_unscaled_targets_warns_naming_y(shift, scale, warns):
    """A shift of 300 took a sine-wave regressor's test MSE from 0.30 to 488
    with only a 'raise max_iter' warning (a reviewer)."""
    X, y, groups = make_sinusoid_tasks(
        n_tasks=10, n_samples_per_task=20, random_state=0
    )
    regressor = FewShotRegressor(max_iter=2, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        regressor.fit(X, y * scale + shift, groups=groups)
    named = [w for w in record if "Set normalize_y=True" in str(w.message)]
    assert len(named) == int(warns)
    if warns:
        assert named[0].filename == __file__


def test_early_stopping_without_a_task_to_hold_out_is_a_clear_error():
    X, y, groups = make_sinusoid_tasks(n_tasks=5, n_samples_per_task=20, random_state=0)
    regressor = FewShotRegressor(max_iter=5, early_stopping=True, random_state=0)
    with pytest.raises(ValueError, match=r"of the 1 task\(s\).*Lower validation"):
        regressor.fit(X, y)  # one task: none left to train on
    # 0.1 of 5 tasks is 0: one is held out all the same (was an error)
    regressor.fit(X, y, groups=groups)
    assert "val_mse" in regressor.history_[-1]


def test_one_small_task_shrinking_every_episode_is_said():
    """Sizes left None fit the smallest task: a 2-row task made every episode
    1-shot 1-query in silence, the 50-row task's too (a reviewer)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X[:, 0]
    groups = np.r_[np.zeros(50), np.ones(5), np.full(3, 2), np.full(2, 3)]
    regressor = FewShotRegressor(max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match=r"smallest task \(2 rows\).* 1-shot 1-query"):
        regressor.fit(X, y, groups=groups)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        equal = np.repeat(np.arange(6), 10)  # equal tasks: nothing to say
        FewShotRegressor(max_iter=2, random_state=0).fit(X, y, groups=equal)
        regressor.set_params(k_shot=1, n_query=1).fit(X, y, groups=groups)  # chosen


def test_several_targets_through_multi_output_regressor():
    """A 2-D y is refused; the docstring sends users to MultiOutputRegressor,
    which passes groups on to each regressor (a reviewer)."""
    from sklearn.multioutput import MultiOutputRegressor

    X, y, groups = make_sinusoid_tasks(20, 10, random_state=0)
    with pytest.raises(ValueError, match="1d"):
        FewShotRegressor(max_iter=2).fit(X, np.c_[y, -y], groups=groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        both = MultiOutputRegressor(FewShotRegressor(max_iter=3, random_state=0))
        both.fit(X, np.c_[y, -y], groups=groups)
    assert both.predict(X[:3]).shape == (3, 2)
