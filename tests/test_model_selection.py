import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.neighbors import KNeighborsClassifier

from skmeta import EpisodicSplit, FewShotClassifier, MetaModel, episodic_score


def test_split_yields_episodes_from_eligible_classes():
    y = np.repeat(np.arange(8), 6)
    y[:4] = 99  # class 0 keeps 2 samples: too few for 1 + 3
    cv = EpisodicSplit(n_way=4, k_shot=1, n_query=3, n_episodes=30, random_state=0)
    folds = list(cv.split(np.zeros((48, 2)), y))
    assert len(folds) == cv.get_n_splits() == 30
    for support, query in folds:
        assert support.shape == (4,) and query.shape == (12,)
        assert not set(support) & set(query)
        assert set(y[support]) == set(y[query]) and len(set(y[support])) == 4
        assert 0 not in set(y[support])


def test_int_seed_repeats_episodes_none_does_not():
    y = np.repeat(np.arange(10), 5)
    X = np.zeros((50, 1))
    seeded = EpisodicSplit(random_state=3, n_query=2, n_episodes=5)
    first = [s.tolist() for s, _ in seeded.split(X, y)]
    assert first == [s.tolist() for s, _ in seeded.split(X, y)]
    fresh = EpisodicSplit(n_query=2, n_episodes=5)
    assert [s.tolist() for s, _ in fresh.split(X, y)] != [
        s.tolist() for s, _ in fresh.split(X, y)
    ]


def test_split_errors_are_clear():
    cv = EpisodicSplit(n_way=6, k_shot=1, n_query=2)
    y = np.repeat(np.arange(5), 3)
    with pytest.raises(ValueError, match="only 5 classes"):
        next(cv.split(np.zeros((15, 1)), y))
    with pytest.raises(ValueError, match="needs the class labels"):
        next(cv.split(np.zeros((15, 1)), None))
    with pytest.raises(ValueError, match="n_way == 1, must be >= 2"):
        next(EpisodicSplit(n_way=1).split(np.zeros((15, 1)), y))


def test_cross_validate_and_grid_search_over_episodes(blob_model, blobs):
    X, y = blobs
    novel = y >= 16
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=5, n_episodes=10, random_state=0)
    result = cross_validate(
        FewShotClassifier(pretrained=blob_model), X[novel], y[novel], cv=cv
    )
    assert result["test_score"].shape == (10,)
    search = GridSearchCV(
        FewShotClassifier(pretrained=blob_model), {"distance": ["euclidean"]}, cv=cv
    ).fit(X[novel], y[novel])
    assert search.best_score_ == pytest.approx(result["test_score"].mean())


def test_episodic_score_reports_mean_and_ci():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 10)
    X = rng.standard_normal((100, 4)) + 3 * np.eye(10, 4)[y]
    result = episodic_score(
        KNeighborsClassifier(1), X, y, n_episodes=200, n_query=5, random_state=0
    )
    assert result.scores.shape == (200,)
    assert result.mean == pytest.approx(result.scores.mean())
    expected_ci = 1.96 * result.scores.std(ddof=1) / np.sqrt(200)
    assert result.ci95 == pytest.approx(expected_ci)
    assert str(result).endswith("%") and "±" in str(result)


def test_repr():
    assert repr(EpisodicSplit(n_way=3)) == (
        "EpisodicSplit(n_way=3, k_shot=1, n_query=15, n_episodes=100, "
        "random_state=None)"
    )


def test_ship_once_finds_models_in_pipelines_and_grids(blob_model):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skmeta.model_selection import ship_once

    other = MetaModel.from_module(torch.nn.Linear(10, 256), (10,))  # 10 KB
    pipeline = make_pipeline(StandardScaler(), FewShotClassifier(pretrained=other))
    search = GridSearchCV(FewShotClassifier(), {"pretrained": [blob_model, other]})
    whole = len(pickle.dumps(clone(pipeline)))
    with ship_once(pipeline, search) as shipment:  # loky, the default: a file
        assert shipment.store == "file"
        assert len(pickle.dumps(clone(pipeline))) < whole / 4
    assert len(shipment.payload_bytes) == 2
    with joblib.parallel_config(backend="threading"), ship_once(search) as shipment:
        assert shipment.store is None  # threads share the model unpickled
    with ship_once(KNeighborsClassifier()) as shipment:
        assert shipment.models == []


@pytest.mark.slow
def test_episodic_score_in_loky_processes_equals_one_job(blob_model, blobs):
    X, y = blobs
    novel = y >= 16
    estimator = FewShotClassifier(pretrained=blob_model)
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=5, n_episodes=12, random_state=0)
    expected = episodic_score(estimator, X[novel], y[novel], cv=cv, n_jobs=1)
    result = episodic_score(estimator, X[novel], y[novel], cv=cv, n_jobs=2)
    np.testing.assert_array_equal(result.scores, expected.scores)


def test_episodic_score_verbose_shows_progress_and_changes_nothing(capsys):
    from sklearn.datasets import make_blobs
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_blobs(200, centers=10, random_state=0)
    knn = KNeighborsClassifier(n_neighbors=1)
    quiet = episodic_score(knn, X, y, n_episodes=12, random_state=0)
    capsys.readouterr()
    shown = episodic_score(knn, X, y, n_episodes=12, random_state=0, verbose=1)
    assert "episodes" in capsys.readouterr().err
    np.testing.assert_array_equal(quiet.scores, shown.scores)
    parallel = episodic_score(
        knn, X, y, n_episodes=12, random_state=0, verbose=1, n_jobs=2
    )
    assert "Done" in capsys.readouterr().err  # joblib's progress lines
    np.testing.assert_array_equal(quiet.scores, parallel.scores)
