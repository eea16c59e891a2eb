import pickle
import time

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skmeta import EpisodicSplit, FewShotClassifier


def _novel(blobs):
    X, y = blobs
    novel = y >= 16
    return X[novel], y[novel]


def _one_shot(X, y):
    first = np.unique(y, return_index=True)[1]
    return X[first], y[first]


def test_pretrained_fit_adapts_without_meta_training(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model)
    clf.fit(*_one_shot(X, y))
    assert clf.n_iter_ == 0
    assert clf.meta_model_ is blob_model
    assert clf.adapted_["prototypes"].shape == (8, blob_model.embedding_dim)
    assert clf.score(X, y) > 0.8  # 8-way 1-shot on classes never seen


def test_fit_without_pretrained_meta_trains_then_adapts(blobs):
    X, y = blobs
    clf = FewShotClassifier(max_iter=30, random_state=0, n_way=4).fit(X, y)
    assert clf.n_iter_ == 30
    assert clf.meta_model_.config["training"]["n_way"] == 4
    assert len(clf.history_) == 30  # one record per iteration when max_iter < 40
    assert clf.score(X, y) > 0.9


def test_string_labels_and_any_number_of_ways(blob_model, blobs):
    X, y = _novel(blobs)
    names = np.array([f"class-{c}" for c in y])
    for n_classes in (2, 3, 8):
        keep = np.isin(y, np.unique(y)[:n_classes])
        clf = FewShotClassifier(pretrained=blob_model).fit(X[keep], names[keep])
        assert clf.classes_.tolist() == sorted(set(names[keep]))
        assert set(clf.predict(X[keep])) <= set(names[keep])
        proba = clf.predict_proba(X[keep])
        assert proba.shape == (keep.sum(), n_classes)
        np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
        scores = clf.decision_function(X[keep])
        assert scores.shape == (
            (keep.sum(),) if n_classes == 2 else (keep.sum(), n_classes)
        )


def test_predict_is_nearest_prototype(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model).fit(X, y)
    emb = blob_model.transform(X)
    protos = np.stack([emb[y == c].mean(0) for c in clf.classes_])
    nearest = ((emb[:, None] - protos[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[nearest])


def test_adaptation_is_fast(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model)
    clf.fit(X[:40], y[:40])  # warm-up
    start = time.perf_counter()
    for _ in range(10):
        clf.fit(X[:40], y[:40]).predict(X)
    assert (time.perf_counter() - start) / 10 < 0.5  # loose: milliseconds expected


def test_pretrained_from_path(blob_model, blobs, tmp_path):
    X, y = _novel(blobs)
    path = tmp_path / "m.safetensors"
    blob_model.save(path)
    a = FewShotClassifier(pretrained=blob_model).fit(X, y).predict(X)
    b = FewShotClassifier(pretrained=str(path)).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_pickled_classifier_predicts_the_same(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


def test_in_pipeline_cross_val_and_grid_search(blob_model, blobs):
    X, y = _novel(blobs)
    pipe = make_pipeline(
        FunctionTransformer(), FewShotClassifier(pretrained=blob_model)
    )
    cv = EpisodicSplit(n_way=5, k_shot=1, n_query=5, n_episodes=20, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv)
    assert scores.shape == (20,) and scores.mean() > 0.7
    search = GridSearchCV(
        FewShotClassifier(pretrained=blob_model), {"distance": ["euclidean"]}, cv=cv
    ).fit(X, y)
    assert search.best_estimator_.meta_model_ is blob_model  # shared, not copied


def test_grid_search_over_meta_training_settings(blobs):
    X, y = blobs
    search = GridSearchCV(
        FewShotClassifier(max_iter=10, random_state=0), {"k_shot": [1, 2]}, cv=3
    ).fit(X, y)
    assert set(search.cv_results_["param_k_shot"]) == {1, 2}


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_way": 30}, "n_way=30 exceeds the number of classes"),
        ({"k_shot": 10, "n_query": 10}, "2 classes with 20 samples each"),
        ({"input_shape": (1, 3, 3)}, r"input_shape=\(1, 3, 3\) holds 9 values"),
        ({"n_way": 1}, "'n_way' parameter"),
        ({"backbone": "resnet99"}, "'backbone' parameter"),
        ({"backbone": "conv4"}, "needs images"),
        ({"device": "gpu:x"}, "not a valid torch device"),
    ],
)
def test_bad_meta_training_settings_are_refused_clearly(blobs, params, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        FewShotClassifier(max_iter=2, **params).fit(X, y)


def test_bad_input_is_refused_clearly(blob_model, blobs):
    X, y = _novel(blobs)
    clf = FewShotClassifier(pretrained=blob_model).fit(X, y)
    with pytest.raises(ValueError, match="10 features"):
        clf.predict(X[:, :5])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(bad)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        FewShotClassifier(pretrained=blob_model).fit(bad, y)
    with pytest.raises(ValueError, match="pretrained model expects 10"):
        FewShotClassifier(pretrained=blob_model).fit(X[:, :4], y)
    with pytest.raises(ValueError, match="differs from the pretrained"):
        FewShotClassifier(pretrained=blob_model, input_shape=(2, 5)).fit(X, y)
    with pytest.raises(ValueError, match="method='pretrain' differs"):
        FewShotClassifier(pretrained=blob_model, method="pretrain").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        FewShotClassifier(pretrained=blob_model).fit(X[:3], [1, 1, 1])


def test_defaults_adapt_to_tiny_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 3))
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    clf = FewShotClassifier(max_iter=3, random_state=0).fit(X, y)
    training = clf.meta_model_.config["training"]
    assert (training["n_way"], training["k_shot"], training["n_query"]) == (3, 1, 2)


def test_default_episodes_are_one_shot_with_up_to_20_ways_and_15_queries(blobs):
    X, y = blobs  # 24 classes of 15 samples
    clf = FewShotClassifier(max_iter=2, random_state=0).fit(X, y)
    training = clf.meta_model_.config["training"]
    assert (training["n_way"], training["k_shot"], training["n_query"]) == (20, 1, 14)


def test_class_augmentation_option(images):
    X, y = images
    clf = FewShotClassifier(
        input_shape=(1, 12, 12),
        backbone="conv4_strided",
        class_augmentation="rot90",
        max_iter=5,
        random_state=0,
    ).fit(X, y)
    assert clf.meta_model_.config["training"]["n_classes"] == 40
    assert clf.classes_.size == 10  # adaptation sees the real classes only
    with pytest.raises(ValueError, match="square images"):
        FewShotClassifier(
            input_shape=(1, 8, 18), class_augmentation="rot90", max_iter=2
        ).fit(X, y)
    with pytest.raises(ValueError, match="'class_augmentation' parameter"):
        FewShotClassifier(class_augmentation="flip").fit(X, y)


def test_pretrained_path_is_read_once_per_file_version(blob_model, blobs, tmp_path):
    X, y = _novel(blobs)
    path = tmp_path / "m.safetensors"
    blob_model.save(path)
    first = FewShotClassifier(pretrained=path).fit(X, y).meta_model_
    again = FewShotClassifier(pretrained=str(path)).fit(X, y).meta_model_
    assert again is first  # shared, not re-read
    with pytest.raises(FileNotFoundError, match="no such model file"):
        FewShotClassifier(pretrained=tmp_path / "nope.safetensors").fit(X, y)


@pytest.mark.parametrize("method", ["protonet", "maml", "matching"])
def test_threads_sharing_one_model_predict_as_one_thread(blobs, method):
    """One MetaModel serves several threads at once: adaptation and
    prediction write nothing into it (functional batch norm, per-thread
    replicas for other weights). 4 threads run 128 fit/predict_proba calls
    on estimators sharing the model, on tasks of 2 to 4 classes and 1 to 3
    shots, and each result equals the same call's in one thread, bit for bit
    (``benchmarks/serving_soak.py`` runs 10,000s of such calls)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    X, y = blobs
    base = FewShotClassifier(
        method=method,
        backbone_params={"hidden_sizes": (32,)},
        max_iter=10,
        random_state=0,
        **({"inner_steps": 2} if method == "maml" else {}),
    ).fit(X[y < 16], y[y < 16])

    def job(i):
        rng = np.random.default_rng(i)
        classes = 16 + rng.choice(8, int(rng.integers(2, 5)), replace=False)
        shots = int(rng.integers(1, 4))
        support = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in classes]
        )
        clf = FewShotClassifier(pretrained=base.meta_model_)
        return clf.fit(X[support], y[support]).predict_proba(X[y >= 16])

    n_jobs = 64  # a fit and a predict_proba each
    expected = [job(i) for i in range(n_jobs)]
    barrier = threading.Barrier(4)

    def run(thread):
        barrier.wait()
        return [job(i) for i in range(thread, n_jobs, 4)]

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, range(4)))
    for thread, results in enumerate(got):
        for i, have in zip(range(thread, n_jobs, 4), results, strict=True):
            np.testing.assert_array_equal(have, expected[i])


def test_meta_batch_size_none_is_one_episode_for_classification():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(120, n_features=4, centers=6, random_state=0)
    clf = FewShotClassifier(max_iter=2, random_state=0).fit(X, y)
    assert clf.meta_model_.config["training"]["meta_batch_size"] == 1


def test_early_stopping_works_with_the_default_fraction_on_few_classes():
    """0.1 of fewer than 15 classes held out 0 or 1: early_stopping=True with
    the defaults failed on every small data set (a reviewer)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 12)
    X = rng.normal(size=(96, 6)).astype(np.float32) + 3 * np.eye(8, 6)[y]
    clf = FewShotClassifier(early_stopping=True, max_iter=5, random_state=0)
    clf.fit(X, y)
    assert "val_accuracy" in clf.history_[-1]


def test_early_stopping_on_three_classes_says_it_needs_four():
    """2 of the 3 classes are held out; the error said to add samples or
    lower k_shot, which cannot help (a review)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="y has 3. Turn early_stopping"):
        FewShotClassifier(early_stopping=True, max_iter=2).fit(X, y)


def test_calibrating_auto_on_fewer_held_out_classes_than_ways_warns():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 12)
    X = rng.normal(size=(120, 6)).astype(np.float32) + 3 * np.eye(10, 6)[y]
    with pytest.warns(UserWarning, match="on 2-way episodes of the 2 classes"):
        FewShotClassifier(early_stopping=True, max_iter=3, random_state=0).fit(X, y)
