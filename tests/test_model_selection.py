import pickle
import time
import tracemalloc

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils import check_random_state

from skmeta import EpisodicSplit, FewShotClassifier, MetaModel, episodic_score
from skmeta.meta import episodes as episodes_module
from skmeta.meta.episodes import ClassIndex, sample_episodes
from skmeta.model_selection import TaskSplit


def all_at_once_folds(labels, n_way, k_shot, n_query, n_folds, random_state):
    """The folds as EpisodicSplit drew them before it drew lazily: every
    episode in one sample_episodes call."""
    _, codes = np.unique(labels, return_inverse=True)
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    episodes = sample_episodes(
        ClassIndex.from_labels(codes),
        n_way,
        k_shot,
        n_query,
        n_folds,
        np.random.default_rng(seed),
    )
    return list(zip(episodes.support, episodes.query, strict=True))


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


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few episodes, so that a split crosses many of them."""
    monkeypatch.setattr(episodes_module, "BLOCK_KEYS", 300)


@pytest.mark.parametrize("n_episodes", [1, 40, 600])
@pytest.mark.parametrize("seed", [0, 3, 12345])
def test_lazy_split_gives_the_episodes_of_one_draw(small_blocks, seed, n_episodes):
    y = np.random.default_rng(seed).integers(0, 20, 300).astype(str)
    X = np.zeros((300, 1))
    cv = EpisodicSplit(4, 2, 3, n_episodes, random_state=seed)
    folds = list(cv.split(X, y))
    expected = all_at_once_folds(y, 4, 2, 3, n_episodes, seed)
    assert len(folds) == len(expected) == n_episodes
    for (support, query), (want_support, want_query) in zip(
        folds, expected, strict=True
    ):
        np.testing.assert_array_equal(support, want_support)
        np.testing.assert_array_equal(query, want_query)
    # a RandomState instance is drawn from once per split, as before
    lazy = [
        s.tolist()
        for s, _ in EpisodicSplit(
            4, 2, 3, n_episodes, random_state=np.random.RandomState(seed)
        ).split(X, y)
    ]
    eager = all_at_once_folds(y, 4, 2, 3, n_episodes, np.random.RandomState(seed))
    assert lazy == [s.tolist() for s, _ in eager]


def _task_folds(n_tasks, seed, groups):
    cv = TaskSplit(2, 3, n_tasks, random_state=seed)
    return [s.tolist() + q.tolist() for s, q in cv.split(groups, None, groups)]


@pytest.mark.parametrize("n_tasks", [1, 40, 600])
@pytest.mark.parametrize("seed", [0, 3, 12345])
def test_task_split_folds_do_not_depend_on_the_block_size(monkeypatch, seed, n_tasks):
    import skmeta._episode_folds as folds_module

    groups = np.repeat(np.arange(30), 10)
    whole = _task_folds(n_tasks, seed, groups)  # in one block
    monkeypatch.setattr(folds_module, "BLOCK_KEYS", 25)  # blocks of 2 folds
    assert _task_folds(n_tasks, seed, groups) == whole
    assert len(whole) == n_tasks


def test_task_split_draws_tasks_without_replacement():
    """All distinct while there are enough tasks (20 of 30 drew 15 distinct
    ones, with replacement); beyond, each task once before any comes back."""
    groups = np.repeat(np.arange(30), 20)
    groups[:12] = 99  # task 0 keeps 8 rows: too few for 5 + 10, never drawn
    X = np.zeros((600, 1))
    cv = TaskSplit(k_shot=5, n_query=10, n_tasks=20, random_state=0)
    tasks = [groups[s[0]] for s, _ in cv.split(X, None, groups)]
    assert len(set(tasks)) == 20 and 0 not in tasks
    cv = TaskSplit(k_shot=5, n_query=10, n_tasks=29 * 3 + 5, random_state=0)
    tasks = np.array([groups[s[0]] for s, _ in cv.split(X, None, groups)])
    for start in range(0, 29 * 3, 29):  # each round a permutation
        assert sorted(tasks[start : start + 29]) == list(range(1, 30))
    assert len(set(tasks[-5:])) == 5
    assert sorted(np.unique(tasks, return_counts=True)[1]) == [3] * 24 + [4] * 5
    repeated = [s.tolist() for s, _ in cv.split(X, None, groups)]
    assert repeated == [s.tolist() for s, _ in cv.split(X, None, groups)]


def test_a_billion_episodes_cost_nothing_until_consumed():
    y = np.repeat(np.arange(100), 20)
    X = np.zeros((2000, 1))
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=15, n_episodes=10**9, random_state=0)
    assert cv.get_n_splits() == 10**9
    tracemalloc.start()
    try:
        start = time.perf_counter()
        folds = cv.split(X, y)
        first = [next(folds) for _ in range(5)]
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6 and seconds < 5
    assert [s.shape + q.shape for s, q in first] == [(5, 75)] * 5
    for support, query in first:
        assert len(set(y[support])) == 5 and set(y[query]) == set(y[support])


def test_scores_over_all_episodes_are_those_of_one_draw(small_blocks):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 10)
    X = rng.standard_normal((100, 4)) + 1.5 * np.eye(10, 4)[y]
    knn = KNeighborsClassifier(1)
    result = episodic_score(knn, X, y, n_episodes=120, n_query=5, random_state=0)
    before = cross_val_score(knn, X, y, cv=all_at_once_folds(y, 5, 1, 5, 120, 0))
    np.testing.assert_array_equal(result.scores, before)
    cv = EpisodicSplit(5, 1, 5, 120, random_state=0)
    np.testing.assert_array_equal(cross_val_score(knn, X, y, cv=cv), before)


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


def test_episodic_score_of_a_transductive_classifier_labels_queries_jointly(
    blob_model, blobs
):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = blobs
    novel = y >= 16
    noise = np.random.default_rng(0).normal(0, 3, X.shape).astype(np.float32)
    X, y = X[novel] + noise[novel], y[novel]  # hard enough to err; integer labels
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=5, n_episodes=6, random_state=0)
    by_hand = []
    for support, query in cv.split(X, y):
        clf = FewShotClassifier(pretrained=blob_model, transductive="laplacianshot")
        clf.fit(X[np.r_[support, query]], np.r_[y[support], np.full(len(query), -1)])
        by_hand.append(np.mean(clf.transduction_[len(support) :] == y[query]))
    estimator = FewShotClassifier(pretrained=blob_model, transductive="laplacianshot")
    result = episodic_score(estimator, X, y, cv=cv)
    np.testing.assert_allclose(result.scores, by_hand)
    pipeline = make_pipeline(FunctionTransformer(), estimator)
    with joblib.parallel_config(backend="threading"):
        parallel = episodic_score(pipeline, X, y, cv=cv, n_jobs=2)
    np.testing.assert_allclose(parallel.scores, by_hand)
    inductive = episodic_score(FewShotClassifier(pretrained=blob_model), X, y, cv=cv)
    assert not np.array_equal(inductive.scores, result.scores)
    assert 0.3 < result.mean < 1


def test_transductive_episodes_give_probabilities_for_log_loss(blob_model, blobs):
    X, y = blobs
    novel = y >= 16
    X, y = X[novel], y[novel]
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=3, n_episodes=3, random_state=0)
    clf = FewShotClassifier(pretrained=blob_model, transductive="bdcspn")
    result = episodic_score(clf, X, y, cv=cv, scoring="neg_log_loss")
    assert result.scores.shape == (3,) and np.all(result.scores <= 0)
    # the probabilities agree with the labels predict gives
    support, query = next(cv.split(X, y))
    from skmeta._transductive_episodes import TransductiveEpisode

    episode = TransductiveEpisode(clf).fit(X[support], y[support])
    proba = episode.predict_proba(X[query])
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(
        episode.classes_[proba.argmax(1)], episode.predict(X[query])
    )


def test_transductive_episodes_refuse_a_class_labelled_minus_one(blob_model, blobs):
    """-1 marks an unlabelled row: a class of that label would silently lose
    its support rows to the queries, so it is refused."""
    X, y = blobs
    novel = y >= 16
    X, y = X[novel], y[novel] - 17  # classes -1..6
    clf = FewShotClassifier(pretrained=blob_model, transductive="bdcspn")
    with pytest.raises(ValueError, match="label -1"):
        episodic_score(clf, X, y, n_way=8, k_shot=1, n_query=2, n_episodes=2)
    shifted = episodic_score(
        clf, X, y + 1, n_way=8, k_shot=1, n_query=2, n_episodes=2, random_state=0
    )
    assert shifted.scores.shape == (2,)


def test_a_parallel_episodic_score_leaves_the_callers_pickles_whole(
    blob_model, blobs, monkeypatch
):
    """Its shipment holds aliases of the models: the caller's classifier,
    pickled meanwhile (as a service thread may), keeps the whole model."""
    import skmeta.model_selection as model_selection

    X, y = blobs
    novel = y >= 16
    mine = FewShotClassifier(pretrained=blob_model).fit(X[novel], y[novel])
    taken = []
    real = model_selection.cross_val_score

    def pickling_meanwhile(*args, **kwargs):
        taken.append(pickle.dumps(mine))  # inside the open shipment
        return real(*args, **kwargs)

    monkeypatch.setattr(model_selection, "cross_val_score", pickling_meanwhile)
    result = episodic_score(
        FewShotClassifier(pretrained=blob_model),
        X[novel],
        y[novel],
        n_way=3,
        n_query=2,
        n_episodes=4,
        n_jobs=2,
        random_state=0,
    )
    assert result.scores.shape == (4,)
    again = pickle.loads(taken[0])  # after the shipment closed: whole
    np.testing.assert_array_equal(again.predict(X[novel]), mine.predict(X[novel]))


def test_task_split_refuses_two_columns_of_groups_naming_them():
    groups = np.c_[np.arange(20) // 5, np.arange(20) % 5]
    with pytest.raises(ValueError, match=r"groups of one column.*\(20, 2\)"):
        next(TaskSplit(k_shot=2, n_query=2).split(np.zeros((20, 1)), None, groups))


def test_task_split_on_tasks_too_small_says_so():
    groups = np.repeat(np.arange(5), 3)
    with pytest.raises(ValueError, match=r"needs a task \(group\) of 6 rows"):
        list(TaskSplit(k_shot=3, n_query=3).split(np.zeros((15, 1)), None, groups))
