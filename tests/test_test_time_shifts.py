"""Test-time augmentation: `test_time_shifts` (skmeta/_test_time.py,
skmeta/meta/views.py)."""

import numpy as np
import pytest
import torch
from _test_time_helpers import assert_transduces_as, numpy_shift

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor
from skmeta.meta.views import shift_offsets, shifted

SHAPE = (1, 12, 12)


def _views_mean(embed, X, shifts):
    offsets = shift_offsets(shifts)
    return sum(embed(numpy_shift(X, dy, dx)) for dy, dx in offsets) / len(offsets)


def test_shift_offsets_and_shifted_pixels():
    assert shift_offsets([1]) == [
        (0, 0), (-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)
    ]  # fmt: skip
    assert len(shift_offsets([1, 2, 3])) == 25
    X = np.arange(2 * 144, dtype=np.float32).reshape(2, 144)
    for dy, dx in [(0, 0), (1, 0), (0, -2), (3, 3), (-1, 2)]:
        got = shifted(torch.from_numpy(X), SHAPE, dy, dx).numpy()
        np.testing.assert_array_equal(got, numpy_shift(X, dy, dx))
    # a shift down by one: row i holds the input's row i - 1 (row 0 repeated)
    down = shifted(torch.from_numpy(X), SHAPE, 1, 0).numpy().reshape(2, 12, 12)
    np.testing.assert_array_equal(down[:, 1:], X.reshape(2, 12, 12)[:, :-1])
    np.testing.assert_array_equal(down[:, 0], X.reshape(2, 12, 12)[:, 0])


def test_transform_averages_the_embeddings_of_the_views(image_model, images):
    X, _ = images
    ext = MetaFeatureExtractor(pretrained=image_model, test_time_shifts=(1, 2))
    ext.fit(X)
    plain = MetaFeatureExtractor(pretrained=image_model).fit(X)
    want = _views_mean(plain.transform, X, [1, 2])
    np.testing.assert_allclose(ext.transform(X), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ext.transform(X), plain.transform(X))
    # the extractor's views may change after fit
    ext.set_params(test_time_shifts=None)
    np.testing.assert_array_equal(ext.transform(X), plain.transform(X))


def test_prototypes_and_scores_are_those_of_the_averaged_embeddings(
    image_model, images
):
    X, y = images
    support, query = np.arange(len(y)) % 8 < 3, np.arange(len(y)) % 8 >= 3
    clf = FewShotClassifier(pretrained=image_model, test_time_shifts=[2])
    clf.fit(X[support], y[support])
    embed = MetaFeatureExtractor(pretrained=image_model).fit(X).transform
    support_emb = _views_mean(embed, X[support], [2]).astype(np.float64)
    query_emb = _views_mean(embed, X[query], [2]).astype(np.float64)
    prototypes = np.stack([support_emb[y[support] == c].mean(0) for c in range(10)])
    np.testing.assert_allclose(
        clf.adapted_["prototypes"].numpy(), prototypes, rtol=1e-5, atol=1e-6
    )
    squared = ((query_emb[:, None] - prototypes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(
        clf.decision_function(X[query]), -squared, rtol=1e-4, atol=1e-4
    )
    # partial_fit adds rows with the same views: as fit on all rows
    more = FewShotClassifier(pretrained=image_model, test_time_shifts=[2])
    half = np.flatnonzero(support)
    more.partial_fit(X[half[:12]], y[half[:12]]).partial_fit(X[half[12:]], y[half[12:]])
    np.testing.assert_allclose(
        more.decision_function(X[query]),
        clf.decision_function(X[query]),
        rtol=1e-5,
        atol=1e-5,
    )


def test_transductive_methods_see_the_averaged_embeddings(image_model, images):
    X, y = images
    labels = np.where(np.arange(len(y)) % 8 < 2, y, -1)
    clf = FewShotClassifier(
        pretrained=image_model, transductive="bdcspn", test_time_shifts=[1]
    ).fit(X, labels)
    embed = MetaFeatureExtractor(pretrained=image_model).fit(X).transform
    assert_transduces_as(clf, "bdcspn", _views_mean(embed, X, [1]), labels)


def test_bad_or_inapplicable_shifts_are_refused(
    image_model, maml_image_model, images, blobs
):
    X, y = images
    for bad in (0, [0], [-1], [2.5], ["1"], [], "1", [True], [12]):
        with pytest.raises(ValueError, match="test_time_shifts"):
            FewShotClassifier(pretrained=image_model, test_time_shifts=bad).fit(X, y)
    with pytest.raises(ValueError, match="test_time_shifts.*input_shape"):
        MetaFeatureExtractor(test_time_shifts=[1], max_iter=2).fit(*blobs)
    with pytest.raises(ValueError, match=r"test_time_shifts.*baseline\+\+.*'maml'"):
        FewShotClassifier(pretrained=maml_image_model, test_time_shifts=[1]).fit(X, y)
    # any method's embedding takes it in transform
    MetaFeatureExtractor(pretrained=maml_image_model, test_time_shifts=[1]).fit(X)
    with pytest.raises(ValueError, match="test_time_shifts"):
        FewShotRegressor(input_shape=SHAPE, test_time_shifts=[1], max_iter=1).fit(
            X, y.astype(float)
        )
    # a classifier's adapted state is of the views of fit
    clf = FewShotClassifier(pretrained=image_model, test_time_shifts=[1]).fit(X, y)
    clf.set_params(test_time_shifts=[2])
    changed = "test_time_shifts or test_time_turns changed since fit"
    with pytest.raises(ValueError, match=changed):
        clf.predict(X)
