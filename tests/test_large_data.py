"""Data sets larger than memory: uint8 rows and memory maps, read by index."""

import tracemalloc

import numpy as np
import pytest

from skmeta import FewShotClassifier, MetaFeatureExtractor


def _uint8_images(n_classes=10, per_class=12, side=12, seed=0):
    rng = np.random.default_rng(seed)
    patterns = rng.integers(0, 256, (n_classes, side * side))
    y = np.repeat(np.arange(n_classes), per_class)
    noise = rng.integers(-30, 31, (y.size, side * side))
    return np.clip(patterns[y] + noise, 0, 255).astype(np.uint8), y


def _memmap(tmp_path, X):
    path = tmp_path / "rows.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    out[:] = X
    out.flush()
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize(
    "params",
    [
        dict(method="protonet", class_augmentation="rot90", early_stopping=True),
        dict(method="pretrain"),
    ],
)
def test_fit_on_a_uint8_memory_map_equals_fit_on_floats(tmp_path, params):
    X, y = _uint8_images()
    common = dict(
        input_shape=(1, 12, 12),
        backbone="conv4_strided",
        max_iter=6,
        n_way=4,
        k_shot=2,
        n_query=2,
        validation_fraction=0.3,
        random_state=0,
        **params,
    )
    mapped = MetaFeatureExtractor(**common).fit(_memmap(tmp_path, X), y)
    floats = MetaFeatureExtractor(**common).fit(X.astype(np.float32), y)
    for key, value in floats.meta_model_.state.items():
        np.testing.assert_array_equal(mapped.meta_model_.state[key], value, key)
    np.testing.assert_array_equal(mapped.transform(X), floats.transform(X))


def test_classifier_fits_and_predicts_uint8_rows(tmp_path):
    X, y = _uint8_images()
    clf = FewShotClassifier(
        input_shape=(1, 12, 12), backbone="conv4_strided", max_iter=5, random_state=0
    ).fit(_memmap(tmp_path, X), y)
    assert clf.predict(X).shape == (X.shape[0],)
    assert clf.score(X, y) > 0.5


def test_meta_training_never_copies_the_data_set(tmp_path):
    # 48,000 rows of 1x28x28 uint8: 36 MiB; a float32 copy would be 144 MiB
    rng = np.random.default_rng(0)
    X = _memmap(tmp_path, rng.integers(0, 256, (48_000, 784), dtype=np.uint8))
    y = np.repeat(np.arange(480), 100)
    tracemalloc.start()
    try:
        MetaFeatureExtractor(
            input_shape=(1, 28, 28),
            backbone="conv4_strided",
            class_augmentation="rot90",
            max_iter=2,
            random_state=0,
        ).fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # NumPy's allocations (tracemalloc sees them): the statistics' chunks and
    # the batches (22 MB here), never a copy of X (even in uint8)
    assert peak < X.nbytes


def _many_blocks(monkeypatch):
    # 12x12 rows, 144 values: 3 rows per converted block
    from skmeta.meta import inference

    monkeypatch.setattr(inference, "CONVERT_FLOATS", 3 * 144)


@pytest.mark.parametrize("method", ["protonet", "maml"])
def test_uint8_rows_adapt_and_predict_by_blocks_as_floats_do(
    tmp_path, monkeypatch, method
):
    X, y = _uint8_images()
    model = (
        MetaFeatureExtractor(
            method=method,
            input_shape=(1, 12, 12),
            backbone="conv4_strided",
            max_iter=3,
            n_way=4,
            k_shot=2,
            n_query=2,
            random_state=0,
        )
        .fit(X, y)
        .meta_model_
    )
    floats = FewShotClassifier(pretrained=model).fit(X.astype(np.float32), y)
    want = floats.decision_function(X.astype(np.float32))
    _many_blocks(monkeypatch)
    mapped = _memmap(tmp_path, X)
    blocks = FewShotClassifier(pretrained=model).fit(mapped, y)
    # ProtoNet's per-class sums add up block by block (float rounding apart);
    # MAML takes the support set whole, and the queries go by blocks
    np.testing.assert_allclose(
        blocks.decision_function(mapped), want, rtol=1e-5, atol=1e-6
    )
    if method == "protonet":
        counts = blocks.adapted_["counts"].numpy()
        np.testing.assert_array_equal(counts, np.bincount(y))


def test_uint8_rows_embed_by_blocks_as_floats_do(tmp_path, monkeypatch):
    X, y = _uint8_images()
    ext = MetaFeatureExtractor(
        input_shape=(1, 12, 12), backbone="conv4_strided", max_iter=2, random_state=0
    ).fit(X, y)
    want = ext.transform(X.astype(np.float32))
    _many_blocks(monkeypatch)
    np.testing.assert_allclose(ext.transform(_memmap(tmp_path, X)), want, rtol=1e-5)


def test_embedding_and_predicting_a_memory_map_never_copy_it(tmp_path):
    # 48,000 rows of 1x28x28 uint8: 36 MiB; a float32 copy would be 144 MiB
    rng = np.random.default_rng(0)
    X = _memmap(tmp_path, rng.integers(0, 256, (48_000, 784), dtype=np.uint8))
    y = np.arange(48_000) % 20  # few classes: the scores stay small
    small = np.concatenate([np.flatnonzero(y == c)[:5] for c in range(20)])
    ext = MetaFeatureExtractor(
        input_shape=(1, 28, 28), backbone="conv4_strided", max_iter=1, random_state=0
    ).fit(X[small], y[small])
    tracemalloc.start()
    try:
        ext.transform(X)
        clf = FewShotClassifier(pretrained=ext.meta_model_).fit(X, y)
        clf.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one 64 MiB float32 block at a time and the embeddings (49 MB), never
    # all of X as float32 (150 MB, and the embeddings beside it)
    assert peak < X.nbytes * 4
