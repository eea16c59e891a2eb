"""Test-time quarter turns: `test_time_turns` (skmeta/_test_time.py,
skmeta/meta/views.py)."""

import numpy as np
import pytest
from _test_time_helpers import assert_transduces_as, numpy_shift

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor

SHAPE = (1, 12, 12)


def _turned(X, k):
    """Rows of 12x12 images turned by `k` quarter turns: NumPy's own rot90,
    independent of skmeta's."""
    return np.rot90(X.reshape(-1, 12, 12), k, axes=(1, 2)).reshape(len(X), -1)


def _turns_embedding(embed, X, shift=None):
    """The four turns' embeddings side by side, halved; with `shift` (one
    pixel count), each turn averaged over the identity and its 8 shifts."""

    def one(rows):
        if shift is None:
            return embed(rows)
        offsets = [(dy * shift, dx * shift) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        return sum(embed(numpy_shift(rows, dy, dx)) for dy, dx in offsets) / 9

    return np.concatenate([one(_turned(X, k)) for k in range(4)], axis=1) / 2


def test_transform_puts_the_turns_side_by_side(image_model, images):
    X, _ = images
    plain = MetaFeatureExtractor(pretrained=image_model).fit(X)
    ext = MetaFeatureExtractor(pretrained=image_model, test_time_turns=True).fit(X)
    got = ext.transform(X)
    dim = image_model.embedding_dim
    assert got.shape == (len(X), 4 * dim)
    assert len(ext.get_feature_names_out()) == 4 * dim
    np.testing.assert_allclose(
        got, _turns_embedding(plain.transform, X), rtol=1e-5, atol=1e-6
    )
    # the identity's block is the plain embedding, halved
    np.testing.assert_allclose(got[:, :dim], plain.transform(X) / 2, rtol=1e-6)
    # with shifts: each turn is averaged over its shifted views first
    both = MetaFeatureExtractor(
        pretrained=image_model, test_time_turns=True, test_time_shifts=[1]
    ).fit(X)
    np.testing.assert_allclose(
        both.transform(X),
        _turns_embedding(plain.transform, X, shift=1),
        rtol=1e-5,
        atol=1e-6,
    )
    ext.set_params(test_time_turns=False)  # may change after fit
    np.testing.assert_array_equal(ext.transform(X), plain.transform(X))
    ext.set_params(test_time_turns="rot90")  # True's name
    np.testing.assert_array_equal(ext.transform(X), got)


def test_dihedral_adds_the_mirror_images_turns(image_model, images):
    X, _ = images
    plain = MetaFeatureExtractor(pretrained=image_model).fit(X).transform
    ext = MetaFeatureExtractor(pretrained=image_model, test_time_turns="dihedral")
    got = ext.fit(X).transform(X)
    dim = image_model.embedding_dim
    assert got.shape == (len(X), 8 * dim)
    assert len(ext.get_feature_names_out()) == 8 * dim
    mirrored = np.flip(X.reshape(-1, 12, 12), axis=2).reshape(len(X), -1)
    blocks = [plain(_turned(rows, k)) for rows in (X, mirrored) for k in range(4)]
    want = np.concatenate(blocks, axis=1) / np.sqrt(8)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # a squared distance is the mean of the eight views' squared distances
    a, b = got[0].astype(np.float64), got[1].astype(np.float64)
    mean = np.mean(
        [((blk[0].astype(np.float64) - blk[1]) ** 2).sum() for blk in blocks]
    )
    np.testing.assert_allclose(((a - b) ** 2).sum(), mean, rtol=1e-4)


def test_squared_distances_are_the_mean_over_the_turns(image_model, images):
    X, y = images
    support, query = np.arange(len(y)) % 8 < 3, np.arange(len(y)) % 8 >= 3
    clf = FewShotClassifier(pretrained=image_model, test_time_turns=True)
    clf.fit(X[support], y[support])
    embed = MetaFeatureExtractor(pretrained=image_model).fit(X).transform
    mean_squared = 0.0
    for k in range(4):
        s = embed(_turned(X[support], k)).astype(np.float64)
        q = embed(_turned(X[query], k)).astype(np.float64)
        protos = np.stack([s[y[support] == c].mean(0) for c in range(10)])
        mean_squared += ((q[:, None] - protos[None]) ** 2).sum(-1) / 4
    np.testing.assert_allclose(
        clf.decision_function(X[query]), -mean_squared, rtol=1e-4, atol=1e-4
    )
    # partial_fit adds rows with the same views: as fit on all rows
    more = FewShotClassifier(pretrained=image_model, test_time_turns=True)
    half = np.flatnonzero(support)
    more.partial_fit(X[half[:12]], y[half[:12]]).partial_fit(X[half[12:]], y[half[12:]])
    np.testing.assert_allclose(
        more.decision_function(X[query]),
        clf.decision_function(X[query]),
        rtol=1e-5,
        atol=1e-5,
    )
    # True names "rot90": the same views, so no refit is asked for
    clf.set_params(test_time_turns="rot90")
    np.testing.assert_array_equal(
        clf.decision_function(X[query]), more.decision_function(X[query])
    )


def test_transductive_methods_see_the_turned_embeddings(image_model, images):
    X, y = images
    labels = np.where(np.arange(len(y)) % 8 < 2, y, -1)
    clf = FewShotClassifier(
        pretrained=image_model, transductive="ptmap", test_time_turns=True
    ).fit(X, labels)
    embed = MetaFeatureExtractor(pretrained=image_model).fit(X).transform
    state = assert_transduces_as(clf, "ptmap", _turns_embedding(embed, X), labels)
    known = labels >= 0
    assert (
        clf.transduction_[~known] == state["unlabelled_scores"].argmax(1).numpy()
    ).all()


def test_bad_or_inapplicable_turns_are_refused(
    image_model, maml_image_model, images, blobs
):
    X, y = images
    for bad in ("yes", 1, None, ["rot90"]):
        with pytest.raises(ValueError, match="test_time_turns"):
            FewShotClassifier(pretrained=image_model, test_time_turns=bad).fit(X, y)
    # the check of the torch layer's views, past the parameter validation
    from skmeta._test_time import check_views

    for bad in ("yes", 1, None, ["rot90"]):
        with pytest.raises(ValueError, match="test_time_turns"):
            check_views(None, bad, SHAPE)
    assert check_views(None, np.True_, SHAPE) == check_views(None, "rot90", SHAPE)
    with pytest.raises(ValueError, match="test_time_turns.*input_shape"):
        MetaFeatureExtractor(test_time_turns=True, max_iter=2).fit(*blobs)
    wide = np.zeros((8, 2 * 12 * 6), dtype=np.float32)
    with pytest.raises(ValueError, match="test_time_turns.*square"):
        MetaFeatureExtractor(
            input_shape=(2, 12, 6), test_time_turns=True, max_iter=1
        ).fit(wide, np.repeat(np.arange(4), 2))
    with pytest.raises(ValueError, match=r"test_time_turns.*'maml'"):
        FewShotClassifier(pretrained=maml_image_model, test_time_turns=True).fit(X, y)
    with pytest.raises(ValueError, match="test_time_turns"):
        FewShotRegressor(input_shape=SHAPE, test_time_turns=True, max_iter=1).fit(
            X, y.astype(float)
        )
    # settings sized by the embedding's width cannot take wider embeddings
    cl2n = {"feature_norm": "cl2n"}
    with pytest.raises(ValueError, match="test_time_turns.*cl2n"):
        FewShotClassifier(
            pretrained=image_model, method_params=cl2n, test_time_turns=True
        ).fit(X, y)
    FewShotClassifier(pretrained=image_model, method_params=cl2n).fit(X, y)
    fce = MetaFeatureExtractor(
        method="matching",
        method_params={"full_context": True},
        input_shape=SHAPE,
        backbone="conv4_strided",
        max_iter=1,
        n_way=3,
        k_shot=1,
        n_query=1,
    ).fit(X, y)
    with pytest.raises(ValueError, match="test_time_turns.*full_context"):
        FewShotClassifier(pretrained=fce.meta_model_, test_time_turns=True).fit(X, y)
    clf = FewShotClassifier(pretrained=image_model).fit(X, y)
    clf.set_params(test_time_turns=True)
    with pytest.raises(ValueError, match="test_time_turns changed since fit"):
        clf.predict(X)


@pytest.mark.parametrize(
    "method, cause",
    [
        ("feat", "FEAT's attention"),
        ("relation", "relation module"),
        ("frn", "FRN's feature map"),
    ],
)
def test_methods_with_weights_sized_by_the_embedding_take_shifts_not_turns(
    images, method, cause
):
    """FEAT's attention and the relation module are sized by the embedding,
    FRN reads it as a feature map: averaged shifted views serve them, 4 or 8
    times wider turns cannot."""
    X, y = images
    model = (
        MetaFeatureExtractor(
            method=method,
            input_shape=(1, 12, 12),
            backbone="conv4_strided",
            max_iter=2,
            n_way=3,
            k_shot=1,
            n_query=1,
            random_state=0,
        )
        .fit(X[y < 6], y[y < 6])
        .meta_model_
    )
    new = y >= 6
    plain = FewShotClassifier(pretrained=model).fit(X[new], y[new])
    shifted = FewShotClassifier(pretrained=model, test_time_shifts=[1])
    proba = shifted.fit(X[new], y[new]).predict_proba(X[new])
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert not np.allclose(proba, plain.predict_proba(X[new]))
    with pytest.raises(ValueError, match=f"test_time_turns.*'{method}'.*{cause}"):
        FewShotClassifier(pretrained=model, test_time_turns=True).fit(X[new], y[new])
