"""``skmeta train`` checks its flags before it reads DATA: a typo must not
cost the minutes an image folder takes to decode."""

import pytest
from _image_trees import write_image_tree

from skmeta.cli import main
from skmeta.datasets import make_glyphs


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """4 classes of 3 grey 12x12 glyph PNGs."""
    root = tmp_path_factory.mktemp("cli_checks")
    X, y = make_glyphs(n_classes=4, n_samples_per_class=3, random_state=0)
    write_image_tree(root / "data", X, y, size=12)
    return root / "data"


@pytest.fixture
def no_reading(monkeypatch):
    """Reading DATA fails the test: what is refused is refused before it."""
    import skmeta._cli_data

    def load_dataset(*args, **kwargs):
        raise AssertionError("DATA was read before the flags were checked")

    monkeypatch.setattr(skmeta._cli_data, "load_dataset", load_dataset)


def _refuse_torchvision(monkeypatch):
    import importlib

    real = importlib.import_module

    def import_module(name, *args, **kwargs):
        if name.split(".")[0] == "torchvision":
            raise ImportError("No module named 'torchvision'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", import_module)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


@pytest.mark.parametrize(
    "flags, status, message",
    [
        (
            ["--backbone", "resnet13"],
            2,
            "--backbone resnet13 is unknown (did you mean resnet12?); choose from "
            "auto, conv4, conv4_strided, conv6, mlp, resnet12, or torchvision:<name>",
        ),
        (
            ["--augmentation", "imagez"],
            2,
            "--augmentation imagez is unknown (did you mean images?); choose from "
            "affine, elastic, features, images (or several, separated by commas)",
        ),
        (["--augmentation", "affine,elastik"], 2, "--augmentation elastik is unknown"),
        (["--augmentation", "images"], 1, "--augmentation images needs torchvision"),
        (
            ["--backbone", "torchvision:resnet18"],
            1,
            "--backbone torchvision:resnet18 needs torchvision",
        ),
        (["--device", "tpu"], 2, "--device tpu is not a valid torch device"),
        (["--max-iter", "0"], 2, "--max-iter must be"),
    ],
)
def test_train_refuses_bad_flags_before_reading_data(
    folder, tmp_path, capsys, monkeypatch, no_reading, flags, status, message
):
    _refuse_torchvision(monkeypatch)
    argv = ["train", str(folder), "--out", str(tmp_path / "m.safetensors")]
    assert main([*argv, "--quiet", *flags]) == status
    err = _error(capsys)
    assert message in err
    assert "InvalidParameterError" not in err and "{" not in err  # no Python set
