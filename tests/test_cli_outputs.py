"""What the command line prints: ``predict``'s columns and ``info``'s lines."""

import csv
import io

import numpy as np
import pytest

from skmeta.cli import main


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """24 classes of 8 rows (4 features) and a model meta-trained on them with
    --calibrate, so that it can reject queries (--unknown-label)."""
    root = tmp_path_factory.mktemp("cli_outputs")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(24), 8)
    X = (rng.normal(size=(24, 4)) * 3)[y] + rng.normal(size=(y.size, 4))
    np.savez(root / "rows.npz", X=X.astype(np.float32), y=y)
    known = y < 3
    np.savez(root / "support.npz", X=X[known].astype(np.float32), y=y[known])
    far = np.full((4, 4), 50.0)  # far from every class
    query = np.concatenate([X[known][::4], far]).astype(np.float32)
    np.savez(root / "query.npz", X=query)
    argv = ["train", str(root / "rows.npz"), "--out", str(root / "m.safetensors")]
    argv += ["--max-iter", "5", "--n-way", "3", "--validation-fraction", "0.2"]
    assert main([*argv, "--calibrate", "--quiet"]) == 0
    return root


def _rows(out: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(out)))


def test_predict_leaves_the_probability_of_unknown_queries_empty(calibrated, capsys):
    """A rejected query printed its rejected best class's probability
    ('q.jpg,unknown,0.9981'), which read as 99.8% sure it is unknown."""
    argv = ["predict", str(calibrated / "m.safetensors")]
    argv += ["--support", str(calibrated / "support.npz")]
    argv += ["--query", str(calibrated / "query.npz")]
    capsys.readouterr()
    assert main([*argv, "--unknown-label", "unknown", "--rejection-rate", "0.5"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows[0] == ["file", "label", "probability"] and len(rows) == 11
    unknown = [row for row in rows[1:] if row[1] == "unknown"]
    known = [row for row in rows[1:] if row[1] != "unknown"]
    assert [row[0] for row in unknown][-4:] == ["6", "7", "8", "9"]  # the far rows
    assert all(row[2] == "" for row in unknown)
    assert known and all(0 < float(row[2]) <= 1 for row in known)
    # without --unknown-label every query has its label's probability
    assert main(argv) == 0
    assert all(0 < float(row[2]) <= 1 for row in _rows(capsys.readouterr().out)[1:])


def test_info_shows_the_pixel_range_and_normalisation_of_image_models(
    calibrated, tmp_path, capsys
):
    """info left out what the model card prints: how a model's image rows
    must come (a wrapped ImageNet network on 0-255 pixels, say)."""
    import torch

    from skmeta.meta.model import MetaModel

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    wrapped = tmp_path / "wrapped.safetensors"
    model = MetaModel.from_module(
        net, (3, 2, 2), input_normalization="imagenet", pixel_range=255.0
    )
    model.save(wrapped)
    plain = tmp_path / "plain.safetensors"
    MetaModel.from_module(net, (3, 2, 2)).save(plain)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (24, 1, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "images.npz", X=pixels, y=np.arange(24) % 4)
    trained = tmp_path / "trained.safetensors"
    argv = ["train", str(tmp_path / "images.npz"), "--out", str(trained)]
    assert main([*argv, "--max-iter", "2", "--n-way", "2", "--quiet"]) == 0
    capsys.readouterr()
    infos = {}
    for path in (wrapped, plain, trained, calibrated / "m.safetensors"):
        assert main(["info", str(path)]) == 0
        infos[path.stem] = capsys.readouterr().out
    assert "pixel range:  0-255\n" in infos["wrapped"]
    assert (
        "normalised:   imagenet: each channel as (pixel / 255 - mean) / std, mean "
        "(0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)\n"
    ) in infos["wrapped"]
    assert "pixel range:  not recorded\n" in infos["plain"]
    assert "normalised:   none (rows reach the module as they are)" in infos["plain"]
    assert "pixel range:  0-255\n" in infos["trained"]
    assert "normalised:   by the meta-training data's mean" in infos["trained"]
    # a model of table rows has no pixels
    assert "pixel range" not in infos["m"] and "normalised" not in infos["m"]
