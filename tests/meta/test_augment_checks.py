"""Silent augmentation mistakes caught: flips with mirror-image classes, and
callables that change a sample's shape or pixel range (a reviewer's finds)."""

import warnings

import numpy as np
import pytest
import torch

from skmeta.augmentation import ImageAugmentation
from skmeta.meta.augment import make_augmentation
from skmeta.meta.augment_checks import check_flips_with_class_augmentation
from skmeta.meta.train import TrainSettings, meta_train

ONE = torch.ones(1)
TINY = dict(
    n_way=4, k_shot=2, n_query=2, input_shape=(1, 12, 12), backbone="conv4_strided"
)


@pytest.mark.parametrize("spec", ["images", ImageAugmentation(), [ImageAugmentation()]])
def test_flips_with_mirror_image_classes_are_refused(images, spec):
    """With "dihedral", a flipped image of one class is exactly the image of
    another: half the flipped draws were mislabelled, in silence."""
    X, y = images
    settings = TrainSettings(
        augmentation=spec, class_augmentation="dihedral", max_iter=1, **TINY
    )
    with pytest.raises(ValueError, match="every flipped image would carry another"):
        meta_train(X, y, settings)


def test_flips_with_quarter_turn_classes_warn_and_no_flip_is_quiet():
    with pytest.warns(UserWarning, match="left-right symmetric object"):
        check_flips_with_class_augmentation(ImageAugmentation(), "rot90")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_flips_with_class_augmentation(ImageAugmentation(flip=False), "rot90")
        check_flips_with_class_augmentation(ImageAugmentation(flip=False), "dihedral")
        check_flips_with_class_augmentation("affine", "dihedral")
        check_flips_with_class_augmentation("images", None)


def test_a_callable_that_changes_the_sample_shape_is_named(images):
    X, y = images
    settings = TrainSettings(augmentation=lambda s: s[:, :10, :10], max_iter=2, **TINY)
    with pytest.raises(ValueError, match=r"returned \(1, 10, 10\) for a sample of"):
        meta_train(X, y, settings)


def test_a_callable_that_scales_0_255_pixels_to_unit_range_warns_once():
    """As v2.ToDtype(torch.float32, scale=True) in a pipeline does: the network
    standardises with the 0-255 statistics and trains on constant inputs."""
    augment = make_augmentation(lambda s: s.float() / 255, (1, 4, 4), ONE, ONE)
    batch = torch.randint(0, 256, (3, 1, 4, 4), dtype=torch.uint8)
    with pytest.warns(UserWarning, match="turned 0-255 pixels into values in"):
        out = augment(batch)
    np.testing.assert_allclose(out.numpy(), batch.numpy() / 255, rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        augment(batch)  # said once
        make_augmentation(lambda s: s.flip(-1), (1, 4, 4), ONE, ONE)(batch)


def test_custom_augmentations_are_described_without_memory_addresses():
    """A functools.partial or a callable object was recorded by its repr,
    with an address that differs per process: no checkpoint of such a run
    could resume, and torchrun's ranks disagreed (a reviewer)."""
    import functools

    from skmeta.meta.augment import describe_augmentation

    def noise(x, scale=0.1):
        return x

    class Noise:
        def __init__(self, scale):
            self.scale = scale

        def __call__(self, x):
            return x

    partial = describe_augmentation(functools.partial(noise, scale=0.1))
    assert "0x" not in partial and partial.endswith("noise, scale=0.1)")
    assert describe_augmentation(Noise(0.2)).endswith("Noise(scale=0.2)")
    assert describe_augmentation(Noise(0.2)) != describe_augmentation(Noise(0.3))
