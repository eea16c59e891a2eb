"""Augmentation during meta-training: per batch, seeded, never at adaptation."""

import numpy as np
import pytest
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.augmentation import FeatureAugmentation, ImageAugmentation
from skmeta.meta.augment import make_augmentation
from skmeta.meta.train import TrainSettings, meta_train

ONE = torch.ones(1)
TINY_EPISODES = dict(  # 12x12 images, a few short episodes
    n_way=4, k_shot=2, n_query=2, input_shape=(1, 12, 12), backbone="conv4_strided"
)


def test_image_augmentation_changes_images_reproducibly():
    pytest.importorskip("torchvision")  # ImageAugmentation: the vision extra
    augment = make_augmentation("images", (3, 16, 16), ONE, ONE)
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    torch.manual_seed(0)
    first = augment(images)
    torch.manual_seed(0)
    again = augment(images)
    assert first.shape == images.shape and first.dtype == torch.uint8
    assert torch.equal(first, again)
    assert not torch.equal(first, images)
    # each image has its own random draw: two copies of one image differ
    twins = augment(images[:1].expand(4, -1, -1, -1))
    assert not all(torch.equal(twins[0], t) for t in twins[1:])


def test_colour_jitter_refuses_floats_outside_unit_range():
    pytest.importorskip("torchvision")  # ImageAugmentation: the vision extra
    augment = ImageAugmentation(crop_scale=None, flip=False).build((1, 8, 8))
    assert augment(torch.rand(2, 1, 8, 8)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="uint8 pixels or floats in \\[0, 1\\]"):
        augment(torch.rand(2, 1, 8, 8) * 255)
    plain = ImageAugmentation(color_jitter=0).build((1, 8, 8))
    assert plain(torch.rand(2, 1, 8, 8) * 255).shape == (2, 1, 8, 8)


def test_feature_augmentation_noise_and_dropout_in_feature_units():
    mean, scale = torch.tensor([1.0, -2.0]), torch.tensor([10.0, 0.1])
    rows = mean.repeat(20000, 1)
    torch.manual_seed(0)
    noisy = FeatureAugmentation(noise=0.5, dropout=0).build(mean, scale)(rows)
    np.testing.assert_allclose(((noisy - rows) / scale).std(0), [0.5, 0.5], rtol=0.05)
    rows = torch.zeros(20000, 2)
    dropped = FeatureAugmentation(noise=0, dropout=0.3).build(mean, scale)(rows)
    share = (dropped == mean).float().mean(0)
    np.testing.assert_allclose(share, [0.3, 0.3], atol=0.02)


def test_bad_augmentation_settings_are_refused():
    with pytest.raises(ValueError, match="unknown"):
        make_augmentation("colour", (3, 8, 8), ONE, ONE)
    with pytest.raises(ValueError, match="needs images"):
        make_augmentation("images", (10,), ONE, ONE)
    with pytest.raises(TypeError, match="augmentation must be"):
        make_augmentation(3, (10,), ONE, ONE)
    with pytest.raises(ValueError, match="dropout"):
        make_augmentation(FeatureAugmentation(dropout=1.5), (10,), ONE, ONE)


def test_meta_training_with_augmentation_is_seeded_and_recorded(images):
    pytest.importorskip("torchvision")  # ImageAugmentation: the vision extra
    X, y = images
    settings = dict(TINY_EPISODES, max_iter=8)
    flip = ImageAugmentation(crop_scale=(0.7, 1.0), color_jitter=0)
    a = meta_train(X, y, TrainSettings(augmentation=flip, seed=3, **settings))
    b = meta_train(X, y, TrainSettings(augmentation=flip, seed=3, **settings))
    plain = meta_train(X, y, TrainSettings(seed=3, **settings))
    for key, value in a.state.items():
        assert torch.equal(value, b.state[key])
    assert any(
        not torch.equal(value, plain.state[key]) for key, value in a.state.items()
    )
    assert a.config["training"]["augmentation"] == repr(flip)


class CountingAugmentation:
    """A per-sample callable that counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, sample):
        self.calls += 1
        return sample + 0.01 * torch.randn(sample.shape)


def test_adaptation_and_transform_never_augment(blobs):
    X, y = blobs
    augment = CountingAugmentation()
    extractor = MetaFeatureExtractor(
        augmentation=augment,
        max_iter=3,
        n_way=3,
        k_shot=2,
        n_query=2,
        random_state=0,
    ).fit(X[y < 16], y[y < 16])
    # meta-training drew 3 episodes of 3 x (2 + 2) rows, augmented sample by sample
    assert augment.calls == 3 * 12
    model = extractor.meta_model_
    augment.calls = 0
    extractor.transform(X)
    clf = FewShotClassifier(pretrained=model).fit(X[y >= 16], y[y >= 16])
    clf.predict(X[y >= 16])
    assert augment.calls == 0


def _centroid(images: torch.Tensor) -> torch.Tensor:
    """(x, y) centre of mass of each image, in pixels: shape (n, 2)."""
    n, _, h, w = images.shape
    mass = images.sum((1, 2, 3))
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    x = (images.sum(1) * xs).sum((1, 2)) / mass
    y = (images.sum(1) * ys).sum((1, 2)) / mass
    return torch.stack([x, y], 1)


def _dot(size: int = 33, x: int = 24, y: int = 16) -> torch.Tensor:
    """One image, (1, 1, size, size), black with a 3 x 3 white dot at (x, y)."""
    image = torch.zeros(1, 1, size, size)
    image[..., y - 1 : y + 2, x - 1 : x + 2] = 1.0
    return image


def _apply(theta: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), False)
    return torch.nn.functional.grid_sample(images, grid, align_corners=False)


def test_affine_maps_rotate_zoom_and_shift_as_documented():
    from skmeta.meta.augment import affine_maps

    image = _dot()  # 8 pixels right of the centre (16, 16)
    one, zero = torch.ones(1), torch.zeros(1)
    turned = _apply(affine_maps(90 * one, zero, one, torch.zeros(1, 2)), image)
    np.testing.assert_allclose(_centroid(turned)[0], [16, 8], atol=0.05)  # above
    zoomed = _apply(affine_maps(zero, zero, 1.5 * one, torch.zeros(1, 2)), image)
    np.testing.assert_allclose(_centroid(zoomed)[0], [28, 16], atol=0.1)
    moved = _apply(affine_maps(zero, zero, one, torch.tensor([[-0.25, 0.25]])), image)
    np.testing.assert_allclose(_centroid(moved)[0], [24 - 8.25, 16 + 8.25], atol=0.1)
    # a horizontal shear moves a point below the centre to the right
    low = _dot(x=16, y=24)
    sheared = _apply(affine_maps(zero, 45 * one, one, torch.zeros(1, 2)), low)
    np.testing.assert_allclose(_centroid(sheared)[0], [24, 24], atol=0.1)


def test_affine_maps_turn_wide_images_in_pixels(monkeypatch):
    from skmeta.augmentation import AffineAugmentation
    from skmeta.meta.augment import affine_maps

    # 20 rows, 40 columns: a 2 x 2 dot 6 pixels right of the centre (20, 10)
    image = torch.zeros(1, 1, 20, 40)
    image[..., 9:11, 25:27] = 1.0
    one, zero = torch.ones(1), torch.zeros(1)
    theta = affine_maps(90 * one, zero, one, torch.zeros(1, 2), aspect=0.5)
    turned = _apply(theta, image)  # 6 pixels above, not 6 * 20 / 40
    np.testing.assert_allclose(_centroid(turned)[0], [19.5, 3.5], atol=0.05)
    # sheared in pixels too: 45 degrees move a point 4 rows down 4 columns
    low = torch.zeros(1, 1, 20, 40)
    low[..., 13:15, 19:21] = 1.0  # centre (19.5, 13.5): 4 rows below (19.5, 9.5)
    theta = affine_maps(zero, 45 * one, one, torch.zeros(1, 2), aspect=0.5)
    sheared = _apply(theta, low)
    np.testing.assert_allclose(_centroid(sheared)[0], [23.5, 13.5], atol=0.05)

    # the estimator's augmentation passes the aspect of its images
    def quarter_turns(self, n, aspect=1.0):
        return affine_maps(
            90 * torch.ones(n), torch.zeros(n), torch.ones(n), torch.zeros(n, 2), aspect
        )

    monkeypatch.setattr(AffineAugmentation, "draw", quarter_turns)
    augment = AffineAugmentation().build((1, 20, 40))
    np.testing.assert_allclose(_centroid(augment(image))[0], [19.5, 3.5], atol=0.05)


def test_affine_augmentation_draws_per_image_within_its_ranges():
    from skmeta.augmentation import AffineAugmentation

    still = AffineAugmentation(degrees=0, translate=0, scale=(1, 1)).build((1, 9, 9))
    images = torch.rand(3, 1, 9, 9)
    torch.testing.assert_close(still(images), images)
    shift = AffineAugmentation(degrees=0, translate=0.1, scale=(1, 1))
    augment = shift.build((1, 33, 33))
    torch.manual_seed(0)
    moved = _centroid(augment(_dot().expand(200, -1, -1, -1))) - torch.tensor([24, 16])
    assert moved.abs().max() <= 0.1 * 33 + 0.05  # shifts up to 10% of the side
    assert moved.std(0).min() > 0.1 * 33 / 3  # spread over the range, per image
    # rotation and zoom about the centre keep a centred blob centred
    blob = torch.zeros(50, 1, 33, 33)
    blob[..., 12:21, 14:19] = 1.0
    turn = AffineAugmentation(degrees=30, translate=0, scale=(0.8, 1.2), shear=10)
    out = turn.build((1, 33, 33))(blob)
    np.testing.assert_allclose(_centroid(out), 16.0, atol=0.05)
    assert not torch.equal(out[0], out[1])


def test_affine_augmentation_is_seeded_keeps_dtype_and_fills_borders():
    from skmeta.augmentation import AffineAugmentation

    augment = make_augmentation("affine", (1, 16, 16), ONE, ONE)
    images = torch.randint(0, 256, (5, 1, 16, 16), dtype=torch.uint8)
    torch.manual_seed(1)
    first = augment(images)
    torch.manual_seed(1)
    assert torch.equal(first, augment(images)) and first.dtype == torch.uint8
    # "border" repeats a white background; "zeros" fills it with black
    white = torch.ones(4, 1, 16, 16)
    far = AffineAugmentation(degrees=0, translate=0.4, scale=(0.5, 0.6))
    assert torch.equal(far.build((1, 16, 16))(white), white)
    fill = AffineAugmentation(
        degrees=0, translate=0.4, scale=(0.5, 0.6), padding="zeros"
    )
    assert fill.build((1, 16, 16))(white).min() == 0


@pytest.mark.parametrize(
    "params, match",
    [
        ({"degrees": -1}, "degrees >= 0"),
        ({"translate": 1.0}, "translate < 1"),
        ({"scale": (1.2, 0.8)}, "scale"),
        ({"shear": 90}, "shear < 90"),
        ({"padding": "wrap"}, "padding must be"),
    ],
)
def test_bad_affine_settings_are_refused(params, match):
    from skmeta.augmentation import AffineAugmentation

    with pytest.raises(ValueError, match=match):
        AffineAugmentation(**params).build((1, 8, 8))
    with pytest.raises(ValueError, match="needs images"):
        make_augmentation("affine", (64,), ONE, ONE)


def test_estimators_take_the_affine_preset_and_record_it(images):
    X, y = images
    extractor = MetaFeatureExtractor(
        augmentation="affine",
        input_shape=(1, 12, 12),
        backbone="conv4_strided",
        n_way=4,
        k_shot=2,
        n_query=2,
        max_iter=4,
        random_state=0,
    ).fit(X, y)
    recorded = extractor.meta_model_.config["training"]["augmentation"]
    assert recorded == "affine"
    assert extractor.transform(X[:3]).shape[0] == 3


def test_a_list_of_augmentations_applies_them_in_turn():
    from skmeta.augmentation import AffineAugmentation, ElasticAugmentation

    affine = AffineAugmentation(degrees=10, translate=0.0, shear=10)
    elastic = ElasticAugmentation(alpha=16, sigma=4)
    images = torch.rand(6, 1, 16, 16)
    composed = make_augmentation([affine, elastic], (1, 16, 16), ONE, ONE)
    torch.manual_seed(5)
    out = composed(images)
    torch.manual_seed(5)
    by_hand = elastic.build((1, 16, 16))(affine.build((1, 16, 16))(images))
    assert torch.equal(out, by_hand)
    torch.manual_seed(5)
    elastic_alone = elastic.build((1, 16, 16))(images)
    assert not torch.allclose(out, elastic_alone)  # the affine map took part
    assert make_augmentation((affine,), (1, 16, 16), ONE, ONE) is not None


@pytest.mark.parametrize("spec", [[], (), ["affine", None], [["affine"]]])
def test_a_bad_list_of_augmentations_is_refused(spec):
    with pytest.raises(ValueError, match="augmentation as a list"):
        make_augmentation(spec, (1, 8, 8), ONE, ONE)


def test_a_list_item_is_checked_as_an_augmentation():
    with pytest.raises(TypeError, match="augmentation must be"):
        make_augmentation(["affine", 3], (1, 8, 8), ONE, ONE)
    with pytest.raises(ValueError, match="unknown"):
        make_augmentation(["affine", "colour"], (1, 8, 8), ONE, ONE)


def test_estimators_take_a_list_of_augmentations_and_record_it(images):
    from skmeta.augmentation import ElasticAugmentation

    X, y = images
    elastic = ElasticAugmentation(alpha=8, sigma=3)
    params = dict(TINY_EPISODES, max_iter=6, random_state=0)
    fitted = [
        MetaFeatureExtractor(augmentation=["affine", elastic], **params).fit(X, y)
        for _ in range(2)
    ]
    elastic_only = MetaFeatureExtractor(augmentation=elastic, **params).fit(X, y)
    a, b = (f.meta_model_ for f in fitted)
    for key, value in a.state.items():
        assert torch.equal(value, b.state[key])
    assert any(
        not torch.equal(value, elastic_only.meta_model_.state[key])
        for key, value in a.state.items()
    )
    assert a.config["training"]["augmentation"] == f"[affine, {elastic!r}]"


def test_the_elastic_preset_is_elastic_augmentation_with_its_defaults():
    from skmeta.augmentation import ElasticAugmentation

    images = torch.rand(4, 1, 16, 16)
    torch.manual_seed(2)
    preset = make_augmentation("elastic", (1, 16, 16), ONE, ONE)(images)
    torch.manual_seed(2)
    assert torch.equal(preset, ElasticAugmentation().build((1, 16, 16))(images))
