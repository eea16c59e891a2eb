import os
import pickle

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline

from skmeta import MetaFeatureExtractor


def test_fit_meta_trains_and_transform_embeds(blobs):
    X, y = blobs
    extractor = MetaFeatureExtractor(max_iter=20, random_state=0).fit(X, y)
    assert extractor.n_iter_ == 20
    Z = extractor.transform(X)
    assert Z.shape == (360, 64) and Z.dtype == np.float32
    np.testing.assert_array_equal(Z, extractor.meta_model_.transform(X))


def test_pretrained_is_reused_without_y(blob_model, blobs):
    X, _ = blobs
    extractor = MetaFeatureExtractor(pretrained=blob_model).fit(X)
    assert extractor.meta_model_ is blob_model and extractor.n_iter_ == 0
    np.testing.assert_array_equal(extractor.transform(X), blob_model.transform(X))


def test_y_required_without_pretrained(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="requires y"):
        MetaFeatureExtractor().fit(X)


def test_feature_names_and_pandas_output(blob_model, blobs):
    pd = pytest.importorskip("pandas")
    X, _ = blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    extractor = MetaFeatureExtractor(pretrained=blob_model).set_output(
        transform="pandas"
    )
    out = extractor.fit(frame).transform(frame)
    assert list(out.columns) == [f"metafeatureextractor{i}" for i in range(64)]
    assert extractor.feature_names_in_.tolist() == list(frame.columns)


def test_frozen_extractor_in_pipeline_is_not_refit(blob_model, blobs):
    X, y = blobs
    novel = y >= 16
    frozen = FrozenEstimator(MetaFeatureExtractor(pretrained=blob_model).fit(X[novel]))
    pipe = Pipeline([("feat", frozen), ("clf", LogisticRegression(max_iter=500))])
    scores = cross_val_score(pipe, X[novel], y[novel], cv=3)
    assert scores.mean() > 0.8
    raw = cross_val_score(LogisticRegression(max_iter=500), X[novel], y[novel], cv=3)
    assert scores.mean() >= raw.mean() - 0.1  # features carry the class information


def test_pipeline_memory_refits_a_replaced_model_file(
    blob_model, blobs, tmp_path, monkeypatch
):
    """Pipeline(memory=...) caches a step by what joblib hashes of it: with
    `pretrained` a path, that includes the file's version, so a model file
    replaced by another refits the step instead of returning stale features."""
    X, y = blobs
    novel = y >= 16
    other = MetaFeatureExtractor(max_iter=5, random_state=1)
    other = other.fit(X[~novel], y[~novel]).meta_model_
    path = tmp_path / "model.safetensors"
    blob_model.save(path)
    fits = []
    real_fit = MetaFeatureExtractor.fit

    def counted_fit(self, X, y=None, groups=None):
        fits.append(self.pretrained)
        return real_fit(self, X, y, groups=groups)

    monkeypatch.setattr(MetaFeatureExtractor, "fit", counted_fit)

    def fitted_pipeline():
        steps = [("ext", MetaFeatureExtractor(pretrained=str(path)))]
        steps.append(("clf", LogisticRegression(max_iter=200)))
        return Pipeline(steps, memory=str(tmp_path / "cache")).fit(X[novel], y[novel])

    first = fitted_pipeline()
    again = fitted_pipeline()  # same file: the cached step
    assert len(fits) == 1
    np.testing.assert_array_equal(
        again.named_steps.ext.transform(X), blob_model.transform(X)
    )
    other.save(tmp_path / "new.safetensors")
    os.replace(tmp_path / "new.safetensors", path)  # another model, same path
    stat = os.stat(path)  # a later time, whatever the file system's clock
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    replaced = fitted_pipeline()
    assert len(fits) == 2  # refitted on the new file
    np.testing.assert_array_equal(
        replaced.named_steps.ext.transform(X), other.transform(X)
    )
    assert not np.allclose(
        replaced.named_steps.ext.transform(X), first.named_steps.ext.transform(X)
    )
    # the file's version is hashed, never kept: parameters, clones and
    # pickles of the fitted step are as before
    ext = replaced.named_steps.ext
    restored = pickle.loads(pickle.dumps(ext))
    assert "_pretrained_file_version" not in vars(restored)
    assert "_pretrained_file_version" not in vars(ext)
    assert restored.get_params() == clone(ext).get_params() == ext.get_params()
    np.testing.assert_array_equal(restored.transform(X), ext.transform(X))


def test_meta_trained_features_beat_raw_pixels_on_novel_glyphs():
    """The promise of the package, on real computation: features meta-trained on
    some characters separate characters never seen better than raw pixels."""
    from sklearn.neighbors import KNeighborsClassifier

    from skmeta import FewShotClassifier, episodic_score
    from skmeta.datasets import make_glyphs

    X, y = make_glyphs(150, 10, 28, random_state=0)
    base = y < 120
    extractor = MetaFeatureExtractor(
        input_shape=(1, 28, 28),
        backbone="conv4_strided",
        n_way=10,
        k_shot=1,
        n_query=4,
        max_iter=150,
        random_state=0,
    ).fit(X[base], y[base])
    kwargs = dict(n_way=5, k_shot=1, n_query=5, n_episodes=100, random_state=0)
    meta = episodic_score(
        FewShotClassifier(pretrained=extractor.meta_model_),
        X[~base],
        y[~base],
        **kwargs,
    )
    raw = episodic_score(KNeighborsClassifier(1), X[~base], y[~base], **kwargs)
    assert meta.mean > raw.mean + 0.1, (meta, raw)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_transform_names_the_first_non_finite_row(blob_model, blobs, bad):
    X = blobs[0].astype(np.float32)
    X[150, 3] = bad
    extractor = MetaFeatureExtractor(pretrained=blob_model).fit(X[:10])
    with pytest.raises(ValueError, match="NaN or infinity.*row 150"):
        extractor.transform(X)
    # the torch layer's own check, whatever the chunks
    with pytest.raises(ValueError, match="row 150"):
        blob_model.transform(X, batch_size=64, check_finite=True)


def test_transform_accepts_huge_finite_values(blob_model, blobs):
    # their sum overflows float32; the chunk check must not mistake it for inf
    X = np.full((20, blobs[0].shape[1]), 3e38, dtype=np.float32)
    extractor = MetaFeatureExtractor(pretrained=blob_model).fit(X)
    assert extractor.transform(X).shape == (20, blob_model.embedding_dim)


def test_assume_finite_skips_the_check(blob_model, blobs):
    X = blobs[0][:5].astype(np.float32)
    extractor = MetaFeatureExtractor(pretrained=blob_model).fit(X)
    X[0, 0] = np.nan
    with sklearn.config_context(assume_finite=True):
        out = extractor.transform(X)
    assert np.isnan(out[0]).all() and np.isfinite(out[1:]).all()


def test_validated_rows_skips_only_what_validate_data_returns_unchanged(
    blob_model, blobs
):
    pd = pytest.importorskip("pandas")
    from skmeta._fast_checks import validated_rows

    X = np.ascontiguousarray(blobs[0], dtype=np.float32)
    extractor = MetaFeatureExtractor(pretrained=blob_model).fit(X)
    assert validated_rows(extractor, X) is X
    as_float64 = validated_rows(extractor, X.astype(np.float64))
    assert as_float64.dtype == np.float32
    with pytest.raises(ValueError, match="features"):
        validated_rows(extractor, X[:, :-1])
    with pytest.raises(ValueError, match="0 sample"):
        validated_rows(extractor, X[:0])
    # fitted with feature names: scikit-learn's checks (and warning) apply
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    named = MetaFeatureExtractor(pretrained=blob_model).fit(frame)
    with pytest.warns(UserWarning, match="feature names"):
        validated_rows(named, X)
