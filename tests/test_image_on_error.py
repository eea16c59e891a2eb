"""load_image_folder's on_error: unreadable image files raise, or are left out."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from _image_trees import decode_counter, write_image_tree
from PIL import Image

from skmeta.datasets import load_image_folder, make_glyphs


@pytest.fixture()
def tree(tmp_path):
    """3 classes of 3 grey 8x8 images, the 2nd of class 0 and last of class 2
    corrupt; and the same tree without them, in ``tmp_path / "good"``."""
    X, y = make_glyphs(n_classes=3, n_samples_per_class=3, random_state=0)
    tree = write_image_tree(tmp_path / "tree", X, y, size=8)
    shutil.copytree(tmp_path / "tree", tmp_path / "good")
    for i in (1, 8):
        tree.paths[i].write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        (tmp_path / "good" / tree.paths[i].relative_to(tmp_path / "tree")).unlink()
    return tree


def _load(root, **params):
    return load_image_folder(root, image_size=8, color="grey", **params)


def _same_rows(bunch, good, root):
    np.testing.assert_array_equal(bunch.data, good.data)
    np.testing.assert_array_equal(bunch.target, good.target)
    assert bunch.target.dtype == np.int64
    assert bunch.target_names.tolist() == good.target_names.tolist()
    assert [os.path.relpath(f, root) for f in bunch.filenames] == [
        os.path.relpath(f, root.parent / "good") for f in good.filenames
    ]
    assert bunch.images.shape == (len(bunch.data), 1, 8, 8)


def test_on_error_raise_is_the_default_and_names_the_file(tree, tmp_path):
    for params in ({}, {"on_error": "raise"}):
        with pytest.raises(ValueError, match="Cannot read the image file") as info:
            _load(tmp_path / "tree", **params)
        assert str(tree.paths[1]) in str(info.value)


def test_on_error_warn_leaves_the_files_out_rows_aligned(tree, tmp_path):
    good = _load(tmp_path / "good")
    with pytest.warns(UserWarning) as record:
        bunch = _load(tmp_path / "tree", on_error="warn")
    assert len(record) == 1 and record[0].filename == __file__
    message = str(record[0].message)
    assert "Skipped 2 of the 9 image files" in message
    assert "'class000/00001.png', 'class002/00008.png'" in message
    assert "Cannot read the image file" in message  # the first error
    _same_rows(bunch, good, tmp_path / "tree")
    assert "7 images of 3 classes" in bunch.DESCR
    with pytest.warns(UserWarning, match="Skipped 2"):
        data, target = _load(tmp_path / "tree", on_error="warn", return_X_y=True)
    np.testing.assert_array_equal(data, good.data)
    np.testing.assert_array_equal(target, good.target)


def test_on_error_warn_names_the_first_three(tmp_path):
    for i in range(6):
        path = tmp_path / "c" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        if i == 0:
            Image.fromarray(np.full((8, 8), 7, np.uint8)).save(path)
        else:
            path.write_bytes(b"junk")
    with pytest.warns(UserWarning, match="'c/1.png', 'c/2.png', 'c/3.png' and 2 more"):
        bunch = _load(tmp_path, on_error="warn")
    assert bunch.data.shape == (1, 64) and bunch.data.max() == 7


def test_a_class_with_only_unreadable_files_is_left_out(tmp_path):
    for name, content in [("a/0.png", None), ("b/0.png", b"x"), ("c/0.png", None)]:
        path = tmp_path / name
        path.parent.mkdir()
        if content is None:
            Image.fromarray(np.full((8, 8), 5, np.uint8)).save(path)
        else:
            path.write_bytes(content)
    with pytest.warns(UserWarning, match=r"Class folder\(s\) \['b'\] left with no"):
        bunch = _load(tmp_path, on_error="warn")
    assert bunch.target_names.tolist() == ["a", "c"]
    assert bunch.target.tolist() == [0, 1]
    (tmp_path / "a" / "0.png").write_bytes(b"x")
    (tmp_path / "c" / "0.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="None of the 3 image files .* can be read"):
        _load(tmp_path, on_error="warn")


def test_on_error_warn_with_mmap_path(tree, tmp_path, monkeypatch):
    good = _load(tmp_path / "good")
    cache = tmp_path / "cache" / "rows.npy"
    calls = decode_counter(monkeypatch)
    with pytest.warns(UserWarning, match="Skipped 2 of the 9"):
        bunch = _load(tmp_path / "tree", on_error="warn", mmap_path=cache)
    assert isinstance(bunch.data, np.memmap) and not bunch.data.flags.writeable
    _same_rows(bunch, good, tmp_path / "tree")
    assert sorted(os.listdir(cache.parent)) == ["rows.npy", "rows.npy.json"]
    assert len(calls) == 9

    def refuse(*args, **kwargs):
        raise AssertionError("the cache should be reused, not the images decoded")

    with monkeypatch.context() as patch:
        patch.setattr(Image, "open", refuse)
        with pytest.warns(UserWarning, match="Skipped 2 of the 9.*00008.png'\\.$"):
            again = _load(tmp_path / "tree", on_error="warn", mmap_path=cache)
    _same_rows(again, good, tmp_path / "tree")
    assert len(calls) == 9
    # with on_error="raise", a cache that left files out is not used
    with pytest.raises(ValueError, match="Cannot read the image file"):
        _load(tmp_path / "tree", mmap_path=cache)
    # a truncated cache is rebuilt
    with pytest.warns(UserWarning, match="Skipped 2 of the 9"):
        _load(tmp_path / "tree", on_error="warn", mmap_path=cache)
    cache.write_bytes(cache.read_bytes()[:100])
    with pytest.warns(UserWarning, match="Skipped 2 of the 9"):
        rebuilt = _load(tmp_path / "tree", on_error="warn", mmap_path=cache)
    _same_rows(rebuilt, good, tmp_path / "tree")
    assert sorted(os.listdir(cache.parent)) == ["rows.npy", "rows.npy.json"]


def test_a_cache_with_no_unreadable_file_serves_both_modes(tmp_path, monkeypatch):
    X, y = make_glyphs(n_classes=2, n_samples_per_class=2, random_state=0)
    write_image_tree(tmp_path / "tree", X, y, size=8)
    cache = tmp_path / "rows.npy"
    calls = decode_counter(monkeypatch)
    first = _load(tmp_path / "tree", on_error="warn", mmap_path=cache)
    assert len(calls) == 4 and first.data.shape == (4, 64)
    second = _load(tmp_path / "tree", mmap_path=cache)
    assert len(calls) == 4
    np.testing.assert_array_equal(second.data, first.data)
    assert sorted(os.listdir(tmp_path)) == ["rows.npy", "rows.npy.json", "tree"]


def test_no_readable_file_with_mmap_path_writes_nothing(tmp_path):
    (tmp_path / "tree" / "c").mkdir(parents=True)
    (tmp_path / "tree" / "c" / "0.png").write_bytes(b"x")
    cache = tmp_path / "out" / "rows.npy"
    with pytest.raises(ValueError, match="None of the 1 image files"):
        _load(tmp_path / "tree", on_error="warn", mmap_path=cache)
    assert os.listdir(cache.parent) == []


def test_the_rows_of_the_readable_files_are_written_once(tree, tmp_path, monkeypatch):
    """Decoded into the cache's temporary file, which is cut to the rows kept
    and renamed into place: no second copy (cached_rows would write one)."""
    import skmeta._image_cache as image_cache

    def copy(*args, **kwargs):
        raise AssertionError("the rows were copied into the cache a second time")

    monkeypatch.setattr(image_cache, "cached_rows", copy)
    cache = tmp_path / "rows.npy"
    with pytest.warns(UserWarning, match="Skipped 2 of the 9"):
        bunch = _load(tmp_path / "tree", on_error="warn", mmap_path=cache)
    _same_rows(bunch, _load(tmp_path / "good"), tmp_path / "tree")
    header = 128  # numpy's header of a small 2-D uint8 array
    assert cache.stat().st_size == header + 7 * 64  # 7 rows of 8x8, no more


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
@pytest.mark.parametrize("keep", [0, 3, 10])
def test_shrink_rows_keeps_the_first_rows_in_place(tmp_path, version, keep):
    from numpy.lib.format import open_memmap

    from skmeta._npy_cache import shrink_rows

    path = tmp_path / "rows.npy"
    rows = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    out = open_memmap(path, "w+", np.float32, (10, 3), version=version)
    out[:] = rows
    del out
    offset = path.stat().st_size - rows.nbytes
    shrink_rows(path, keep)
    np.testing.assert_array_equal(np.load(path), rows[:keep])
    assert path.stat().st_size == offset + keep * 12
    with pytest.raises(ValueError, match="cannot keep 11 of"):
        shrink_rows(path, 11)


def test_shrink_rows_refuses_what_it_cannot_cut_in_place(tmp_path):
    from skmeta._npy_cache import shrink_rows

    path = tmp_path / "rows.npy"
    np.save(path, np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3)))
    with pytest.raises(ValueError, match="fortran_order=True"):
        shrink_rows(path, 1)
    np.save(path, np.array(5))
    with pytest.raises(ValueError, match=r"got \(\)"):
        shrink_rows(path, 0)
    np.save(path, np.arange(6, dtype=np.uint8).reshape(3, 2))
    with pytest.raises(TypeError):
        shrink_rows(path, 1.9)  # not a row count
    shrink_rows(path, np.int64(2))  # a NumPy integer, written as a plain one
    np.testing.assert_array_equal(np.load(path), [[0, 1], [2, 3]])
