"""Tests for skmeta._omniglot.load_omniglot (tiny synthetic zips + real data)."""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skmeta._omniglot import _URL, _read_source, _resize, load_omniglot
from skmeta.datasets import ink_box

# Official layout, deliberately listed out of order: the loader must sort.
ALPHABETS = {
    "Zeta_Script": ["character02", "character01"],
    "Alpha": ["character10", "character01"],
}
DRAWERS = (3, 1, 2)


def _png(ink: np.ndarray) -> bytes:
    """A 1-bit PNG with black ink on white paper, as in the official zips."""
    buf = io.BytesIO()
    Image.fromarray(np.where(ink, 0, 255).astype(np.uint8)).convert("1").save(
        buf, format="PNG"
    )
    return buf.getvalue()


def _tiny_official(split: str = "background") -> tuple[bytes, dict]:
    """Zip bytes (2 alphabets x 2 characters x 3 drawings) and expected arrays."""
    rng = np.random.default_rng(0)
    buf, entries = io.BytesIO(), []
    with zipfile.ZipFile(buf, "w") as zf:
        for a_i, (alphabet, chars) in enumerate(ALPHABETS.items()):
            for c_i, char in enumerate(chars):
                for d in DRAWERS:
                    ink = rng.random((105, 105)) < 0.15
                    name = f"{alphabet}/{char}/{100 * a_i + c_i:04d}_{d:02d}.png"
                    zf.writestr(f"images_{split}/{name}", _png(ink))
                    entries.append((f"{alphabet}/{char}", name, ink, d))
    entries.sort(key=lambda e: (e[0], e[1]))
    characters = sorted({e[0] for e in entries})
    expected = {
        "ink": np.stack([e[2] for e in entries]),
        "target": np.array([characters.index(e[0]) for e in entries]),
        "groups": np.array([0] * 6 + [1] * 6),
        "alphabet_names": ["Alpha", "Zeta_Script"],
        "character_names": characters,
        "drawer": np.array([e[3] for e in entries]),
    }
    return buf.getvalue(), expected


@pytest.fixture(scope="module")
def tiny():
    return _tiny_official()


@pytest.fixture
def zip_home(tmp_path, tiny):
    (tmp_path / "images_background.zip").write_bytes(tiny[0])
    return tmp_path


def test_zip_layout_full_size(zip_home, tiny):
    expected = tiny[1]
    b = load_omniglot(data_home=zip_home, image_size=105)
    assert b.data.shape == (12, 105 * 105) and b.data.dtype == np.float32
    assert b.images.shape == (12, 105, 105)
    assert b.input_shape == (1, 105, 105)
    np.testing.assert_array_equal(b.images, expected["ink"].astype(np.float32))
    assert b.target.dtype == np.int64 and b.groups.dtype == np.int64
    np.testing.assert_array_equal(b.target, expected["target"])
    np.testing.assert_array_equal(b.groups, expected["groups"])
    assert list(b.alphabet_names) == expected["alphabet_names"]
    assert list(b.character_names) == [
        "Alpha/character01",
        "Alpha/character10",
        "Zeta_Script/character01",
        "Zeta_Script/character02",
    ]
    assert "Lake" in b.DESCR and "MIT" in b.DESCR
    np.testing.assert_array_equal(b.drawer, expected["drawer"])  # from file names
    assert b.drawer.dtype == np.int64
    X, y = load_omniglot(data_home=zip_home, image_size=105, return_X_y=True)
    np.testing.assert_array_equal(X, b.data)
    np.testing.assert_array_equal(y, b.target)


@pytest.mark.parametrize("size", [28, 20])
def test_zip_resized(zip_home, tiny, size):
    b = load_omniglot(data_home=zip_home, image_size=size)
    assert b.data.shape == (12, size * size) and b.input_shape == (1, size, size)
    assert b.data.min() >= 0.0 and b.data.max() <= 1.0
    ink = tiny[1]["ink"].astype(np.uint8) * 255
    np.testing.assert_allclose(b.images * 255, _resize(ink, size), atol=1e-3)
    # Antialiased: mean ink is preserved, and grey levels appear.
    assert abs(b.data.mean() - tiny[1]["ink"].mean()) < 0.02
    assert len(np.unique(b.data)) > 10


def test_no_drawer_without_the_official_file_names(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for char in ("character01", "character02"):
            for name in ("a.png", "0001_02.png"):  # one name is not official
                zf.writestr(f"Alpha/{char}/{name}", _png(np.eye(105, dtype=bool)))
    (tmp_path / "images_background.zip").write_bytes(buf.getvalue())
    b = load_omniglot(data_home=tmp_path, image_size=105)
    assert len(b.target) == 4 and "drawer" not in b


def test_returned_arrays_are_fresh(zip_home):
    b = load_omniglot(data_home=zip_home, image_size=105)
    b.data[:] = 0
    b.target[:] = 99
    b2 = load_omniglot(data_home=zip_home, image_size=105)  # served from cache
    assert b2.data.max() == 1.0 and b2.target.max() == 3


def test_zip_in_omniglot_subfolder_and_folder_layout(tmp_path, tiny):
    sub = tmp_path / "omniglot"
    sub.mkdir()
    (sub / "images_background.zip").write_bytes(tiny[0])
    from_zip = load_omniglot(data_home=tmp_path, image_size=105)
    np.testing.assert_array_equal(from_zip.data, tiny[1]["ink"].reshape(12, -1))

    extracted = tmp_path / "extracted"
    with zipfile.ZipFile(io.BytesIO(tiny[0])) as zf:
        zf.extractall(extracted)
    assert (extracted / "images_background" / "Alpha").is_dir()
    from_dir = load_omniglot(data_home=extracted, image_size=28)
    from_zip28 = load_omniglot(data_home=tmp_path, image_size=28)
    np.testing.assert_array_equal(from_dir.data, from_zip28.data)
    np.testing.assert_array_equal(from_dir.target, tiny[1]["target"])
    np.testing.assert_array_equal(from_dir.groups, tiny[1]["groups"])
    assert list(from_dir.character_names) == tiny[1]["character_names"]


def _npz_fields(expected: dict) -> dict:
    """The data file's fields other than ``images``, from `_tiny_official`'s
    expected arrays."""
    return {
        "labels": expected["target"].astype(np.int32),
        "alphabet": expected["groups"].astype(np.int16),
        "alphabet_names": np.array(expected["alphabet_names"]),
        "character_names": np.array(expected["character_names"]),
    }


def test_npz_preferred_and_28_only_for_size_28(zip_home, tiny):
    exp = tiny[1]
    fields = _npz_fields(exp)
    small = np.full((12, 28, 28), 51, dtype=np.uint8)  # recognisable: 0.2
    np.savez(zip_home / "background.npz", images=small, **fields)
    assert np.allclose(load_omniglot(data_home=zip_home).data, 0.2)
    # Other sizes skip the 28x28 file and fall back to the zip.
    b = load_omniglot(data_home=zip_home, image_size=105)
    np.testing.assert_array_equal(b.images, exp["ink"])
    np.savez(zip_home / "background_105.npz", images=np.zeros((12, 105, 105)), **fields)
    assert load_omniglot(data_home=zip_home, image_size=105).data.max() == 0


def test_missing_lists_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_omniglot("evaluation", data_home=tmp_path)
    msg = str(info.value)
    for name in ("evaluation.npz", "evaluation_105.npz", "images_evaluation.zip"):
        assert str(tmp_path / name) in msg
        assert str(tmp_path / "omniglot" / name) in msg
    assert str(tmp_path / "images_evaluation") in msg
    assert _URL.format("evaluation") in msg
    assert "download=True" in msg and "SKMETA_DATA" in msg
    assert not (tmp_path / "omniglot").exists()  # nothing written


def test_missing_explains_28_only(tmp_path):
    (tmp_path / "background.npz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="needs the 105x105 source"):
        load_omniglot(data_home=tmp_path, image_size=32)


def test_ink_box_reads_the_originals(zip_home, tiny):
    exp = tiny[1]
    fields = _npz_fields(exp)
    small = np.full((12, 28, 28), 51, dtype=np.uint8)
    np.savez(zip_home / "background.npz", images=small, **fields)
    b = load_omniglot(data_home=zip_home, ink_box=True)  # not the 28x28 file
    np.testing.assert_array_equal(b.drawer, exp["drawer"])  # from the zip
    ink = exp["ink"].astype(np.uint8) * 255
    np.testing.assert_array_equal(b.images * 255, ink_box(ink, 28))
    assert b.input_shape == (1, 28, 28) and b.data.dtype == np.float32
    half = load_omniglot(data_home=zip_home, image_size=20, ink_box=0.5)
    np.testing.assert_array_equal(half.images * 255, ink_box(ink, 20, box=0.5))


def test_ink_aspect_adaptive_widens_wide_characters(tmp_path, tiny):
    originals = np.zeros((12, 105, 105), dtype=np.uint8)
    originals[:, 40:52, 10:70] = 255  # wide bars: 12 x 60 pixels
    np.savez(tmp_path / "background_105.npz", images=originals, **_npz_fields(tiny[1]))
    kept = load_omniglot(data_home=tmp_path, ink_box=True)
    assert "drawer" not in kept  # the data file records none
    fields = dict(_npz_fields(tiny[1]), drawer=tiny[1]["drawer"])
    np.savez(tmp_path / "background_105.npz", images=originals, **fields)
    np.testing.assert_array_equal(  # now it does
        load_omniglot(data_home=tmp_path, ink_box=True).drawer, tiny[1]["drawer"]
    )
    wide = load_omniglot(data_home=tmp_path, ink_box=True, ink_aspect="adaptive")
    expected = ink_box(originals, 28, aspect="adaptive")
    np.testing.assert_array_equal(wide.images, expected / np.float32(255))
    rows = lambda b: np.ptp(np.nonzero(b.images[0] > 0.5)[0]) + 1  # noqa: E731
    assert rows(kept) <= 5 and rows(wide) >= 10  # 20 / 5 against 20 * 0.51


def test_ink_box_needs_the_originals(tmp_path):
    (tmp_path / "background.npz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="ink_box needs the 105x105 source"):
        load_omniglot(data_home=tmp_path, ink_box=True)


@pytest.mark.parametrize("value", [0, 1.5, "yes", None])
def test_bad_ink_box(value, tmp_path):
    with pytest.raises(ValueError, match="ink_box"):
        load_omniglot(data_home=tmp_path, ink_box=value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ink_box": True, "ink_aspect": "fill"}, "ink_aspect must be"),
        ({"ink_aspect": "adaptive"}, "needs ink_box"),
    ],
)
def test_bad_ink_aspect(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        load_omniglot(data_home=tmp_path, **kwargs)


@pytest.mark.parametrize("split", ["train", "Background", "test"])
def test_bad_split(split, tmp_path):
    with pytest.raises(ValueError, match="background.*evaluation"):
        load_omniglot(split, data_home=tmp_path)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_image_size(size, tmp_path):
    with pytest.raises(ValueError, match="image_size"):
        load_omniglot(data_home=tmp_path, image_size=size)


def test_download(tmp_path, monkeypatch):
    payload, expected = _tiny_official("evaluation")
    calls = []

    def fake_urlopen(url, *args, **kwargs):
        calls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    b = load_omniglot("evaluation", data_home=tmp_path, download=True)
    assert calls == [_URL.format("evaluation")]
    assert os.listdir(tmp_path / "omniglot") == ["images_evaluation.zip"]
    np.testing.assert_array_equal(b.target, expected["target"])
    assert b.data.shape == (12, 28 * 28)
    # Present now: no second download.
    load_omniglot("evaluation", data_home=tmp_path, download=True)
    assert len(calls) == 1


def test_download_failure_is_clear_and_clean(tmp_path, monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="Could not download.*github"):
        load_omniglot(data_home=tmp_path, download=True)
    assert os.listdir(tmp_path / "omniglot") == []  # no partial file left

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"<"))
    with pytest.raises(ConnectionError, match="not a zip"):
        load_omniglot(data_home=tmp_path, download=True)
    assert os.listdir(tmp_path / "omniglot") == []


def test_env_var(zip_home, tiny, monkeypatch):
    monkeypatch.setenv("SKMETA_DATA", str(zip_home))
    b = load_omniglot(image_size=105)
    np.testing.assert_array_equal(b.target, tiny[1]["target"])
    monkeypatch.setenv("SKMETA_DATA", str(zip_home / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_omniglot()


def test_default_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SKMETA_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="skmeta_data"):
        load_omniglot()


# ---------------------------------------------------------------- real data


def _real_home() -> Path | None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"
    env = os.environ.get("SKMETA_DATA")
    options = [shared] + ([Path(env), Path(env) / "omniglot"] if env else [])
    for home in options:
        if (home / "background.npz").is_file() and (home / "evaluation.npz").is_file():
            return home
    return None


REAL = _real_home()
needs_real = pytest.mark.skipif(REAL is None, reason="Omniglot data not on disk")


@pytest.mark.omniglot
@needs_real
@pytest.mark.parametrize(
    "split, n_images, n_chars, n_alphabets",
    [("background", 19280, 964, 30), ("evaluation", 13180, 659, 20)],
)
def test_real_counts(split, n_images, n_chars, n_alphabets):
    b = load_omniglot(split, data_home=REAL)
    assert b.data.shape == (n_images, 784) and b.data.dtype == np.float32
    assert 0.0 <= b.data.min() and b.data.max() <= 1.0
    assert 0.05 < b.data.mean() < 0.25  # ink high: mostly dark paper
    assert len(np.unique(b.target)) == n_chars == len(b.character_names)
    np.testing.assert_array_equal(np.bincount(b.target), np.full(n_chars, 20))
    assert len(np.unique(b.groups)) == n_alphabets == len(b.alphabet_names)
    for char in (0, n_chars - 1):  # each character drawn once by 20 people
        np.testing.assert_array_equal(b.drawer[b.target == char], np.arange(1, 21))
    alphabet_of_char = [n.split("/")[0] for n in b.character_names]
    np.testing.assert_array_equal(
        np.array(alphabet_of_char)[b.target], b.alphabet_names[b.groups]
    )
    # The parent folder works too (data_home/omniglot/...).
    np.testing.assert_array_equal(
        load_omniglot(split, data_home=REAL.parent, return_X_y=True)[1], b.target
    )


@pytest.mark.omniglot
@needs_real
def test_real_105_resized_matches_shipped_28():
    if not (REAL / "background_105.npz").is_file():
        pytest.skip("background_105.npz not on disk")
    big = _read_source("npz", REAL / "background_105.npz")
    small = _read_source("npz", REAL / "background.npz")
    np.testing.assert_array_equal(big["labels"], small["labels"])
    idx = np.arange(0, len(big["images"]), 10)
    resized = _resize(big["images"][idx], 28).astype(float)
    diff = np.abs(resized - small["images"][idx]) / 255
    assert diff.mean() < 0.01
