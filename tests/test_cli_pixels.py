"""The command line reads image folders on the pixel range of the model it
is given, and prints each distinct warning once."""

import warnings

import numpy as np
import pytest
from _image_trees import write_image_tree

from skmeta import MetaFeatureExtractor
from skmeta.cli import main
from skmeta.datasets import load_image_folder, make_glyphs


@pytest.fixture(scope="module")
def python_model(tmp_path_factory):
    """A model meta-trained in Python on [0, 1] glyph rows, and a folder of
    the same glyphs as PNG files."""
    root = tmp_path_factory.mktemp("cli_pixels")
    X, y = make_glyphs(n_classes=8, n_samples_per_class=6, random_state=0)
    write_image_tree(root / "data", X, y)
    extractor = MetaFeatureExtractor(
        input_shape=(1, 28, 28), max_iter=2, n_way=3, k_shot=2, random_state=0
    )
    extractor.fit(X, y).meta_model_.save(root / "m.safetensors")
    return root


def test_folders_are_read_on_the_pixel_range_of_a_python_model(python_model, tmp_path):
    """A model meta-trained on load_omniglot's or make_glyphs' [0, 1] rows got
    the folders' 0-255 pixels: 62% where Python scored 85% on the same folder,
    and a warning every episode (reviewer)."""
    root = python_model
    model, data = str(root / "m.safetensors"), str(root / "data")
    out = tmp_path / "features.npy"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        evaluate = ["evaluate", model, data, "--n-way", "3", "--k-shot", "1"]
        assert main([*evaluate, "--n-query", "2", "--n-episodes", "3"]) == 0
        assert main(["embed", model, data, "--out", str(out)]) == 0
        query = str(
            root / "data" / sorted(p.name for p in (root / "data").iterdir())[0]
        )
        assert main(["predict", model, "--support", data, "--query", query]) == 0
    assert not [w for w in record if "pixels" in str(w.message)]
    rows = load_image_folder(data, image_size=28, color="grey", dtype="float32")
    expected = MetaFeatureExtractor(pretrained=str(root / "m.safetensors"))
    np.testing.assert_allclose(
        np.load(out), expected.fit(rows.data[:1]).transform(rows.data), atol=1e-5
    )


def test_a_warning_of_every_episode_is_printed_once(python_model, capsys):
    """0-255 float rows given in an .npz file to a [0, 1] model warn at
    every episode; the command prints the line once."""
    rows = load_image_folder(python_model / "data", image_size=28, color="grey")
    npz = python_model / "bytes.npz"
    X = rows.data.reshape(-1, 1, 28, 28).astype(np.float32)  # uint8: divided
    np.savez(npz, X=X, y=rows.target)
    argv = ["evaluate", str(python_model / "m.safetensors"), str(npz)]
    argv += ["--n-way", "3", "--k-shot", "1", "--n-query", "2", "--n-episodes", "4"]
    assert main(argv, console=True) == 0
    err = capsys.readouterr().err
    assert err.count("X holds 0-255 pixels") == 1, err


def test_folders_are_converted_to_the_model_range_a_block_at_a_time(python_model):
    """Folders decode to uint8 whatever the model; for a [0, 1] model the
    commands that go row by row convert BLOCK_ROWS rows at a time, not a
    float32 copy of the whole folder (four times its bytes)."""
    from skmeta._cli_pixels import by_blocks, on_model_range
    from skmeta.meta.model import MetaModel

    model = MetaModel.load(python_model / "m.safetensors")
    rows = load_image_folder(python_model / "data", image_size=28, color="grey")
    assert rows.data.dtype == np.uint8
    seen = []

    def embed(X):
        seen.append((len(X), X.dtype))
        return X[:, :2] * 2

    out = by_blocks(embed, model, rows.data, rows=10)
    assert seen == [(10, np.float32)] * (len(rows.data) // 10) + (
        [(len(rows.data) % 10, np.float32)] if len(rows.data) % 10 else []
    )
    np.testing.assert_array_equal(out, rows.data[:, :2].astype(np.float32) / 255 * 2)
    assert on_model_range(model, rows.data).max() <= 1.0
    floats = rows.data.astype(np.float32) / 255  # already on the range: as given
    assert on_model_range(model, floats) is floats
    seen.clear()
    by_blocks(embed, model, floats, rows=10)
    assert seen == [(len(floats), np.float32)]  # one call, no copy


def test_uint8_npz_rows_are_put_on_a_python_model_range(python_model, tmp_path):
    """0-255 uint8 rows in an .npz file are 0-255 pixels: the command line
    divides them for a [0, 1] model, as it does a folder's."""
    rows = load_image_folder(python_model / "data", image_size=28, color="grey")
    npz = tmp_path / "bytes.npz"
    np.savez(npz, X=rows.data, y=rows.target)
    model = str(python_model / "m.safetensors")
    out = tmp_path / "features.npy"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X holds 0-255 pixels"
        assert main(["embed", model, str(npz), "--out", str(out)]) == 0
    expected = MetaFeatureExtractor(pretrained=model).fit(rows.data[:1] / 255.0)
    np.testing.assert_allclose(
        np.load(out), expected.transform(rows.data / np.float32(255)), atol=1e-5
    )
