"""Augmentation during meta-training: per batch, seeded, never at adaptation."""

import numpy as np
import pytest
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.augmentation import FeatureAugmentation, ImageAugmentation
from skmeta.meta.augment import make_augmentation
from skmeta.meta.train import TrainSettings, meta_train

ONE = torch.ones(1)


def test_image_augmentation_changes_images_reproducibly():
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
    X, y = images
    settings = dict(
        n_way=4,
        k_shot=2,
        n_query=2,
        input_shape=(1, 12, 12),
        max_iter=8,
        backbone="conv4_strided",
    )
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
