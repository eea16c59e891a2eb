"""Tests for ElasticAugmentation: smooth random displacements of each image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skmeta import MetaFeatureExtractor
from skmeta.augmentation import ElasticAugmentation
from skmeta.meta.augment import describe_augmentation, make_augmentation
from skmeta.meta.elastic import gaussian_smoothed

ONE = torch.ones(1)


def test_gaussian_smoothing_keeps_constants_and_spreads_a_point():
    flat = torch.full((2, 3, 9, 11), 0.7)
    torch.testing.assert_close(gaussian_smoothed(flat, 2.0), flat)
    point = torch.zeros(1, 1, 41, 41)
    point[..., 20, 20] = 1.0
    blurred = gaussian_smoothed(point, 3.0)[0, 0]
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5)
    rows = torch.arange(41.0) - 20
    spread = (blurred.sum(1) * rows**2).sum().sqrt()
    assert spread == pytest.approx(3.0, abs=0.05)  # the Gaussian's sigma
    # an image smaller than the kernel's reach: mirrored as often as needed,
    # so constants stay constant and a wider blur only flattens the field
    small = torch.full((1, 2, 5, 5), 0.3)
    torch.testing.assert_close(gaussian_smoothed(small, 4.0), small)
    noise = torch.rand(400, 2, 28, 28, generator=torch.Generator().manual_seed(0))
    spread = [gaussian_smoothed(noise, s).std().item() for s in (4, 9, 10, 30, 100)]
    assert spread == sorted(spread, reverse=True)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_smoothed(noise, 0.0)


def test_displacements_move_sampling_points_right_then_down_in_pixels():
    class Constant(ElasticAugmentation):
        def displacements(self, n, height, width):
            field = torch.zeros(n, 2, height, width)
            field[:, 0], field[:, 1] = 1.0, 2.0  # 1 pixel right, 2 down
            return field

    x = torch.rand(2, 1, 5, 9)
    out = Constant(padding="zeros").build((1, 5, 9))(x)
    torch.testing.assert_close(out[..., :3, :8], x[..., 2:, 1:])


def test_displacements_have_the_documented_scale_and_smoothness():
    torch.manual_seed(0)
    field = ElasticAugmentation(alpha=16.0, sigma=4.0).displacements(200, 28, 28)
    assert field.shape == (200, 2, 28, 28)
    inner = field[..., 12:-12, 12:-12].std().item()  # 3 sigma from the edges
    assert inner == pytest.approx(16.0 / 25, rel=0.1)  # about alpha / 25
    std = field.std().item()
    assert std == pytest.approx(0.8, rel=0.1)  # more near the reflected edges
    # smooth: neighbouring pixels move almost alike
    step = (field[..., 1:] - field[..., :-1]).std().item()
    assert step < 0.25 * std  # white noise: 1.41 * std
    zero = ElasticAugmentation(alpha=0.0).build((1, 12, 12))
    images = torch.rand(3, 1, 12, 12)
    torch.testing.assert_close(zero(images), images)


def test_elastic_augmentation_moves_ink_a_little_per_image_and_is_seeded():
    images = torch.zeros(50, 1, 28, 28)
    images[..., 6:22, 13:15] = 1.0  # a vertical stroke
    augment = ElasticAugmentation(alpha=34.0, sigma=4.0).build((1, 28, 28))
    torch.manual_seed(3)
    out = augment(images)
    torch.manual_seed(3)
    assert torch.equal(out, augment(images))
    assert not torch.equal(out[0], out[1])  # a field per image
    moved = (out - images).abs().sum((1, 2, 3))
    assert (moved > 0.5).all()  # every stroke bends
    # the ink stays near its place: bends, no shift across the image
    cols = torch.arange(28.0)
    centre = (out.sum((1, 2)) * cols).sum(1) / out.sum((1, 2, 3))
    assert (centre - 14.0).abs().max() < 3.0
    as_bytes = (images * 255).to(torch.uint8)
    torch.manual_seed(3)
    moved_bytes = augment(as_bytes)
    assert moved_bytes.dtype == torch.uint8
    torch.testing.assert_close(moved_bytes.float(), (out * 255).round())


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1.0}, "alpha must be a finite float, 0 <= alpha"),
        ({"alpha": float("inf")}, "alpha must be a finite float"),
        ({"alpha": "16"}, "alpha must be a finite float"),
        ({"sigma": 0.0}, "sigma must be a finite float, 0 < sigma"),
        ({"sigma": float("inf")}, "sigma must be a finite float"),
        ({"padding": "wrap"}, "padding must be"),
    ],
)
def test_bad_elastic_settings_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        ElasticAugmentation(**params).build((1, 8, 8))
    with pytest.raises(ValueError, match="needs images"):
        make_augmentation(ElasticAugmentation(), (64,), ONE, ONE)


def test_estimators_meta_train_with_it_and_record_it():
    rng = np.random.default_rng(0)
    X = rng.random((48, 144), dtype=np.float32)
    y = np.repeat(np.arange(8), 6)
    spec = ElasticAugmentation(alpha=8.0, sigma=2.0)
    extractor = MetaFeatureExtractor(
        augmentation=spec,
        input_shape=(1, 12, 12),
        backbone="conv4_strided",
        n_way=4,
        k_shot=2,
        n_query=2,
        max_iter=3,
        random_state=0,
    ).fit(X, y)
    recorded = extractor.meta_model_.config["training"]["augmentation"]
    assert recorded == describe_augmentation(spec) == repr(spec)
    assert extractor.transform(X[:3]).shape[0] == 3
