"""The image-only flags (--image-size, --color; train's image backbones and
augmentations) on tables: refused, naming the flag, where they did nothing
or asked for a Python parameter."""

from argparse import Namespace

import numpy as np
import pytest

from skmeta._cli_image_flags import FLAT, file_shape, refuse_image_flags
from skmeta.cli import main

APPLIES = "applies to image folders and rows of images"


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """6 classes of 8 rows of 4 features as rows.csv and rows.npz."""
    root = tmp_path_factory.mktemp("image_flags")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 8)
    X = rng.normal(size=(48, 4)) + 3 * y[:, None]
    lines = [",".join(map(str, [label, *row])) for label, row in zip(y, X, strict=True)]
    (root / "rows.csv").write_text("label,a,b,c,d\n" + "\n".join(lines) + "\n")
    np.savez(root / "rows.npz", X=X, y=y)
    return root


@pytest.mark.parametrize("data", ["rows.csv", "rows.npz"])
@pytest.mark.parametrize(
    "flags, shown",
    [
        (["--image-size", "28"], "--image-size 28: "),
        (["--color", "grey"], "--color grey: "),
        (["--backbone", "conv4"], "--backbone conv4: "),
        (["--backbone", "torchvision:resnet18"], "--backbone torchvision:resnet18: "),
        (["--augmentation", "images"], "--augmentation images: "),
        (["--augmentation", "features,elastic"], "--augmentation elastic: "),
        (["--class-augmentation", "rot90"], "--class-augmentation rot90: "),
    ],
)
def test_train_refuses_image_flags_on_a_table(
    tables, tmp_path, capsys, data, flags, shown
):
    """--image-size and --color were accepted and did nothing; conv4 asked for
    input_shape=(C, H, W), a Python parameter; --augmentation images asked
    for torchvision."""
    out = tmp_path / "m.safetensors"
    argv = ["train", str(tables / data), "--out", str(out), "--quiet"]
    assert main([*argv, "--max-iter", "1", "--n-way", "3", *flags]) == 2
    err = capsys.readouterr().err
    assert shown + APPLIES in err and f"{data} holds flat rows of features" in err
    assert "input_shape" not in err and "torchvision;" not in err
    assert not out.exists()


def test_a_table_model_refuses_image_flags(tables, tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    argv = ["train", str(tables / "rows.csv"), "--out", str(model), "--quiet"]
    assert main([*argv, "--max-iter", "1", "--n-way", "3"]) == 0
    embed = [
        "embed",
        str(model),
        str(tables / "rows.csv"),
        "--out",
        str(tmp_path / "e.csv"),
    ]
    evaluate = ["evaluate", str(model), str(tables / "rows.npz")]
    for command, flags in (
        (embed, ["--color", "rgb"]),
        (evaluate, ["--image-size", "8", "8"]),
    ):
        assert main([*command, *flags]) == 2
        assert f"{' '.join(flags)}: {APPLIES}" in capsys.readouterr().err


def _args(**flags):
    given = {"image_size": None, "color": None, **flags}
    return Namespace(**given)


def test_rows_of_features_take_the_flags_that_are_not_images_only(tables):
    refuse_image_flags(
        _args(backbone="mlp", augmentation="features"), tables / "rows.csv"
    )
    refuse_image_flags(
        _args(backbone="auto", augmentation=["features"]), tables / "rows.npz"
    )
    refuse_image_flags(_args(image_size=[28], color="grey"), tables)  # a folder


def test_what_an_npz_file_holds_is_read_from_its_headers(tmp_path):
    rows = np.zeros((5, 64), np.float32)
    shapes = {
        "flat": (dict(X=rows), FLAT),
        "declared": (dict(X=rows, input_shape=np.array([1, 8, 8])), (1, 8, 8)),
        "grey": (dict(data=rows.reshape(5, 8, 8)), (1, 8, 8)),
        "first": (dict(X=np.zeros((5, 3, 4, 6))), (3, 4, 6)),
        "last": (dict(features=np.zeros((5, 8, 6, 3))), (3, 8, 6)),
        "none": (dict(y=np.arange(5)), None),
    }
    for name, (arrays, expected) in shapes.items():
        np.savez_compressed(tmp_path / f"{name}.npz", **arrays)
        assert file_shape(tmp_path / f"{name}.npz") == expected, name
    (tmp_path / "bad.npz").write_text("not a zip")
    assert file_shape(tmp_path / "bad.npz") is None  # its loader says why


@pytest.mark.parametrize(
    "flags, refused",
    [
        (dict(image_size=[4, 6]), None),
        (dict(image_size=[6, 4]), "holds 4x6 images, taken at their size"),
        (dict(color="rgb"), None),
        (dict(color="grey"), "holds images of 3 channel(s)"),
        (dict(backbone="conv4", augmentation="affine"), None),
    ],
)
def test_images_of_an_npz_file_take_their_own_size_and_colour(tmp_path, flags, refused):
    np.savez(tmp_path / "images.npz", X=np.zeros((5, 3, 4, 6)), y=np.arange(5))
    if refused is None:
        refuse_image_flags(_args(**flags), tmp_path / "images.npz")
    else:
        with pytest.raises(
            ValueError, match=refused.replace("(", "\\(").replace(")", "\\)")
        ):
            refuse_image_flags(_args(**flags), tmp_path / "images.npz")
