"""Tests for skmeta._image_folder.load_image_folder, on real files in tmp_path."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _image_trees import decode_counter, write_image_tree
from PIL import Image, features

from skmeta import MetaFeatureExtractor
from skmeta.datasets import load_image_folder, make_glyphs


@pytest.fixture(scope="module")
def glyphs():
    """3 classes of 4 grey 28x28 glyphs, as [0, 1] floats (make_glyphs' rows)."""
    X, y = make_glyphs(n_classes=3, n_samples_per_class=4, random_state=0)
    return X, y


def _save(path, pixels, mode=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(pixels))
    (img.convert(mode) if mode else img).save(path, **kwargs)
    return path


def _flat(pixels):
    """(n, H, W) or (n, H, W, 3) uint8 images as channel-first rows."""
    if pixels.ndim == 4:
        pixels = pixels.transpose(0, 3, 1, 2)
    return pixels.reshape(len(pixels), -1)


# -- values, shapes, order ---------------------------------------------------


@pytest.mark.parametrize("color", ["grey", "gray", "rgb"])
def test_round_trip_is_exact_at_the_files_own_size(tmp_path, glyphs, color):
    X, y = glyphs
    tree = write_image_tree(tmp_path, X, y, color="rgb" if color == "rgb" else "grey")
    expected = _flat(tree.pixels[tree.order])
    bunch = load_image_folder(tmp_path, image_size=28, color=color)
    assert bunch.data.dtype == np.uint8
    np.testing.assert_array_equal(bunch.data, expected)
    floats = load_image_folder(
        tmp_path, image_size=(28, 28), color=color, dtype="float32"
    )
    assert floats.data.dtype == np.float32
    np.testing.assert_array_equal(floats.data, expected.astype(np.float32) / 255)
    assert 0.0 <= floats.data.min() and floats.data.max() <= 1.0
    channels = 3 if color == "rgb" else 1
    assert bunch.input_shape == (channels, 28, 28)
    assert bunch.data.shape == (12, channels * 28 * 28)
    assert bunch.images.shape == (12, channels, 28, 28)
    np.testing.assert_array_equal(bunch.images[0].ravel(), bunch.data[0])


def test_glyph_rows_survive_the_png_round_trip(tmp_path, glyphs):
    X, y = glyphs
    tree = write_image_tree(tmp_path, X, y)
    bunch = load_image_folder(tmp_path, image_size=28, color="grey", dtype="float32")
    np.testing.assert_allclose(bunch.data, X[tree.order], atol=0.5 / 255 + 1e-7)
    np.testing.assert_array_equal(bunch.target, y[tree.order])


def test_targets_follow_the_sorted_folder_names(tmp_path, glyphs):
    X, y = glyphs
    names = {0: "zebra", 1: "ant", 2: "Moth"}  # sorted: Moth, ant, zebra
    tree = write_image_tree(tmp_path, X, y, class_names=names)
    bunch = load_image_folder(tmp_path, image_size=28, color="grey")
    assert bunch.target_names.tolist() == ["Moth", "ant", "zebra"]
    assert bunch.target.dtype == np.int64
    rank = {2: 0, 1: 1, 0: 2}
    assert bunch.target.tolist() == [rank[label] for label in y[tree.order]]
    assert isinstance(bunch.filenames, np.ndarray) and bunch.filenames.dtype.kind == "U"
    assert bunch.filenames.tolist() == [str(tree.paths[i]) for i in tree.order]
    for path, target in zip(bunch.filenames, bunch.target, strict=True):
        assert os.path.basename(os.path.dirname(path)) == bunch.target_names[target]
    assert "12 images of 3 classes" in bunch.DESCR
    data, target = load_image_folder(tmp_path, image_size=28, return_X_y=True)
    np.testing.assert_array_equal(target, bunch.target)
    assert data.shape == (12, 3 * 28 * 28)


def test_nested_folders_are_read_in_imagefolder_order(tmp_path):
    for rel in ["a/sub/0.png", "a/z.png", "a/b.png", "a/sub/deeper/1.png", "b/x.png"]:
        _save(tmp_path / rel, np.zeros((4, 4), np.uint8))
    bunch = load_image_folder(tmp_path, image_size=4, color="grey")
    rel = [os.path.relpath(f, tmp_path).replace(os.sep, "/") for f in bunch.filenames]
    assert rel == ["a/b.png", "a/z.png", "a/sub/0.png", "a/sub/deeper/1.png", "b/x.png"]
    assert bunch.target.tolist() == [0, 0, 0, 0, 1]


def test_image_tree_helper_resizes_and_colours_per_class(tmp_path, glyphs):
    X, y = glyphs
    tree = write_image_tree(tmp_path, X, y, size=84, color="rgb", palette="class")
    assert tree.pixels.shape == (12, 84, 84, 3)
    bunch = load_image_folder(tmp_path)  # defaults: 84x84 RGB uint8
    assert bunch.input_shape == (3, 84, 84)
    np.testing.assert_array_equal(bunch.data, _flat(tree.pixels[tree.order]))
    for label in range(3):  # two colours per class, ink and background
        colours = np.unique(
            tree.pixels[y == label][:, [0, -1], [0, -1]].reshape(-1, 3), axis=0
        )
        assert len(colours) == 1  # corners are background
    jpg = write_image_tree(tmp_path / "jpg", X, y, fmt="jpg", rng=1)
    assert all(p.suffix == ".jpg" for p in jpg.paths)
    loaded = load_image_folder(tmp_path / "jpg", image_size=28, color="grey")
    assert np.abs(loaded.data.astype(int) - _flat(jpg.pixels[jpg.order])).mean() < 2


# -- resizing and conversions -------------------------------------------------


def test_stretch_and_centre_crop(tmp_path):
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = wide[:, 40:] = (255, 0, 0)  # red sides, blue centre square
    wide[:, 20:40] = (0, 0, 255)
    _save(tmp_path / "c" / "wide.png", wide)
    crop = load_image_folder(tmp_path, image_size=(10, 10), resize="crop").images[0]
    # as ImageOps.fit: the filter reads a little past the box, so the edges blend
    np.testing.assert_array_equal(crop[0, :, 1:-1], 0)
    np.testing.assert_array_equal(crop[2, :, 1:-1], 255)
    assert crop[0].max() < 64 and crop[2].min() > 192
    stretch = load_image_folder(tmp_path, image_size=(10, 12)).images[0]
    assert stretch.shape == (3, 10, 12)
    assert stretch[0, :, 0].min() == 255 and stretch[0, :, 6].max() == 0
    np.testing.assert_array_equal(stretch[:, :, 6], crop[:, :, 5])


def test_mixed_sizes_modes_and_formats(tmp_path):
    c = tmp_path / "mixed"
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[5:, :, 3] = 255  # top half transparent, bottom half opaque
    _save(c / "a_rgba.png", rgba)
    palette = Image.new("P", (7, 9))
    palette.putpalette([0, 0, 0, 40, 80, 120])
    palette.paste(1, (0, 0, 7, 9))
    palette.save(c / "b_palette.png")
    _save(c / "c_grey_big.png", np.full((64, 50), 77, np.uint8))
    _save(c / "d_grey_alpha.png", np.full((6, 6, 2), (90, 255), np.uint8), mode="LA")
    _save(c / "e_16bit.png", np.full((8, 8), 257 * 100, np.uint16))
    _save(c / "f_photo.JPG", np.full((30, 40, 3), (200, 100, 50), np.uint8))
    _save(c / "g_bitmap.bmp", np.full((5, 5, 3), (1, 2, 3), np.uint8))
    _save(c / "h_anim.GIF", np.full((8, 8), 250, np.uint8), mode="P")
    _save(c / "i_tiff.tif", np.full((9, 3, 3), (4, 5, 6), np.uint8))
    webp = features.check("webp")  # a Pillow built without libwebp: no WebP
    if webp:
        _save(c / "j_webp.webp", np.full((16, 16, 3), 128, np.uint8), lossless=True)
    bunch = load_image_folder(tmp_path, image_size=(8, 8))
    corner = [tuple(int(v) for v in img[:, 0, 0]) for img in bunch.images]
    bottom = [tuple(int(v) for v in img[:, -1, -1]) for img in bunch.images]
    assert len(bunch.data) == 9 + webp
    assert corner[0] == (255, 255, 255) and bottom[0] == (10, 20, 30)  # on white
    assert corner[1] == (40, 80, 120)
    assert corner[2] == (77, 77, 77) and corner[3] == (90, 90, 90)
    assert corner[4] == (100, 100, 100)  # 16 bits scaled, not clipped at 255
    assert np.allclose(corner[5], (200, 100, 50), atol=4)  # lossy JPEG
    assert corner[6:] == [(1, 2, 3), (250, 250, 250), (4, 5, 6)] + [(128,) * 3] * webp
    grey = load_image_folder(tmp_path, image_size=(8, 8), color="grey").images
    assert grey.shape == (9 + webp, 1, 8, 8) and grey[2, 0, 0, 0] == 77


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((4, 6), np.uint8)
    pixels[0, 0] = 255  # top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display after a 90 degree clockwise turn
    _save(tmp_path / "c" / "photo.png", pixels, exif=exif)
    bunch = load_image_folder(tmp_path, image_size=(6, 4), color="grey")
    np.testing.assert_array_equal(bunch.images[0, 0], np.rot90(pixels, k=-1))


# -- what is skipped, what is an error ------------------------------------------


def test_non_image_and_hidden_files_are_ignored(tmp_path):
    for rel in ["cls/0.png", "cls/.hidden/1.png", "other/2.png"]:
        _save(tmp_path / rel, np.zeros((4, 4), np.uint8))
    for rel in ["cls/notes.txt", "cls/.3.png", "cls/.DS_Store", "top.png", ".git/x"]:
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"not an image")
    (tmp_path / ".cache").mkdir()
    with pytest.warns(UserWarning, match="1 image file.*'top.png'.*no class folder"):
        bunch = load_image_folder(tmp_path, image_size=4)
    assert bunch.target_names.tolist() == ["cls", "other"]
    assert [os.path.basename(f) for f in bunch.filenames] == ["0.png", "2.png"]


@pytest.mark.parametrize("content", [b"garbage bytes", "truncated"])
def test_unreadable_file_error_names_it(tmp_path, content):
    _save(tmp_path / "ok" / "0.png", np.zeros((4, 4), np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    bad = _save(tmp_path / "ok" / "1.png", noise)  # 1 kB: cut in the pixel data
    raw = bad.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2] if content == "truncated" else content)
    with pytest.raises(ValueError, match="Cannot read the image file") as info:
        load_image_folder(tmp_path, image_size=4)
    assert str(bad) in str(info.value)


def test_empty_class_folder_is_reported_or_skipped(tmp_path, glyphs):
    X, y = glyphs
    write_image_tree(tmp_path, X, y)
    (tmp_path / "empty_a").mkdir()
    (tmp_path / "empty_b").mkdir()
    (tmp_path / "empty_b" / "readme.txt").write_text("no image here")
    with pytest.raises(ValueError, match="class folder") as info:
        load_image_folder(tmp_path, image_size=28)
    assert str(tmp_path / "empty_a") in str(info.value)
    assert str(tmp_path / "empty_b") in str(info.value)
    assert "class000" not in str(info.value)
    with pytest.warns(UserWarning, match="empty_a"):
        bunch = load_image_folder(tmp_path, image_size=28, on_empty="warn")
    assert bunch.target_names.tolist() == ["class000", "class001", "class002"]
    assert sorted(set(bunch.target.tolist())) == [0, 1, 2]


def test_missing_root_not_a_folder_and_no_class_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_image_folder(missing)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="file.png"):
        load_image_folder(tmp_path / "file.png")
    _save(tmp_path / "flat" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="No class folder in .*flat"):
        load_image_folder(tmp_path / "flat")
    (tmp_path / "only_empty" / "c").mkdir(parents=True)
    with pytest.raises(ValueError, match="no class has an image"):
        load_image_folder(tmp_path / "only_empty", on_empty="warn")


@pytest.mark.parametrize(
    "params, name",
    [
        ({"color": "cmyk"}, "color"),
        ({"color": "RGB"}, "color"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": (84,)}, "image_size"),
        ({"image_size": (84, -1)}, "image_size"),
        ({"image_size": "84"}, "image_size"),
        ({"image_size": True}, "image_size"),
        ({"image_size": (8.5, 8)}, "image_size"),
        ({"dtype": "int16"}, "dtype"),
        ({"dtype": "float"}, "dtype"),
        ({"resize": "fit"}, "resize"),
        ({"on_empty": "skip"}, "on_empty"),
        ({"on_error": "skip"}, "on_error"),
        ({"on_error": None}, "on_error"),
        ({"max_per_class": 0}, "max_per_class"),
        ({"classes": "cls"}, "classes"),
        ({"classes": []}, "classes"),
        ({"classes": ["cls", "nope"]}, "classes: no folder \\['nope'\\]"),
    ],
)
def test_bad_parameters_name_themselves(tmp_path, params, name):
    _save(tmp_path / "cls" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=name):
        load_image_folder(tmp_path, **params)


@pytest.mark.parametrize(
    "size, shown", [(0, "got 0\\."), ((0, 4), "got \\(0, 4\\)"), (-3, "got -3\\.")]
)
def test_bad_image_size_is_quoted_as_given(tmp_path, size, shown):
    _save(tmp_path / "cls" / "0.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="positive integers") as info:
        load_image_folder(tmp_path, image_size=size)
    assert info.match(shown)


def test_classes_and_max_per_class(tmp_path, glyphs):
    X, y = glyphs
    tree = write_image_tree(tmp_path, X, y)
    bunch = load_image_folder(
        tmp_path, image_size=28, classes=("class002", "class000"), max_per_class=3
    )
    assert bunch.target_names.tolist() == ["class000", "class002"]
    assert bunch.target.tolist() == [0, 0, 0, 1, 1, 1]
    first3 = [str(tree.paths[i]) for i in (0, 1, 2, 8, 9, 10)]
    assert bunch.filenames.tolist() == first3


def test_verbose_shows_a_progress_bar(tmp_path, capsys):
    _save(tmp_path / "cls" / "0.png", np.zeros((4, 4), np.uint8))
    load_image_folder(tmp_path, image_size=4)
    assert "Decoding" not in capsys.readouterr().err
    load_image_folder(tmp_path, image_size=4, verbose=True)
    assert "Decoding images" in capsys.readouterr().err


# -- memory-mapped cache --------------------------------------------------------


def test_mmap_path_returns_a_read_only_memmap_and_reuses_it(
    tmp_path, glyphs, monkeypatch
):
    X, y = glyphs
    write_image_tree(tmp_path / "tree", X, y, color="rgb")
    in_memory = load_image_folder(tmp_path / "tree", image_size=(20, 24))
    cache = tmp_path / "cache" / "rows.npy"
    calls = decode_counter(monkeypatch)
    bunch = load_image_folder(tmp_path / "tree", image_size=(20, 24), mmap_path=cache)
    assert isinstance(bunch.data, np.memmap) and not bunch.data.flags.writeable
    np.testing.assert_array_equal(bunch.data, in_memory.data)
    np.testing.assert_array_equal(bunch.target, in_memory.target)
    assert bunch.filenames.tolist() == in_memory.filenames.tolist()
    assert bunch.images.shape == (12, 3, 20, 24)
    assert sorted(os.listdir(cache.parent)) == ["rows.npy", "rows.npy.json"]
    assert len(calls) == 12

    def refuse(*args, **kwargs):
        raise AssertionError("the cache should be reused, not the images decoded")

    monkeypatch.setattr(Image, "open", refuse)
    again = load_image_folder(tmp_path / "tree", image_size=(20, 24), mmap_path=cache)
    assert isinstance(again.data, np.memmap)
    np.testing.assert_array_equal(again.data, in_memory.data)
    assert len(calls) == 12


def test_an_mmap_path_that_is_a_folder_is_refused_before_decoding(
    tmp_path, glyphs, monkeypatch
):
    X, y = glyphs
    write_image_tree(tmp_path / "tree", X, y)
    calls = decode_counter(monkeypatch)
    with pytest.raises(ValueError, match="mmap_path .* is a folder"):
        load_image_folder(tmp_path / "tree", image_size=8, mmap_path=tmp_path)
    assert calls == []


def test_mmap_cache_is_rebuilt_when_folder_or_settings_change(
    tmp_path, glyphs, monkeypatch
):
    X, y = glyphs
    tree = write_image_tree(tmp_path / "tree", X, y)
    cache = tmp_path / "rows.npy"
    calls = decode_counter(monkeypatch)

    def load(**params):
        return load_image_folder(
            tmp_path / "tree", image_size=28, color="grey", mmap_path=cache, **params
        )

    load()
    _save(tmp_path / "tree" / "class001" / "new.png", np.full((28, 28), 9, np.uint8))
    added = load()
    assert len(calls) == 12 + 13 and added.data.shape == (13, 784)
    assert added.filenames[-5].endswith("new.png") and added.data[-5].max() == 9
    load()
    assert len(calls) == 25  # unchanged again: reused
    os.utime(tree.paths[0], ns=(0, 10**18))  # same file name, modified later
    load()
    assert len(calls) == 38
    floats = load(dtype="float32")
    assert len(calls) == 51 and floats.data.dtype == np.float32
    np.testing.assert_array_equal(floats.data, added.data / np.float32(255))
    cache.write_bytes(cache.read_bytes()[:100])  # truncated by hand
    assert load(dtype="float32").data.shape == (13, 784) and len(calls) == 64
    assert sorted(os.listdir(tmp_path)) == ["rows.npy", "rows.npy.json", "tree"]


@pytest.mark.parametrize("damage", ["empty", "npz"])
def test_a_cache_file_that_holds_no_array_is_rebuilt(tmp_path, damage):
    """Where the cache's .npy file was, its manifest intact, an empty file
    (numpy raised EOFError) or an .npz archive (no shape: AttributeError) is
    rebuilt, as a truncated one is."""
    from skmeta._npy_cache import cached_rows

    path = tmp_path / "rows.npy"
    expected = np.arange(12, dtype=np.float32).reshape(4, 3)
    first = cached_rows(path, {"a": 1}, (4, 3), np.float32, lambda: iter(expected))
    del first  # its memory map closed (Windows replaces no mapped file)
    if damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(tmp_path / "other.npz", X=expected)
        os.replace(tmp_path / "other.npz", path)
    data = cached_rows(path, {"a": 1}, (4, 3), np.float32, lambda: iter(expected))
    np.testing.assert_array_equal(data, expected)


def test_failed_build_leaves_no_file_behind(tmp_path, glyphs):
    X, y = glyphs
    tree = write_image_tree(tmp_path / "tree", X, y)
    tree.paths[7].write_bytes(b"corrupt")
    cache = tmp_path / "out" / "rows.npy"
    with pytest.raises(ValueError, match=str(tree.paths[7].name)):
        load_image_folder(tmp_path / "tree", image_size=28, mmap_path=cache)
    assert os.listdir(cache.parent) == []


# -- with the estimators -----------------------------------------------------------


def test_loaded_rows_train_a_meta_feature_extractor(tmp_path):
    X, y = make_glyphs(n_classes=6, n_samples_per_class=6, random_state=1)
    write_image_tree(tmp_path, X, y)
    bunch = load_image_folder(tmp_path, image_size=28, color="grey")
    extractor = MetaFeatureExtractor(
        input_shape=bunch.input_shape,
        backbone="conv4_strided",
        n_way=3,
        k_shot=2,
        n_query=2,
        max_iter=20,
        random_state=0,
    )
    embedded = extractor.fit(bunch.data.astype(np.float32) / 255, bunch.target)
    features = embedded.transform(bunch.data[:5].astype(np.float32) / 255)
    assert features.shape[0] == 5 and np.all(np.isfinite(features))
