"""From a folder of image files to few-shot predictions on new classes, on real
pixels (glyphs written as PNG files), with no download."""

import numpy as np
import pytest
from _image_trees import write_image_tree
from sklearn.neighbors import KNeighborsClassifier

from skmeta import FewShotClassifier, MetaFeatureExtractor, episodic_score
from skmeta.augmentation import ImageAugmentation
from skmeta.datasets import load_image_folder, make_glyphs


def _split(bunch, n_base):
    base = bunch.target < n_base
    return (bunch.data[base], bunch.target[base]), (
        bunch.data[~base],
        bunch.target[~base],
    )


def _accuracies(model, X, y, k_shot=1):
    episodes = dict(n_way=5, k_shot=k_shot, n_query=5, n_episodes=60, random_state=0)
    learnt = episodic_score(FewShotClassifier(pretrained=model), X, y, **episodes)
    raw = episodic_score(KNeighborsClassifier(1), X.astype(np.float32), y, **episodes)
    return learnt.mean, raw.mean


def test_uint8_rows_from_a_folder_learn_new_classes(tmp_path):
    X, y = make_glyphs(n_classes=40, n_samples_per_class=10, random_state=0)
    write_image_tree(tmp_path, X, y)
    bunch = load_image_folder(tmp_path, image_size=28, color="grey")
    assert bunch.data.dtype == np.uint8
    (Xb, yb), (Xn, yn) = _split(bunch, 30)
    extractor = MetaFeatureExtractor(
        input_shape=bunch.input_shape,
        backbone="conv4_strided",
        n_way=10,
        k_shot=1,
        n_query=4,
        max_iter=150,
        random_state=0,
    ).fit(Xb, yb)  # uint8 rows, as loaded
    learnt, raw = _accuracies(extractor.meta_model_, Xn, yn)
    assert learnt > raw + 0.1, (learnt, raw)


@pytest.mark.slow
def test_resnet12_learns_on_84x84_colour_images(tmp_path):
    X, y = make_glyphs(n_classes=30, n_samples_per_class=8, random_state=0)
    # ink and background colours drawn per image: colour carries no class
    write_image_tree(tmp_path, X, y, size=84, color="rgb", palette="image")
    bunch = load_image_folder(tmp_path, image_size=(84, 84), color="rgb")
    assert bunch.input_shape == (3, 84, 84)
    (Xb, yb), (Xn, yn) = _split(bunch, 20)
    extractor = MetaFeatureExtractor(
        input_shape=bunch.input_shape,
        backbone="resnet12",
        backbone_params={"channels": (8, 16, 32, 64)},
        augmentation=ImageAugmentation(crop_scale=(0.8, 1.0), flip=False),
        n_way=5,
        k_shot=1,
        n_query=3,
        max_iter=150,
        random_state=0,
    ).fit(Xb, yb)
    learnt, raw = _accuracies(extractor.meta_model_, Xn, yn)
    assert learnt > raw + 0.1, (learnt, raw)
