"""The command line's checks of its flags: ``skmeta train``'s before it
reads DATA (a typo must not cost the minutes an image folder takes to
decode), and the image flags of the commands that read images for a model."""

import numpy as np
import pytest
from _image_trees import write_image_tree
from _torchvision_env import refuse_torchvision

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
        (
            ["--augmentation", "images", "--class-augmentation", "dihedral"],
            2,
            "every flipped image would carry another class's label",
        ),
        (["--max-iter", "0"], 2, "--max-iter must be"),
    ],
)
def test_train_refuses_bad_flags_before_reading_data(
    folder, tmp_path, capsys, monkeypatch, no_reading, flags, status, message
):
    refuse_torchvision(monkeypatch)
    argv = ["train", str(folder), "--out", str(tmp_path / "m.safetensors")]
    assert main([*argv, "--quiet", *flags]) == status
    err = _error(capsys)
    assert message in err
    assert "InvalidParameterError" not in err and "{" not in err  # no Python set


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory):
    """A model of 16x16 colour images (meta-trained on an .npz), a folder of
    class subfolders of such images and a flat folder of them."""
    root = tmp_path_factory.mktemp("cli_colour")
    X, y = make_glyphs(n_classes=4, n_samples_per_class=3, random_state=0)
    tree = write_image_tree(root / "classes", X, y, size=16, color="rgb")
    (root / "flat").mkdir()
    for path in tree.paths:
        (root / "flat" / f"{path.parent.name}_{path.name}").write_bytes(
            path.read_bytes()
        )
    pixels = np.moveaxis(tree.pixels, 3, 1)  # (n, 3, 16, 16)
    np.savez(root / "images.npz", X=pixels, y=y)
    argv = ["train", str(root / "images.npz"), "--out", str(root / "m.safetensors")]
    assert main([*argv, "--max-iter", "2", "--n-way", "2", "--quiet"]) == 0
    return root


@pytest.mark.parametrize("data", ["flat", "classes"])
def test_embed_refuses_image_flags_other_than_the_models_on_any_folder(
    colour_model, tmp_path, capsys, data
):
    """On a flat folder --image-size and --color were ignored; on a class
    folder --color grey failed with 'X has 256 features, but the pretrained
    model expects 768'. Both name the flag and the model's input shape."""
    model = str(colour_model / "m.safetensors")
    argv = ["embed", model, str(colour_model / data)]
    argv += ["--out", str(tmp_path / "f.npy")]
    assert main([*argv, "--color", "grey"]) == 2
    err = _error(capsys)
    assert "--color grey: the model takes colour (rgb) images (input shape " in err
    assert "(3, 16, 16)" in err and "features" not in err
    assert main([*argv, "--image-size", "20"]) == 2
    assert "--image-size 20: the model takes 16x16 images" in _error(capsys)
    assert main([*argv, "--image-size", "16", "--color", "rgb"]) == 0
    assert np.load(tmp_path / "f.npy").shape[0] == 12
