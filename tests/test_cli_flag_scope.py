"""Flags refused, naming them, where the data makes them do nothing:
--on-empty and --on-error (image folders) on tables, --label-column (.csv
files) on folders and .npz files, demo's --n-classes with --data-home.
Each was accepted there and silently ignored."""

import numpy as np
import pytest
from _image_trees import write_image_tree

from skmeta.cli import _parser, main
from skmeta.datasets import make_glyphs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """6 classes of 8 rows of 4 features as rows.csv and rows.npz, and a
    model trained on them (table.safetensors); 4 glyph classes of 4 grey
    28x28 images as a folder of class subfolders (glyphs/), a flat folder
    (flat/) and an .npz file of images (glyphs.npz), and a model trained on
    them (images.safetensors)."""
    root = tmp_path_factory.mktemp("flag_scope")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 8)
    X = (rng.normal(size=(48, 4)) + 3 * y[:, None]).round(4)
    lines = [",".join(map(str, [label, *row])) for label, row in zip(y, X, strict=True)]
    (root / "rows.csv").write_text("label,a,b,c,d\n" + "\n".join(lines) + "\n")
    np.savez(root / "rows.npz", X=X, y=y)
    argv = ["train", str(root / "rows.csv"), "--out", str(root / "table.safetensors")]
    assert main([*argv, "--quiet", "--max-iter", "1", "--n-way", "3"]) == 0
    images, labels = make_glyphs(n_classes=4, n_samples_per_class=4, random_state=0)
    tree = write_image_tree(root / "glyphs", images, labels)
    (root / "flat").mkdir()
    for i, path in enumerate(tree.paths[:3]):
        (root / "flat" / f"{i}.png").write_bytes(path.read_bytes())
    np.savez(root / "glyphs.npz", X=tree.pixels[:, None], y=labels)
    argv = ["train", str(root / "glyphs"), "--out", str(root / "images.safetensors")]
    argv += ["--image-size", "28", "--color", "grey", "--backbone", "conv4_strided"]
    assert main([*argv, "--quiet", "--max-iter", "1", "--n-way", "2"]) == 0
    return root


def _run(capsys, argv) -> tuple[int, str]:
    capsys.readouterr()
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


def _commands(root, tmp_path, table: str) -> dict:
    """Each command's argv on DATA `table` with the table model."""
    model = root / "table.safetensors"
    return {
        "train": ["train", root / table, "--out", tmp_path / "m.safetensors"]
        + ["--quiet", "--max-iter", "1", "--n-way", "3"],
        "evaluate": ["evaluate", model, root / table, "--n-episodes", "2"]
        + ["--n-way", "3", "--n-query", "2"],
        "embed": ["embed", model, root / table, "--out", tmp_path / "e.npy"],
        "predict": ["predict", model, "--support", root / table]
        + ["--query", root / table],
    }


@pytest.mark.parametrize("command", ["train", "evaluate", "embed", "predict"])
@pytest.mark.parametrize("table", ["rows.csv", "rows.npz"])
@pytest.mark.parametrize(
    "flag, value",
    [("--on-empty", "warn"), ("--on-error", "warn"), ("--on-error", "raise")],
)
def test_folder_flags_are_refused_on_tables(
    data, tmp_path, capsys, command, table, flag, value
):
    """--on-error warn on a table did nothing (the parser gave "raise" either
    way), so nothing told the user that no row would be skipped."""
    argv = _commands(data, tmp_path, table)[command]
    status, err = _run(capsys, [*argv, flag, value])
    assert status == 2, err
    assert f"{flag} {value}: applies to " in err
    kind = "a .csv" if table == "rows.csv" else "an .npz"
    assert f"{table} is {kind} file, its rows read as they are" in err
    assert not (tmp_path / "m.safetensors").exists()
    if value == "raise":  # left out: "raise", as before
        assert _run(capsys, argv)[0] == 0


def test_folder_flags_apply_where_a_folder_is_read(data, tmp_path, capsys):
    model = data / "images.safetensors"
    embed = ["embed", model, data / "flat", "--out", tmp_path / "e.npy"]
    # a flat folder has no class subfolder to be empty; its files may be bad
    status, err = _run(capsys, [*embed, "--on-empty", "warn"])
    assert status == 2
    assert "--on-empty warn: applies to folders of class subfolders;" in err
    assert "flat holds images without class subfolders" in err
    assert _run(capsys, [*embed, "--on-error", "warn"])[0] == 0
    embed[2] = data / "glyphs"
    assert _run(capsys, [*embed, "--on-empty", "warn", "--on-error", "warn"])[0] == 0
    # predict: --on-empty reads --support, --on-error --support or --query
    predict = ["predict", model, "--support", data / "glyphs.npz"]
    predict += ["--query", data / "flat"]
    status, err = _run(capsys, [*predict, "--on-empty", "warn"])
    assert status == 2 and "--on-empty warn: applies to folders of class" in err
    assert "--support " in err and "glyphs.npz is an .npz file" in err
    assert _run(capsys, [*predict, "--on-error", "warn"])[0] == 0
    predict[3] = data / "glyphs"
    assert _run(capsys, [*predict, "--on-empty", "warn"])[0] == 0


def test_the_help_says_the_folder_flags_default():
    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices
    for command in ("train", "evaluate", "embed", "predict"):
        text = " ".join(commands[command].format_help().split())
        assert "(warn) (default: raise; refused for tables)" in text, command
        assert "--id-column NAME" in text, command


@pytest.mark.parametrize("command", ["train", "evaluate", "embed"])
def test_a_label_column_is_refused_where_no_csv_file_is_read(
    data, tmp_path, capsys, command
):
    """It did nothing on an .npz file (its labels are y) or an image folder."""
    argv = _commands(data, tmp_path, "rows.npz")[command]
    status, err = _run(capsys, [*argv, "--label-column", "y"])
    assert status == 2, err
    assert "--label-column y: names a column of a .csv file; " in err
    assert "rows.npz is an .npz file, labelled by its array y (or target)" in err
    if command == "train":
        argv = [*argv[:4], "--image-size", "28", "--color", "grey"]
        argv[1] = data / "glyphs"
    else:
        argv[1], argv[2] = data / "images.safetensors", data / "glyphs"
    status, err = _run(capsys, [*argv, "--label-column", "y"])
    assert status == 2, err
    assert "glyphs is a folder of images, labelled by its subfolders" in err
    assert not (tmp_path / "m.safetensors").exists()


def test_predict_takes_a_label_column_where_one_file_is_a_csv(data, tmp_path, capsys):
    predict = _commands(data, tmp_path, "rows.npz")["predict"]
    status, err = _run(capsys, [*predict, "--label-column", "label"])
    assert status == 2
    assert "--support " in err and " and --query " in err
    predict[-1] = data / "rows.csv"  # its label column is no feature
    assert _run(capsys, [*predict, "--label-column", "label"])[0] == 0


def test_a_table_model_refuses_an_image_folder_before_decoding_it(data, capsys):
    """evaluate decoded the folder at 84x84 colour, then said 'rows of 21168
    values; the model takes rows of 4'."""
    model = data / "table.safetensors"
    for argv in (
        ["evaluate", model, data / "glyphs"],
        ["embed", model, data / "glyphs", "--out", data / "e.npy"],
    ):
        status, err = _run(capsys, argv)
        assert status == 2
        assert "the model takes rows of shape (4,), not images" in err
        assert "21168" not in err


def test_demo_refuses_n_classes_with_data_home(tmp_path, capsys):
    """--n-classes sets the glyphs generated; on Omniglot it was ignored."""
    argv = ["demo", "--data-home", tmp_path, "--n-classes", "50", "--quick"]
    status, err = _run(capsys, argv)
    assert status == 2
    assert "--n-classes 50: sets how many glyph classes to generate" in err
