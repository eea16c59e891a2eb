"""The command line's refusals: output paths checked before any work, error
messages that name flags (not estimator parameters), missing optional
dependencies in one line, and the flags' help and valid values."""

import argparse

import numpy as np
import pytest
import torch
from _torchvision_env import refuse_torchvision

from skmeta._cli_help import FLAG_OF, flag_names, parameter_help
from skmeta.cli import _parser, main


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """8 classes of 8 rows (4 features) as .npz, and a model trained on them."""
    root = tmp_path_factory.mktemp("cli_errors")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 8)
    X = (rng.normal(size=(8, 4)) * 3)[y] + rng.normal(size=(y.size, 4))
    np.savez(root / "rows.npz", X=X.astype(np.float32), y=y)
    pixels = rng.integers(0, 256, (64, 1, 16, 16), dtype=np.uint8)
    np.savez(root / "images.npz", X=pixels, y=y)  # (n, C, H, W): images
    argv = ["train", str(root / "rows.npz"), "--out", str(root / "m.safetensors")]
    assert main([*argv, "--max-iter", "2", "--n-way", "2", "--quiet"]) == 0
    return root


@pytest.fixture
def no_fit(monkeypatch):
    """Meta-training fails the test: what is refused is refused before it."""
    from skmeta._extractor import MetaFeatureExtractor

    def fit(self, X, y=None, **kwargs):
        raise AssertionError("meta-trained before checking --out")

    monkeypatch.setattr(MetaFeatureExtractor, "fit", fit)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


@pytest.mark.parametrize(
    "out, message",
    [
        ("results/model.safetensors", "the folder {tmp}/results does not exist"),
        (".", "is a folder"),
        ("file.txt/model.safetensors", "is not a folder"),
    ],
)
def test_train_checks_out_before_meta_training(
    rows, tmp_path, capsys, no_fit, out, message
):
    (tmp_path / "file.txt").write_text("x")
    out = tmp_path if out == "." else tmp_path / out
    argv = ["train", str(rows / "rows.npz"), "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = _error(capsys)
    assert err.startswith(f"skmeta train: error: --out {out}: ")
    assert message.format(tmp=tmp_path) in err
    assert list(tmp_path.iterdir()) == [tmp_path / "file.txt"]  # nothing written


@pytest.mark.parametrize(
    "checkpoint, message",
    [
        ("nodir/run.ckpt", "the folder {tmp}/nodir does not exist"),
        (".", "is a folder"),
    ],
)
def test_train_checks_checkpoint_before_reading_data(
    rows, tmp_path, capsys, monkeypatch, no_fit, checkpoint, message
):
    """--checkpoint nodir/run.ckpt was refused only once the data were read
    and meta-training began, a missing --out folder before (a reviewer)."""
    from skmeta import _cli_data

    def load_dataset(*args, **kwargs):
        raise AssertionError("read DATA before checking --checkpoint")

    monkeypatch.setattr(_cli_data, "load_dataset", load_dataset)
    checkpoint = tmp_path if checkpoint == "." else tmp_path / checkpoint
    out = tmp_path / "m.safetensors"
    argv = ["train", str(rows / "rows.npz"), "--out", str(out), "--quiet"]
    assert main([*argv, "--checkpoint", str(checkpoint)]) == 2
    err = _error(capsys)
    assert err.startswith(f"skmeta train: error: --checkpoint {checkpoint}: ")
    assert message.format(tmp=tmp_path) in err
    assert list(tmp_path.iterdir()) == []


def test_embed_checks_out_before_embedding(rows, tmp_path, capsys):
    model, data = str(rows / "m.safetensors"), str(rows / "rows.npz")
    assert main(["embed", model, data, "--out", str(tmp_path / "no/f.npy")]) == 2
    assert "--out" in _error(capsys)
    assert main(["embed", model, data, "--out", str(tmp_path)]) == 2
    assert "is a folder" in _error(capsys)
    assert main(["embed", model, data, "--out", str(tmp_path / "f.txt")]) == 2
    assert ".npy, .npz, .csv or .parquet" in _error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_calibrate_on_few_classes_names_the_validation_fraction_flag(rows, capsys):
    argv = ["train", str(rows / "rows.npz"), "--out", str(rows / "c.safetensors")]
    argv += ["--max-iter", "2", "--quiet", "--calibrate"]
    # 8 classes, 2 held out for calibration (the least): 7 ways cannot be drawn
    assert main([*argv, "--n-way", "7"]) == 2
    err = _error(capsys)
    assert "--validation-fraction 0.1" in err and "--calibrate" in err
    assert "validation_fraction" not in err and "early_stopping" not in err
    # the flag it names exists, and does what it says
    assert main([*argv, "--n-way", "6"]) == 0
    capsys.readouterr()
    assert main(["info", str(rows / "c.safetensors")]) == 0
    assert "calibration:  temperature" in capsys.readouterr().out


def _glyph_folder(tmp_path, quiet=True) -> list[str]:
    """4 glyph classes of 4 images in tmp_path/data; ``skmeta train``'s argv
    for a 1-iteration model at tmp_path/m.safetensors."""
    from _image_trees import write_image_tree

    from skmeta.datasets import make_glyphs

    X, y = make_glyphs(n_classes=4, n_samples_per_class=4, random_state=0)
    write_image_tree(tmp_path / "data", X, y)
    argv = ["train", str(tmp_path / "data"), "--out", str(tmp_path / "m.safetensors")]
    argv += ["--image-size", "28", "--color", "grey", "--max-iter", "1"]
    argv += ["--n-way", "2", "--backbone", "conv4_strided"]
    return [*argv, "--quiet"] if quiet else argv


def test_empty_class_folder_names_the_on_empty_flag(tmp_path, capsys):
    argv = _glyph_folder(tmp_path)
    (tmp_path / "data" / "empty").mkdir()
    assert main(argv) == 2
    err = _error(capsys)
    assert "Pass --on-empty warn to skip them" in err and "on_empty" not in err
    with pytest.warns(UserWarning, match="skipped"):
        assert main([*argv, "--on-empty", "warn"]) == 0


def test_unreadable_images_name_the_on_error_flag_and_warn_skips_them(tmp_path, capsys):
    argv, out = _glyph_folder(tmp_path), tmp_path / "m.safetensors"
    first = sorted((tmp_path / "data").iterdir())[0]
    (first / "broken.png").write_bytes(b"not an image")
    assert main(argv) == 2
    err = _error(capsys)
    assert "broken.png" in err and "--on-error warn skips" in err
    with pytest.warns(UserWarning, match="Skipped 1 of the 17 image files"):
        assert main([*argv, "--on-error", "warn"]) == 0
    # predict's query images too
    query = tmp_path / "query"
    query.mkdir()
    (query / "broken.png").write_bytes(b"not an image")
    (query / "good.png").write_bytes(next(first.glob("*.png")).read_bytes())
    predict = ["predict", str(out), "--support", str(tmp_path / "data")]
    predict += ["--query", str(query), "--on-error", "warn"]
    with pytest.warns(UserWarning):
        assert main(predict) == 0
    printed = capsys.readouterr().out
    assert "good.png" in printed and "broken.png" not in printed
    assert main(predict[:-2]) == 2
    assert "--on-error warn skips" in _error(capsys)


def test_train_shows_decoding_progress_unless_quiet(tmp_path, capsys):
    argv = _glyph_folder(tmp_path, quiet=False)
    assert main(argv) == 0
    assert "Decoding images" in capsys.readouterr().err
    assert main([*argv, "--quiet"]) == 0
    assert "Decoding images" not in capsys.readouterr().err


def test_unknown_label_on_an_uncalibrated_model_names_calibrate(rows, capsys):
    model, data = str(rows / "m.safetensors"), str(rows / "rows.npz")
    argv = ["predict", model, "--support", data, "--query", data]
    assert main([*argv, "--unknown-label", "none"]) == 2
    err = _error(capsys)
    assert "--unknown-label needs a model meta-trained with --calibrate" in err
    assert "calibrate=True" not in err and "unknown_label" not in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed", "-1"], "--seed must be an int"),
        (["--n-way", "30"], "--n-way 30 exceeds the number of classes"),
        (["--validation-fraction", "1.5"], "--validation-fraction must be"),
    ],
)
def test_parameter_errors_name_the_flag(rows, tmp_path, capsys, flags, message):
    argv = ["train", str(rows / "rows.npz"), "--out", str(tmp_path / "m")]
    assert main([*argv, "--max-iter", "1", "--quiet", *flags]) == 2
    err = _error(capsys)
    assert message in err
    assert "random_state" not in err and "MetaFeatureExtractor" not in err


def test_flag_names_leaves_paths_and_other_words_alone():
    text = "The 'max_iter' parameter of X must be >= 1; see data/n_way/x.png"
    assert flag_names(text) == "--max-iter must be >= 1; see data/n_way/x.png"
    assert flag_names("lower n_way or leave it None") == (
        "lower --n-way or leave the flag out"
    )
    assert flag_names("calibrate=True, early_stopping=False, n_iter_no_change") == (
        "--calibrate, no --early-stopping, --n-iter-no-change"
    )
    # a parameter with no flag is said to be Python's (reviewer: the help of
    # --early-stopping named n_iter_no_change, which had none)
    assert "test_time_shifts (no flag: Python API only)" in parameter_help(
        "augmentation"
    )
    assert set(FLAG_OF.values()) >= {"--seed", "--validation-fraction", "--on-empty"}


@pytest.mark.parametrize(
    "flags", [["--augmentation", "images"], ["--backbone", "torchvision:resnet18"]]
)
def test_missing_torchvision_is_one_line_exit_1(
    rows, tmp_path, capsys, monkeypatch, flags
):
    refuse_torchvision(monkeypatch)
    argv = ["train", str(rows / "images.npz"), "--out", str(tmp_path / "m")]
    assert main([*argv, "--max-iter", "1", "--quiet", *flags]) == 1
    err = _error(capsys)
    assert err.startswith("skmeta train: error: ") and "needs torchvision" in err
    assert "pip install" in err


def _help(command: str) -> dict:
    """Each flag of `command` and its help as printed."""
    parser = _parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    formatter = sub._get_formatter()
    return {
        action.option_strings[-1]: formatter._expand_help(action)
        for action in sub._actions
        if action.option_strings and action.help
    }


def test_help_lists_valid_values_from_the_registries_and_defaults():
    from skmeta.meta.algorithms import ALGORITHMS
    from skmeta.meta.augment import PRESETS
    from skmeta.meta.backbones import BUILTIN_BACKBONES
    from skmeta.meta.precision import PRECISIONS

    train = _help("train")
    assert all(name in train["--method"] for name in ALGORITHMS)
    assert all(name in train["--backbone"] for name in BUILTIN_BACKBONES)
    assert "torchvision:<name>" in train["--backbone"]
    assert all(name in train["--precision"] for name in PRECISIONS)
    assert all(name in train["--augmentation"] for name in PRESETS)
    assert "(default: 1000)" in train["--max-iter"]
    assert "(default: float32)" in train["--precision"]
    assert "(default: 0.1)" in train["--validation-fraction"]
    assert len({train[f] for f in ("--n-way", "--k-shot", "--n-query")}) == 3
    assert "(default: 600)" in _help("evaluate")["--n-episodes"]


def test_help_sentences_are_not_cut_at_e_g():
    text = parameter_help("unknown_label")
    assert not text.endswith("(e.g.") and "e.g. -1" in text
    assert "not one of the classes" in _help("predict")["--unknown-label"]


def test_help_cut_short_never_leaves_a_parenthesis_open():
    """--checkpoint's help ended '(a temporary file, then a...' (a reviewer)."""
    for command in ("train", "evaluate", "predict", "embed"):
        for flag, text in _help(command).items():
            assert text.count("(") == text.count(")"), (command, flag, text)
    assert (
        _help("train")["--checkpoint"]
        .split(" (default")[0]
        .endswith("after the last, atomically...")
    )


def test_predict_flags_all_have_help():
    predict = _help("predict")
    for flag in ("--support", "--query", "--label-column", "--on-empty"):
        assert len(predict[flag]) > 20
    assert ".npz" in predict["--query"] and "folder" in predict["--query"]


@pytest.mark.parametrize(
    "flags",
    [
        ["--image-size", "32", "32", "32"],
        ["--image-size", "0"],
        ["--precision", "float8"],
        ["--method", "nope"],
    ],
)
def test_bad_flag_values_are_refused_by_the_parser(rows, capsys, flags):
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(rows / "rows.npz"), "--out", "m", *flags])
    assert exit_.value.code == 2
    assert flags[0] in capsys.readouterr().err


def test_color_takes_the_values_the_loader_takes(tmp_path, capsys):
    from _image_trees import write_image_tree

    from skmeta._image_folder import _MODES
    from skmeta.datasets import make_glyphs
    from skmeta.meta.model import MetaModel

    train = _parser()._subparsers._group_actions[0].choices["train"]
    (color,) = [a for a in train._actions if "--color" in a.option_strings]
    assert set(color.choices) == set(_MODES)
    X, y = make_glyphs(n_classes=4, n_samples_per_class=3, random_state=0)
    write_image_tree(tmp_path / "data", X, y)
    out = tmp_path / "m.safetensors"
    argv = ["train", str(tmp_path / "data"), "--out", str(out), "--color", "gray"]
    argv += ["--image-size", "16", "20", "--max-iter", "1", "--n-way", "2"]
    assert main([*argv, "--k-shot", "1", "--n-query", "1", "--quiet"]) == 0
    assert MetaModel.load(out).input_shape == (1, 16, 20)


def test_parser_type_errors_are_argparse_errors():
    from skmeta._cli_parser import image_size

    with pytest.raises(argparse.ArgumentTypeError):
        image_size("x")


def _torchvision_import_raises(monkeypatch, error: Exception) -> None:
    """importlib.import_module raises `error` for torchvision (and its
    submodules), as a missing or mismatched build makes it."""
    import importlib

    real = importlib.import_module

    def failing(name, *args, **kwargs):
        if name.split(".")[0] == "torchvision":
            raise error
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", failing)


def test_a_torchvision_of_another_build_says_to_reinstall_it(monkeypatch):
    from skmeta._optional import import_torchvision, torchvision_command

    error = RuntimeError("operator torchvision::nms does not exist\nmore")
    _torchvision_import_raises(monkeypatch, error)
    with pytest.raises(ImportError) as info:
        import_torchvision("augmentation='images'")
    message = str(info.value)
    assert "is installed but does not load with torch" in message
    assert "(operator torchvision::nms does not exist)" in message
    assert "pip uninstall torchvision" in message
    assert torchvision_command(torch.__version__) in message  # pinned to torch's
    assert "skmeta[vision]" not in message  # installing it again changes nothing


def test_a_missing_torchvision_gives_the_command_for_this_torch(monkeypatch):
    """'pip install skmeta[vision]' installed the newest torchvision, which
    replaced a CPU torch with its own CUDA release."""
    from skmeta._optional import import_torchvision, torchvision_command

    error = ModuleNotFoundError("No module named 'torchvision'")
    _torchvision_import_raises(monkeypatch, error)
    with pytest.raises(ImportError) as info:
        import_torchvision("backbone='torchvision:resnet18'")
    assert torchvision_command(torch.__version__) in str(info.value)
    assert "skmeta[vision]" not in str(info.value)


@pytest.mark.parametrize(
    ("version", "command"),
    [
        ("2.13.0+cpu", "pip install 'torchvision==0.28.*' --index-url "
         "https://download.pytorch.org/whl/cpu"),
        ("2.4.1+cu121", "pip install 'torchvision==0.19.*' --index-url "
         "https://download.pytorch.org/whl/cu121"),
        ("2.6.0", "pip install 'torchvision==0.21.*'"),
        ("2.14.0.dev20270101+git", "pip install 'torchvision==0.29.*'"),
        ("3.0.0", "pip install torchvision"),
    ],
)  # fmt: skip
def test_torchvision_command_pins_the_release_and_index_of_torch(version, command):
    from skmeta._optional import torchvision_command

    assert torchvision_command(version) == command


def test_an_image_size_other_than_the_models_is_named(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(_glyph_folder(tmp_path)) == 0
    embed = [
        "embed",
        str(out),
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "f.npy"),
    ]
    assert main([*embed, "--image-size", "32"]) == 2
    assert "the model takes 28x28 images" in _error(capsys)
    assert main([*embed, "--image-size", "28"]) == 0


@pytest.mark.parametrize("kind", ["csv", "npz"])
def test_a_regression_target_is_refused_as_classes(rows, tmp_path, capsys, kind):
    """Real-valued targets were read as 200 one-row classes by train and
    evaluate and failed with 'needs at least 2 classes with 2 samples each';
    they say the command is classification only. Whole-valued labels ('1.0',
    as pandas writes them) are class codes; embed and predict, which draw no
    episodes, read any labels."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    target = X[:, 0] * 2.5 + rng.normal(size=200) * 0.1
    for name, labels in [("reg", target), ("codes", np.repeat([1.0, 2.0], 100))]:
        if kind == "npz":
            np.savez(tmp_path / f"{name}.npz", X=X, y=labels)
        else:
            lines = ["a,b,c,d,label"] + [
                ",".join(f"{v:.4f}" for v in [*row, t])
                for row, t in zip(X, labels, strict=True)
            ]
            (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n")
    reg, model = str(tmp_path / f"reg.{kind}"), str(rows / "m.safetensors")
    out = ["--out", str(tmp_path / "m.safetensors")]
    for argv in (["train", reg, *out], ["evaluate", model, reg]):
        assert main(argv) == 2
        message = _error(capsys)
        assert "a regression target" in message and "FewShotRegressor" in message
    codes = str(tmp_path / f"codes.{kind}")
    assert main(["train", codes, *out, "--max-iter", "2", "--quiet"]) == 0
    assert main(["embed", model, reg, "--out", str(tmp_path / "e.npy")]) == 0
    argv = ["predict", model, "--support", str(rows / "rows.npz"), "--query", reg]
    assert main(argv) == 0
