"""Shared tiny data and models: a few hundred rows, seconds of training."""

import numpy as np
import pytest
from _torchvision_env import allow_torchvision_import
from sklearn.datasets import make_blobs

from skmeta.meta.train import TrainSettings, meta_train

allow_torchvision_import()


@pytest.fixture(scope="session")
def blobs():
    """Tabular rows, 24 classes of 15 samples: classes 0-15 for meta-training,
    16-23 as novel classes."""
    X, y = make_blobs(360, n_features=10, centers=24, cluster_std=1.5, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def blob_model(blobs):
    X, y = blobs
    base = y < 16
    settings = TrainSettings(
        n_way=5, k_shot=2, n_query=5, input_shape=(10,), max_iter=60, seed=0
    )
    return meta_train(X[base], y[base], settings)


@pytest.fixture(scope="session")
def images():
    """Tiny 1x12x12 'images': 10 classes of 8, each a noisy fixed pattern."""
    rng = np.random.default_rng(0)
    patterns = rng.random((10, 144)) > 0.7
    y = np.repeat(np.arange(10), 8)
    X = patterns[y] * 1.0 + 0.3 * rng.standard_normal((80, 144))
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def image_model(images):
    """A ProtoNet of the `images` fixture's 1x12x12 rows (3 iterations, rot90
    classes): the model the test-time augmentation tests deploy."""
    from skmeta import MetaFeatureExtractor

    X, y = images
    return (
        MetaFeatureExtractor(
            input_shape=(1, 12, 12),
            backbone="conv4_strided",
            class_augmentation="rot90",
            max_iter=3,
            n_way=4,
            k_shot=2,
            n_query=2,
            random_state=0,
        )
        .fit(X[y < 6], y[y < 6])
        .meta_model_
    )


@pytest.fixture(scope="session")
def maml_image_model(images):
    """A MAML model of the `images` fixture's 1x12x12 rows (one iteration):
    a method that adapts the network's layers itself."""
    from skmeta import MetaFeatureExtractor

    X, y = images
    return (
        MetaFeatureExtractor(
            method="maml",
            input_shape=(1, 12, 12),
            backbone="conv4_strided",
            max_iter=1,
            n_way=3,
            k_shot=1,
            n_query=1,
        )
        .fit(X, y)
        .meta_model_
    )
