"""Tests for skmeta._image_decode: integer grey levels (16 and 32 bits) to 8 bits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skmeta._image_decode import _to_mode, decode_image
from skmeta.datasets import load_image_folder


def _decode(path):
    return decode_image(path, (2, 3), "L", False).tolist()


@pytest.mark.parametrize("fmt", ["png", "tif"])
@pytest.mark.parametrize(
    "value, expected",
    [(257 * 200, 200), (65535, 255), (100, 0), (129, 1), (0, 0)],
)
def test_16_bit_grey_levels_are_scaled_from_65535(tmp_path, fmt, value, expected):
    path = tmp_path / f"grey16.{fmt}"
    Image.fromarray(np.full((2, 3), value, np.uint16)).save(path)
    mode = Image.open(path).mode  # Pillow before 10.3 opens 16-bit PNGs as "I"
    assert mode.startswith("I;16") or (fmt == "png" and mode == "I")
    assert _decode(path) == [expected] * 6


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0, 1, 200, 255, 7, 9], [0, 1, 200, 255, 7, 9]),  # 8-bit values: kept
        ([0, 256, 257 * 200, 65535, 7, 9], [0, 1, 200, 255, 0, 0]),  # as 16 bits
        ([0, 2**31 - 1, 65536, 2**30, 0, 0], [0, 255, 0, 128, 0, 0]),  # 32 bits
        ([-5, 200, 100, 0, 0, 0], [0, 200, 100, 0, 0, 0]),  # negative: clipped
    ],
)
def test_32_bit_grey_levels_are_scaled_by_their_range(tmp_path, values, expected):
    path = tmp_path / "grey32.tif"
    Image.fromarray(np.array(values, np.int32).reshape(2, 3)).save(path)
    image = Image.open(path)
    assert image.mode == "I" and image.tag_v2[258] in (32, (32,))  # BitsPerSample
    assert _decode(path) == expected


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.0, 1.0, 0.5, 0.25, 1.0, 0.0], [0, 255, 128, 64, 255, 0]),  # white 1.0
        ([0.0, 255.0, 100.0, 1.5, -3.0, 300.0], [0, 255, 100, 2, 0, 255]),  # 255
        ([np.nan, 1.0, 0.0, 0.0, 0.0, 0.0], [0, 255, 0, 0, 0, 0]),  # NaN: black
    ],
)
def test_float_grey_levels_are_scaled_from_1_or_255(tmp_path, values, expected):
    """Mode F (32-bit float TIFFs) in [0, 1] loaded almost black (a reviewer)."""
    path = tmp_path / "float.tif"
    Image.fromarray(np.array(values, np.float32).reshape(2, 3), "F").save(path)
    assert Image.open(path).mode == "F"
    assert _decode(path) == expected


def test_32_bit_tiff_through_the_folder_loader(tmp_path):
    (tmp_path / "c").mkdir()
    Image.fromarray(np.full((4, 4), 200, np.int32)).save(tmp_path / "c" / "i.tif")
    bunch = load_image_folder(tmp_path, image_size=4, color="rgb")
    np.testing.assert_array_equal(bunch.data, 200)


@pytest.mark.parametrize(
    "bits, value, expected",
    [(16, 200, 1), (16, 257 * 200, 200), (12, 4095, 255), (12, 200, 12), (8, 200, 200)],
)
def test_a_declared_bit_depth_sets_white(bits, value, expected):
    # as a 16-bit PNG opened by older Pillows (mode "I"), or an n-bit TIFF
    image = Image.fromarray(np.full((2, 2), value, np.int32))
    assert image.mode == "I"
    grey = _to_mode(image, "L", bits)
    assert grey.mode == "L" and np.asarray(grey).tolist() == [[expected] * 2] * 2


@pytest.mark.parametrize(
    "value, expected", [(32767, 255), (16384, 128), (-1000, 0), (0, 0), (129, 1)]
)
def test_signed_16_bit_grey_levels_are_scaled_from_32767(tmp_path, value, expected):
    from PIL import TiffImagePlugin

    path = tmp_path / "signed16.tif"
    raw = np.full((2, 3), value, dtype="<i2").tobytes()
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[339] = 2  # SampleFormat: signed integers
    Image.frombytes("I;16", (3, 2), raw).save(path, tiffinfo=info)
    image = Image.open(path)
    assert image.tag_v2[339] in (2, (2,)) and image.tag_v2[258] in (16, (16,))
    assert _decode(path) == [expected] * 6


def test_a_cache_of_the_earlier_decoding_is_rebuilt(tmp_path):
    """Caches written before signed images were scaled from 32767 (format 2)
    hold their old rows: they are decoded again, not reused."""
    import json

    from PIL import TiffImagePlugin

    (tmp_path / "tree" / "c").mkdir(parents=True)
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[339] = 2
    raw = np.full((4, 4), 32767, dtype="<i2").tobytes()
    Image.frombytes("I;16", (4, 4), raw).save(tmp_path / "tree/c/0.tif", tiffinfo=info)
    cache = tmp_path / "rows.npy"
    load_image_folder(tmp_path / "tree", image_size=4, color="grey", mmap_path=cache)
    np.save(cache, np.full((1, 16), 127, np.uint8))  # what the earlier code wrote
    manifest = json.loads(cache.with_name("rows.npy.json").read_text())
    manifest["format"] = 2
    cache.with_name("rows.npy.json").write_text(json.dumps(manifest))
    again = load_image_folder(
        tmp_path / "tree", image_size=4, color="grey", mmap_path=cache
    )
    np.testing.assert_array_equal(again.data, 255)
