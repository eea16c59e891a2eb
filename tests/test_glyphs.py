"""Tests for the synthetic glyph data set."""

import numpy as np
import pytest
import torch

from skmeta._glyphs import _candidates, make_glyphs


def test_shapes_dtypes_and_range():
    X, y = make_glyphs(4, 3, image_size=16, random_state=0)
    assert X.shape == (12, 256) and X.dtype == np.float32
    assert y.shape == (12,) and y.dtype == np.int64
    assert X.min() >= 0.0 and X.max() <= 1.0
    assert np.all(np.isfinite(X))


def test_labels_grouped_by_class():
    _, y = make_glyphs(5, 4, random_state=1)
    np.testing.assert_array_equal(y, np.repeat(np.arange(5), 4))


def test_images_have_ink_on_dark_background():
    X, _ = make_glyphs(10, 5, random_state=2)
    images = X.reshape(-1, 28, 28)
    ink = images.mean(axis=(1, 2))
    assert np.all(ink > 0.02) and np.all(ink < 0.6)
    assert np.all(images.max(axis=(1, 2)) > 0.9)  # strokes are bright
    border = np.concatenate([images[:, 0], images[:, -1]], axis=1)
    assert border.mean() < 0.1  # mostly dark margin


def test_same_int_seed_is_identical_other_seed_differs():
    X1, y1, c1 = make_glyphs(6, 3, random_state=42, return_characters=True)
    X2, y2, c2 = make_glyphs(6, 3, random_state=42, return_characters=True)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert c1 == c2
    X3, _, c3 = make_glyphs(6, 3, random_state=43, return_characters=True)
    assert c3 != c1 and not np.array_equal(X1, X3)


@pytest.mark.parametrize(
    "make_state", [np.random.default_rng, np.random.RandomState], ids=["gen", "rs"]
)
def test_numpy_random_states_are_accepted(make_state):
    X1, _ = make_glyphs(3, 2, random_state=make_state(0))
    X2, _ = make_glyphs(3, 2, random_state=make_state(0))
    np.testing.assert_array_equal(X1, X2)


def test_torch_global_rng_untouched():
    state = torch.get_rng_state()
    make_glyphs(3, 2, random_state=0)
    assert torch.equal(state, torch.get_rng_state())


def test_characters_are_distinct_and_returned():
    X, y, chars = make_glyphs(30, 2, random_state=3, return_characters=True)
    assert len(chars) == 30 and len(set(chars)) == 30
    assert all(isinstance(c, str) and len(c) == 1 for c in chars)
    assert all(not c.isspace() for c in chars)
    assert len(make_glyphs(30, 2, random_state=3)) == 2


def test_candidates_are_many_and_deduplicated():
    chars = [c for c, _ in _candidates(10)]
    assert len(chars) > 1500 and len(set(chars)) == len(chars)
    assert all(len(faces) >= 10 for _, faces in _candidates(10))
    assert "A" in chars and "\u0391" not in chars  # Greek capital alpha looks like A


def test_samples_of_one_class_differ():
    X, _ = make_glyphs(2, 6, random_state=4)
    first = X[:6]
    diffs = np.abs(first[:, None] - first[None]).mean(-1)
    assert np.all(diffs[~np.eye(6, dtype=bool)] > 1e-3)


def test_classes_differ_more_than_chance():
    X, y = make_glyphs(20, 10, random_state=5)
    means = np.stack([X[y == k].mean(0) for k in range(20)])
    d = ((X[:, None] - means[None]) ** 2).sum(-1)
    assert (d.argmin(1) == y).mean() > 0.5  # well above the 5% chance level


def test_too_many_classes():
    available = len(_candidates(10))
    with pytest.raises(ValueError, match=f"the {available} distinct characters"):
        make_glyphs(available + 1, 1)
    strict = len(_candidates(16))
    assert strict < available
    with pytest.raises(ValueError, match=f"n_classes={strict + 1} exceeds"):
        make_glyphs(strict + 1, 1, min_faces=16)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_classes": 0}, "n_classes must be >= 1"),
        ({"n_classes": 2.5}, "n_classes must be an int"),
        ({"n_samples_per_class": 0}, "n_samples_per_class must be >= 1"),
        ({"n_samples_per_class": True}, "n_samples_per_class must be an int"),
        ({"image_size": 7}, "image_size must be >= 8"),
        ({"min_faces": 0}, "min_faces must be >= 1"),
        ({"min_faces": 17}, "min_faces must be <= 16"),
    ],
)
def test_bad_arguments(kwargs, match):
    params = {"n_classes": 2, "n_samples_per_class": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_glyphs(**params)


@pytest.mark.parametrize("size", [8, 64, 105])
def test_other_image_sizes(size):
    X, _ = make_glyphs(2, 2, image_size=size, random_state=0)
    assert X.shape == (4, size * size)
    assert X.max() > 0.5
