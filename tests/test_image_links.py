"""load_image_folder on trees with links (loops, shared folders) and with images
beside the class folders."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from skmeta.datasets import load_image_folder


def _image(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(path)
    return path


def _link(link, target):
    """``ln -s target link``, the test skipped where links cannot be made."""
    link.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(target, link, target_is_directory=True)
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"cannot make a symbolic link here: {exc}")


def _load(root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these trees should warn
        bunch = load_image_folder(root, image_size=4, color="grey")
    rel = [os.path.relpath(f, root).replace(os.sep, "/") for f in bunch.filenames]
    return bunch, rel


def test_link_to_the_root_is_not_followed(tmp_path):
    _image(tmp_path / "a" / "0.png", 10)
    _image(tmp_path / "b" / "0.png", 20)
    _link(tmp_path / "a" / "up", "..")  # a/up/a/up/... and a/up/b
    bunch, rel = _load(tmp_path)
    assert rel == ["a/0.png", "b/0.png"]
    assert bunch.target.tolist() == [0, 1]
    assert bunch.data[:, 0].tolist() == [10, 20]


def test_link_above_the_root_is_not_followed(tmp_path):
    root = tmp_path / "data"
    _image(root / "a" / "0.png")
    _image(root / "b" / "0.png")
    _link(root / "a" / "top", tmp_path)
    _, rel = _load(root)
    assert rel == ["a/0.png", "b/0.png"]


def test_a_class_folder_linked_to_an_ancestor_is_empty(tmp_path):
    root = tmp_path / "data"
    _image(root / "a" / "0.png", 10)
    _image(root / "b" / "0.png", 20)
    _image(root / "loose.png", 30)  # in no class
    _link(root / "c", tmp_path)  # class c would be root's parent
    with pytest.raises(ValueError, match="c"):
        load_image_folder(root, image_size=4, color="grey")
    with pytest.warns(UserWarning):
        bunch = load_image_folder(root, image_size=4, color="grey", on_empty="warn")
    assert list(bunch.target_names) == ["a", "b"]
    assert bunch.data[:, 0].tolist() == [10, 20]


def test_loops_inside_a_class_folder_are_read_once(tmp_path):
    _image(tmp_path / "a" / "0.png")
    _image(tmp_path / "a" / "sub" / "1.png")
    _link(tmp_path / "a" / "sub" / "back", "..")  # to a
    _link(tmp_path / "a" / "sub" / "self", ".")
    _link(tmp_path / "a" / "sub" / "deep" / "again", "../..")  # to a/sub
    _, rel = _load(tmp_path)
    assert rel == ["a/0.png", "a/sub/1.png"]


def test_a_folder_reached_twice_is_read_at_its_first_path(tmp_path):
    _image(tmp_path / "a" / "sub" / "0.png")
    _link(tmp_path / "a" / "alias", "sub")  # "a/alias" sorts before "a/sub"
    _link(tmp_path / "a" / "zz", "sub")
    _, rel = _load(tmp_path)
    assert rel == ["a/alias/0.png"]


def test_links_into_another_class_folder_are_not_followed(tmp_path):
    _image(tmp_path / "a" / "0.png", 10)
    _image(tmp_path / "b" / "0.png", 20)
    _image(tmp_path / "b" / "sub" / "1.png", 30)
    _link(tmp_path / "a" / "to_b", "../b")
    _link(tmp_path / "a" / "to_b_sub", "../b/sub")
    bunch, rel = _load(tmp_path)
    assert rel == ["a/0.png", "b/0.png", "b/sub/1.png"]
    assert bunch.target.tolist() == [0, 1, 1]
    # a class folder linked to a folder of another class: read as itself
    _link(tmp_path / "c", "b/sub")
    bunch, rel = _load(tmp_path)
    assert rel == ["a/0.png", "b/0.png", "c/1.png"]
    assert bunch.target_names.tolist() == ["a", "b", "c"]


def test_links_to_folders_outside_the_root_are_followed(tmp_path):
    root = tmp_path / "data"
    _image(root / "a" / "0.png")
    _image(tmp_path / "elsewhere" / "1.png", 30)
    _image(tmp_path / "there" / "2.png", 40)
    _link(root / "a" / "more", tmp_path / "elsewhere")
    _link(root / "b", tmp_path / "there")  # a class folder that is a link
    bunch, rel = _load(root)
    assert rel == ["a/0.png", "a/more/1.png", "b/2.png"]
    assert bunch.target.tolist() == [0, 0, 1]
    assert bunch.data[:, 0].tolist() == [0, 30, 40]
    # a link into the real folder of class b is a link into class b
    _link(root / "a" / "b_too", tmp_path / "there")
    assert _load(root)[1] == ["a/0.png", "a/more/1.png", "b/2.png"]


def test_a_linked_file_is_read_once_per_path(tmp_path):
    _image(tmp_path / "a" / "0.png", 10)
    _image(tmp_path / "b" / "0.png", 20)
    try:
        os.symlink(tmp_path / "b" / "0.png", tmp_path / "a" / "1.png")
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"cannot make a symbolic link here: {exc}")
    bunch, rel = _load(tmp_path)
    assert rel == ["a/0.png", "a/1.png", "b/0.png"]
    assert bunch.data[:, 0].tolist() == [10, 20, 20]


# -- images beside the class folders ------------------------------------------


def test_images_in_the_root_are_skipped_with_one_warning(tmp_path):
    _image(tmp_path / "a" / "0.png")
    for name in ["loose.png", "other.JPG"]:
        _image(tmp_path / name)
    for name in ["notes.txt", ".hidden.png"]:
        (tmp_path / name).write_bytes(b"not counted")
    with pytest.warns(UserWarning) as record:
        bunch = load_image_folder(tmp_path, image_size=4)
    assert len(record) == 1
    message = str(record[0].message)
    assert "2 image file(s) directly in" in message and "'loose.png'" in message
    assert "no class folder" in message
    assert [os.path.basename(f) for f in bunch.filenames] == ["0.png"]
    assert record[0].filename == __file__  # points at the caller


def test_a_folder_of_images_only_says_they_look_unlabelled(tmp_path):
    for i in range(3):
        _image(tmp_path / f"{i}.png")
    with pytest.raises(ValueError, match="No class folder") as info:
        load_image_folder(tmp_path, image_size=4)
    assert info.match("3 image file\\(s\\) directly \\(e.g. '0.png'\\)")
    assert info.match("unlabelled images")
    assert info.match("one subfolder per class")
