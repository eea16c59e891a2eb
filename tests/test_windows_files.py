"""Files as Windows treats them, simulated on Linux (``_windows_files``): a
file this process has open or mapped is neither replaced nor removed, and
``os`` has no ``preadv``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _image_trees import write_image_tree
from _windows_files import needs_proc, windows_file_rules

import skmeta
import skmeta.meta.io
from skmeta.datasets import load_image_folder, make_glyphs
from skmeta.meta.model import MetaModel
from skmeta.meta.rows import Rows

ROOT = str(Path(skmeta.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    X, y = make_glyphs(n_classes=3, n_samples_per_class=4, random_state=0)
    root = tmp_path_factory.mktemp("images")
    return write_image_tree(root / "tree", X, y)


@needs_proc
def test_a_model_is_saved_over_the_file_it_was_loaded_from(
    blob_model, tmp_path, monkeypatch
):
    # skmeta evaluate --record, or model.save(path) after MetaModel.load(path):
    # the loaded tensors lived in a map of the file, which Windows keeps
    path = tmp_path / "model.safetensors"
    blob_model.save(path)
    windows_file_rules(monkeypatch)
    monkeypatch.setattr("skmeta.meta.io.COPY_OUT_OF_MAP", True)  # as on Windows
    loaded = MetaModel.load(path)
    loaded.save(path)
    for name, value in MetaModel.load(path).state.items():
        assert torch.equal(value, loaded.state[name])


@needs_proc
def test_off_windows_a_loaded_model_shares_the_files_map(blob_model, tmp_path):
    """Copies are made on Windows only: elsewhere the weights stay in the
    page cache, one copy for every process serving the model."""
    path = tmp_path / "shared.safetensors"
    blob_model.save(path)
    loaded = MetaModel.load(path)
    with open("/proc/self/maps") as maps:
        mapped = str(path) in maps.read()
    assert mapped is not skmeta.meta.io.COPY_OUT_OF_MAP
    del loaded


@needs_proc
def test_an_unreadable_image_is_named_when_the_cache_cannot_be_built(
    tmp_path, monkeypatch
):
    # the half-built cache was still mapped when it was removed: Windows'
    # refusal hid the error about the image
    X, y = make_glyphs(n_classes=3, n_samples_per_class=4, random_state=0)
    tree = write_image_tree(tmp_path / "tree", X, y)
    tree.paths[7].write_bytes(b"corrupt")
    cache = tmp_path / "out" / "rows.npy"
    windows_file_rules(monkeypatch)
    with pytest.raises(ValueError, match=tree.paths[7].name):
        load_image_folder(tmp_path / "tree", image_size=28, mmap_path=cache)
    assert os.listdir(cache.parent) == []


@needs_proc
@pytest.mark.parametrize("on_error", ["raise", "warn"])
def test_a_cache_in_use_is_refused_naming_mmap_path(
    tree, tmp_path, monkeypatch, on_error
):
    root = tree.paths[0].parents[1]
    cache = tmp_path / "rows.npy"
    windows_file_rules(monkeypatch)
    monkeypatch.setattr("skmeta._npy_cache._WINDOWS", True)  # its explanation
    first = load_image_folder(
        root, image_size=28, color="grey", mmap_path=cache, on_error=on_error
    )
    with pytest.raises(PermissionError, match=r"mmap_path=.*rows\.npy.*del data"):
        load_image_folder(
            root, image_size=20, color="grey", mmap_path=cache, on_error=on_error
        )
    assert sorted(os.listdir(tmp_path)) == ["rows.npy"]  # no temporary file left
    del first  # the map closed: now it is replaced
    again = load_image_folder(
        root, image_size=20, color="grey", mmap_path=cache, on_error=on_error
    )
    assert again.data.shape == (12, 400)


def test_a_memory_map_is_read_without_preadv(tmp_path, monkeypatch):
    # Windows' os has no preadv (nor pread): rows are read through the map
    data = np.random.default_rng(0).integers(0, 256, (30, 7), dtype=np.uint8)
    np.save(tmp_path / "rows.npy", data)
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r")
    monkeypatch.delattr(os, "preadv", raising=False)
    rows = Rows(mapped, (7,), torch.device("cpu"))
    index = np.array([0, 1, 2, 6, 7, 9])
    np.testing.assert_array_equal(rows.read(index), data[index])
    np.testing.assert_array_equal(rows.gather(index).numpy(), data[index])


# Windows writes text in the locale's code page (cp1252...) unless told
# otherwise; an ASCII locale with UTF-8 mode off shows the same on Linux
# (the snippet itself in ASCII: its non-ASCII text escaped).
_WRITE_TEXT = """
import sys
import numpy as np
from skmeta._cli_data import save_features
from skmeta._cli_dataset import Dataset
from skmeta.meta.model import MetaModel
folder = sys.argv[1]
model = MetaModel.load(folder + "/model.safetensors")
model = model.with_feature_names([f"temp\\u00e9rature {i}" for i in range(10)])
model = model.with_evaluation(dict(task="5-way", mean=0.9, ci95=0.01, n_episodes=3))
model.save(folder + "/card.safetensors", card=True)
labels = np.array(["\\u732b", "caf\\u00e9"])
data = Dataset(np.zeros((2, 3)), labels, (3,), np.array(["a", "b"]))
save_features(folder + "/features.csv", np.ones((2, 2)), data, ["f0", "f1"])
"""


def test_text_files_are_utf8_whatever_the_locale(blob_model, tmp_path):
    blob_model.save(tmp_path / "model.safetensors")
    env = dict(os.environ, LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", _WRITE_TEXT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    card = (tmp_path / "card.md").read_text(encoding="utf-8")
    assert "température 0" in card and "±" in card
    csv = (tmp_path / "features.csv").read_text(encoding="utf-8")
    assert "猫" in csv and "café" in csv


_PRINT_PREDICTIONS = """
from skmeta._cli_output import write_predictions
write_predictions(["a", "b"], ["\\u732b", "caf\\u00e9"], [0.5, None])
import sys
sys.stderr.write(sys.stdout.encoding)  # the caller's stdout left as it was
"""


def test_predictions_redirected_to_a_file_are_utf8_whatever_the_locale(tmp_path):
    """``skmeta predict ... > out.csv`` failed with UnicodeEncodeError (exit
    2, "error:") for a non-ASCII label where the locale's code page lacks it."""
    env = dict(os.environ, LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    with open(tmp_path / "out.csv", "wb") as out:
        done = subprocess.run(
            [sys.executable, "-c", _PRINT_PREDICTIONS],
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr.lower().replace("-", "") in ("ascii", "ansix3.41968")
    text = (tmp_path / "out.csv").read_bytes().decode("utf-8")
    assert text == "file,label,probability\na,\u732b,0.5000\nb,caf\u00e9,\n"


def test_off_windows_a_refused_cache_names_permissions(tree, tmp_path, monkeypatch):
    """A refusal off Windows (another user's file in a sticky /tmp) was
    explained as a file in use on Windows."""
    root = tree.paths[0].parents[1]
    cache = tmp_path / "rows.npy"

    def refuse(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("skmeta._npy_cache._WINDOWS", False)
    monkeypatch.setattr("skmeta._npy_cache.os.replace", refuse)
    with pytest.raises(PermissionError, match=r"mmap_path=.*permissions") as info:
        load_image_folder(root, image_size=28, color="grey", mmap_path=cache)
    assert "Windows" not in str(info.value)
