"""Tests for skmeta.datasets.ink_box: characters scaled to a box and centred
on their ink."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from skmeta._ink_box import adaptive_aspect
from skmeta.datasets import ink_box


def _canvas(rows: slice, cols: slice, side: int = 105) -> np.ndarray:
    image = np.zeros((1, side, side), dtype=np.uint8)
    image[0, rows, cols] = 255
    return image


def _ink_extent(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(image > 127)
    return int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1


def _centre_of_mass(image: np.ndarray) -> np.ndarray:
    weights = image.astype(float)
    grid = np.indices(image.shape) + 0.5
    return (grid * weights).sum((1, 2)) / weights.sum()


def test_larger_side_fills_the_box_aspect_kept_and_centred():
    tall = _canvas(slice(5, 45), slice(70, 80))  # 40 x 10, in a corner
    out = ink_box(tall, 28)
    assert out.shape == (1, 28, 28) and out.dtype == np.uint8
    height, width = _ink_extent(out[0])
    assert abs(height - 20) <= 1  # the larger side: 20 of 28 pixels
    assert abs(width - 5) <= 1  # a quarter of it, as drawn
    np.testing.assert_allclose(_centre_of_mass(out[0]), [14, 14], atol=0.3)


@pytest.mark.parametrize("box", [0.5, 1.0])
def test_box_share(box):
    out = ink_box(_canvas(slice(40, 60), slice(30, 50)), 40, box=box)
    assert max(_ink_extent(out[0])) == pytest.approx(box * 40, abs=1)


def test_box_none_keeps_the_size_and_only_centres():
    bar = _canvas(slice(10, 62), slice(80, 90))  # 52 px of 105
    out = ink_box(bar, 28, box=None)
    assert _ink_extent(out[0])[0] == pytest.approx(52 * 28 / 105, abs=1)
    np.testing.assert_allclose(_centre_of_mass(out[0]), [14, 14], atol=0.3)


def test_same_character_at_another_place_and_size_gives_the_same_image():
    rng = np.random.default_rng(0)
    glyph = (rng.random((12, 10)) < 0.5).astype(np.uint8) * 255  # any shape
    small = np.zeros((105, 105), dtype=np.uint8)
    small[10:46, 60:90] = np.asarray(
        Image.fromarray(glyph).resize((30, 36), Image.Resampling.NEAREST)
    )
    large = np.zeros((105, 105), dtype=np.uint8)
    large[30:102, 5:65] = np.asarray(
        Image.fromarray(glyph).resize((60, 72), Image.Resampling.NEAREST)
    )
    a, b = ink_box(np.stack([small, large]), 28).astype(float) / 255
    plain = [
        np.asarray(Image.fromarray(x).resize((28, 28))) / 255 for x in (small, large)
    ]
    assert np.abs(a - b).mean() < 0.03  # up to resampling
    assert np.abs(plain[0] - plain[1]).mean() > 5 * np.abs(a - b).mean()


def test_float_input_gives_float_output_equal_to_uint8():
    rng = np.random.default_rng(1)
    images = (rng.random((3, 50, 60)) < 0.1).astype(np.uint8) * 255
    as_float = ink_box(images.astype(np.float64) / 255, 20)
    assert as_float.dtype == np.float32
    np.testing.assert_array_equal(as_float * 255, ink_box(images, 20))


def test_image_without_ink_stays_blank():
    out = ink_box(np.zeros((2, 30, 30), dtype=np.uint8), 10)
    assert out.shape == (2, 10, 10) and out.max() == 0


def test_non_square_canvas():
    image = np.zeros((1, 40, 100), dtype=np.uint8)
    image[0, 5:15, 80:95] = 255
    out = ink_box(image, 16)
    assert max(_ink_extent(out[0])) == pytest.approx(20 / 28 * 16, abs=1)


def test_adaptive_aspect_mapping():
    ratios = np.linspace(0.01, 1, 50)
    mapped = adaptive_aspect(ratios)
    assert adaptive_aspect(1.0) == pytest.approx(1.0)
    assert adaptive_aspect(1 / 3) == pytest.approx(np.sqrt(0.5))  # sin(pi / 6)
    assert np.all(np.diff(mapped) > 0) and np.all(mapped >= ratios)


@pytest.mark.parametrize("wide", [True, False])
def test_adaptive_aspect_widens_the_short_side_only(wide):
    rows, cols = (
        (slice(40, 52), slice(10, 70)) if wide else (slice(10, 70), slice(40, 52))
    )
    bar = _canvas(rows, cols)  # 12 x 60 or 60 x 12: ratio 1/5
    kept = _ink_extent(ink_box(bar, 28)[0])
    out = ink_box(bar, 28, aspect="adaptive")[0]
    adapted = _ink_extent(out)
    long_axis, short_axis = (1, 0) if wide else (0, 1)
    assert adapted[long_axis] == kept[long_axis] == pytest.approx(20, abs=1)
    assert kept[short_axis] == pytest.approx(4, abs=1)  # 20 / 5
    expected = 20 * adaptive_aspect(1 / 5)  # 11.1 pixels
    assert adapted[short_axis] == pytest.approx(expected, abs=1)
    np.testing.assert_allclose(_centre_of_mass(out), [14, 14], atol=0.3)


def test_adaptive_aspect_leaves_square_characters_as_kept():
    rng = np.random.default_rng(1)
    image = np.zeros((1, 105, 105), dtype=np.uint8)
    image[0, 20:60, 30:70] = (rng.random((40, 40)) < 0.4) * 255
    image[0, 20, 30] = image[0, 59, 69] = 255  # a 40 x 40 ink box
    np.testing.assert_array_equal(
        ink_box(image, 28, aspect="adaptive"), ink_box(image, 28)
    )


def _slanted_bar(side: int = 105) -> np.ndarray:
    """A bar 60 rows high leaning right by half a column per row."""
    image = np.zeros((1, side, side), dtype=np.uint8)
    for row in range(20, 80):
        col = 30 + (row - 20) // 2
        image[0, row, col : col + 6] = 255
    return image


def _shear_of(image: np.ndarray) -> float:
    """Columns per row of the ink's principal slant (moment skew)."""
    weights = image.astype(float)
    rows, cols = np.indices(image.shape) + 0.5
    total = weights.sum()
    dy = rows - (rows * weights).sum() / total
    dx = cols - (cols * weights).sum() / total
    return float((dy * dx * weights).sum() / (dy * dy * weights).sum())


def test_deskew_stands_a_slanted_bar_upright():
    bar = _slanted_bar()
    assert _shear_of(bar[0]) == pytest.approx(0.5, abs=0.05)
    kept = ink_box(bar, 56)[0]
    upright = ink_box(bar, 56, deskew=1.0)[0]
    half = ink_box(bar, 56, deskew=0.5)[0]
    assert _shear_of(kept) == pytest.approx(0.5, abs=0.05)  # isotropic box
    assert abs(_shear_of(upright)) < 0.03
    assert _shear_of(half) == pytest.approx(0.25, abs=0.04)
    # the box is measured on the deskewed ink: the bar fills it upright
    height, width = _ink_extent(upright)
    assert height == pytest.approx(40, abs=1)  # 20 of 28 at 56 px
    assert width < 10
    np.testing.assert_allclose(_centre_of_mass(upright), [28, 28], atol=0.5)


def test_deskew_path_with_no_shear_renders_as_before():
    # 1e-12 of the slant takes the shearing map, with a negligible shear:
    # its rendering is the unsheared one, pixel for pixel
    rng = np.random.default_rng(2)
    images = ((rng.random((3, 105, 105)) < 0.02) * 255).astype(np.uint8)
    images = np.concatenate([images, _slanted_bar()])
    for kwargs in ({}, {"aspect": "adaptive"}, {"box": None}):
        np.testing.assert_array_equal(
            ink_box(images, 28, deskew=1e-12, **kwargs), ink_box(images, 28, **kwargs)
        )


def test_deskew_shears_nearly_flat_characters_45_degrees_at_most():
    flat = np.zeros((1, 105, 105), dtype=np.uint8)
    flat[0, 50:53, 20:50] = 255  # a bar 3 rows high, stepping up one row
    flat[0, 49:52, 50:80] = 255
    assert abs(_shear_of(flat[0])) > 5  # the moments alone: 8 columns a row
    kept = _ink_extent(ink_box(flat, 56)[0])
    upright = _ink_extent(ink_box(flat, 56, deskew=1.0)[0])
    assert upright[1] >= kept[1] - 2  # still as long: not folded onto itself


def test_deskew_with_redrawn_strokes():
    pytest.importorskip("skimage")
    upright = ink_box(_slanted_bar(), 56, deskew=1.0, stroke_width=3.0)[0]
    assert abs(_shear_of(upright)) < 0.05


def _stroke_width(image: np.ndarray) -> float:
    """Twice the ink area over its edge pixels: a stroke's width, in pixels."""
    from scipy import ndimage

    ink = image > 127
    edge = ink & ~ndimage.binary_erosion(ink)
    return 2 * ink.sum() / edge.sum()


def test_stroke_width_redraws_thin_and_thick_pens_alike():
    pytest.importorskip("skimage")
    thin = _canvas(slice(20, 23), slice(10, 90))  # a 3-pixel pen, wide bar
    thick = _canvas(slice(15, 30), slice(10, 90))  # a 15-pixel pen
    for bar in (thin, thick):
        bar[0, 10:90, 48 : 51 if bar is thin else 43 : 58] = 255  # a cross
    kept = [_stroke_width(ink_box(b, 56)[0]) for b in (thin, thick)]
    redrawn = [
        _stroke_width(ink_box(b, 56, stroke_width=3.0)[0]) for b in (thin, thick)
    ]
    assert kept[1] > 3 * kept[0]  # the pen's width scales with the box
    assert redrawn == pytest.approx([3.0, 3.0], abs=0.8)
    out = ink_box(thick, 56, stroke_width=3.0)[0]
    np.testing.assert_allclose(_centre_of_mass(out), [28, 28], atol=1.0)


def test_stroke_width_keeps_the_box():
    pytest.importorskip("skimage")
    tall = _canvas(slice(5, 65), slice(40, 44))  # a vertical bar, 60 high
    height, _ = _ink_extent(ink_box(tall, 28, stroke_width=1.6)[0])
    assert height == pytest.approx(20, abs=2)  # the skeleton spans the box


@pytest.mark.parametrize(
    "images, kwargs, error, match",
    [
        (np.zeros((5, 5), np.uint8), {}, ValueError, "n_images, height, width"),
        (np.zeros((0, 5, 5), np.uint8), {}, ValueError, "no empty axis"),
        (np.zeros((1, 5, 5), np.int32), {}, TypeError, "uint8"),
        (np.full((1, 5, 5), 2.0), {}, ValueError, r"\[0, 1\]"),
        (np.full((1, 5, 5), np.nan), {}, ValueError, "finite"),
        (np.zeros((1, 5, 5), np.uint8), {"image_size": 0}, ValueError, "image_size"),
        (np.zeros((1, 5, 5), np.uint8), {"image_size": True}, ValueError, "image_size"),
        (np.zeros((1, 5, 5), np.uint8), {"box": 0}, ValueError, "box"),
        (np.zeros((1, 5, 5), np.uint8), {"box": 1.5}, ValueError, "box"),
        (np.zeros((1, 5, 5), np.uint8), {"box": True}, ValueError, "box"),
        (np.zeros((1, 5, 5), np.uint8), {"supersample": 0}, ValueError, "supersample"),
        (np.zeros((1, 5, 5), np.uint8), {"aspect": "fill"}, ValueError, "aspect"),
        (
            np.zeros((1, 5, 5), np.uint8),
            {"aspect": "adaptive", "box": None},
            ValueError,
            "needs a box",
        ),
        (np.zeros((1, 5, 5), np.uint8), {"deskew": -0.1}, ValueError, "deskew"),
        (np.zeros((1, 5, 5), np.uint8), {"deskew": 1.5}, ValueError, "deskew"),
        (np.zeros((1, 5, 5), np.uint8), {"deskew": True}, ValueError, "deskew"),
        (np.zeros((1, 5, 5), np.uint8), {"deskew": "1"}, ValueError, "deskew"),
        (
            np.zeros((1, 5, 5), np.uint8),
            {"stroke_width": 0},
            ValueError,
            "stroke_width",
        ),
        (
            np.zeros((1, 5, 5), np.uint8),
            {"stroke_width": 28},
            ValueError,
            "stroke_width",
        ),
        (
            np.zeros((1, 5, 5), np.uint8),
            {"stroke_width": "1"},
            ValueError,
            "stroke_width",
        ),
    ],
)
def test_bad_input_is_named(images, kwargs, error, match):
    with pytest.raises(error, match=match):
        ink_box(images, **kwargs)


def test_stroke_width_without_scikit_image_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage fails
    monkeypatch.setitem(sys.modules, "skimage.morphology", None)
    blank = np.zeros((1, 20, 20), dtype=np.uint8)  # raised before any ink
    with pytest.raises(ImportError, match=r"skmeta\[strokes\]"):
        ink_box(blank, 28, stroke_width=1.6)
