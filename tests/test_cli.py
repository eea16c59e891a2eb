import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skmeta.cli import main
from skmeta.meta.model import MetaModel


def test_demo_quick_prints_a_table(capsys):
    assert main(["demo", "--quick", "--methods", "protonet"]) == 0
    out = capsys.readouterr().out
    assert "5-way 1-shot" in out and "20-way 1-shot" in out
    assert "protonet" in out and "raw pixels" in out
    assert "never seen in training" in out


def test_demo_bad_data_home_is_a_clean_error(tmp_path, capsys, monkeypatch):
    assert main(["demo", "--quick", "--data-home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error" in err and str(tmp_path) in err
    assert "or pass --download" in err and "point --data-home" in err  # flags
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    argv = ["demo", "--quick", "--data-home", str(tmp_path), "--download"]
    assert main(argv) == 1  # the download was tried, and failed cleanly
    err = capsys.readouterr().err
    assert "Could not download Omniglot 'background'" in err
    assert "Network is unreachable" in err and "download=True" not in err
    assert main(["demo", "--quick", "--download"]) == 2  # into which folder?
    assert "give --data-home DIR" in capsys.readouterr().err


def test_console_script_help():
    done = subprocess.run(
        [sys.executable, "-m", "skmeta.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "demo" in done.stdout


@pytest.mark.slow
def test_full_demo_shows_meta_learning_beating_raw_pixels(capsys):
    """The main job as a user runs it (about 2 minutes on 2 cores)."""
    from skmeta._demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(verbose=0))
    rows = {row["method"]: row for row in result["rows"]}
    for task in ("5w1s", "5w5s", "20w1s"):
        assert rows["protonet"][task][0] > rows["raw pixels"][task][0] + 0.15
    assert rows["protonet"]["5w1s"][0] > 0.9


OMNIGLOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


@pytest.mark.omniglot
@pytest.mark.skipif(
    not (OMNIGLOT / "background.npz").is_file(),
    reason="Omniglot data not found beside the checkout",
)
def test_demo_on_omniglot(capsys):
    assert (
        main(["demo", "--quick", "--data-home", str(OMNIGLOT), "--methods", "protonet"])
        == 0
    )
    out = capsys.readouterr().out
    assert "Omniglot" in out and "659 classes never seen" in out
    assert "Lake's runs" in out.splitlines()[3]  # a column, drawers known


def test_demo_scores_lake_runs_where_groups_are_known(monkeypatch, capsys):
    """With alphabets and drawers, the demo adds Lake's within-alphabet runs."""
    from skmeta import _demo
    from skmeta.datasets import make_glyphs

    X, y = make_glyphs(70, 20, random_state=0)
    novel = y >= 30  # 40 classes: two "alphabets" of 20, two "drawers" each
    groups = np.c_[(y[novel] - 30) // 20, np.arange(novel.sum()) % 2]
    data = ("toy", (X[~novel], y[~novel]), (X[novel], y[novel]), groups)
    monkeypatch.setattr(_demo, "_load", lambda config: data)
    config = _demo.DemoConfig(methods=("protonet",), max_iter=5, n_episodes=4)
    rows = {row["method"]: row for row in _demo.run_demo(config)["rows"]}
    out = capsys.readouterr().out
    assert "Lake's runs" in out and "people score 95.5%" in out
    for method in ("protonet", "raw pixels"):
        mean, ci95 = rows[method]["lake"]
        assert 0 <= mean <= 1 and ci95 >= 0
    monkeypatch.setattr(_demo, "_load", lambda config: (*data[:3], None))
    rows = _demo.run_demo(config)["rows"]
    assert "lake" not in rows[0] and "Lake's runs" not in capsys.readouterr().out


def test_explicit_demo_flags_win_over_quick():
    from skmeta._demo import demo_config
    from skmeta.cli import _parser

    quick = demo_config(_parser().parse_args(["demo", "--quick", "--max-iter", "7"]))
    assert (quick.max_iter, quick.n_classes, quick.n_episodes) == (7, 120, 20)
    full = demo_config(_parser().parse_args(["demo"]))
    assert (full.max_iter, full.n_classes, full.verbose) == (2000, 1000, 1)


def test_version_and_python_dash_m(capsys):
    import skmeta

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"skmeta {skmeta.__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "skmeta", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    # flag help is the estimators' docstring
    assert "Number of meta-updates." in done.stdout
    assert "Episode size in meta-training" in done.stdout


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    """8 classes of 6 grey 28x28 glyph PNGs, and a trained model file."""
    from _cli_models import glyph_folder_and_model

    root = tmp_path_factory.mktemp("cli")
    # long enough at the default learning rate (ProtoNet's 4e-3) for a support
    # image to be nearest its own class: after 5 or 20 iterations, 3 of 10
    # seeds were not; after 100, none
    glyph_folder_and_model(root, max_iter=100)
    return root


def test_train_info_evaluate_on_an_image_folder(image_tree, capsys):
    model, data = str(image_tree / "model.safetensors"), str(image_tree / "data")
    capsys.readouterr()
    assert main(["info", model]) == 0
    out = capsys.readouterr().out
    assert "protonet" in out and "(1, 28, 28)" in out and "100 iterations" in out
    argv = ["evaluate", model, data, "--n-way", "3", "--n-episodes", "4", "--json"]
    assert main([*argv, "--n-query", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "3-way 1-shot" and 0 <= result["mean"] <= 1


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
def test_embed_writes_features(image_tree, tmp_path, suffix, capsys):
    out = tmp_path / f"features{suffix}"
    model = str(image_tree / "model.safetensors")
    assert main(["embed", model, str(image_tree / "data"), "--out", str(out)]) == 0
    if suffix == ".npy":
        assert np.load(out).shape[0] == 48
    elif suffix == ".npz":
        saved = np.load(out)
        assert saved["features"].shape[0] == 48 and saved["y"].shape == (48,)
    else:
        lines = out.read_text().splitlines()
        assert lines[0].startswith("name,label,metafeatureextractor0,")
        assert len(lines) == 49


def test_predict_labels_query_images_by_support_classes(image_tree, tmp_path, capsys):
    import shutil

    data = image_tree / "data"
    query = tmp_path / "query"
    query.mkdir()
    classes = sorted(p.name for p in data.iterdir())[:3]
    support = tmp_path / "support"
    for name in classes:
        files = sorted((data / name).iterdir())
        shutil.copytree(data / name, support / name)
        shutil.copy(files[0], query / f"{name}.png")
    capsys.readouterr()
    model = str(image_tree / "model.safetensors")
    argv = ["predict", model, "--support", str(support), "--query", str(query)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "file,label,probability" and len(lines) == 4
    for line in lines[1:]:
        name, label, p = line.split(",")
        assert label in classes and 0 < float(p) <= 1
    # a support image itself is labelled as its class
    assert all(line.split(",")[1] == line.split(".png")[0] for line in lines[1:])


def test_train_on_csv_and_npz_tables(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)) + np.repeat(np.arange(6), 10)[:, None]
    y = np.repeat(np.array(list("abcdef")), 10)
    table = tmp_path / "rows.csv"
    with open(table, "w") as handle:
        handle.write("a,b,species,c,d\n")
        for row, label in zip(X, y, strict=True):
            handle.write(f"{row[0]},{row[1]},{label},{row[2]},{row[3]}\n")
    out = tmp_path / "m.safetensors"
    argv = ["train", str(table), "--out", str(out), "--max-iter", "3", "--quiet"]
    assert main([*argv, "--label-column", "species", "--n-way", "3"]) == 0
    np.savez(tmp_path / "rows.npz", X=X.astype(np.float32), y=y)
    argv = ["evaluate", str(out), str(tmp_path / "rows.npz"), "--n-episodes", "3"]
    assert main([*argv, "--n-way", "3", "--n-query", "2"]) == 0
    assert "3-way 1-shot:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "{tmp}/missing", "--out", "{tmp}/m"], "missing: no such file"),
        (["train", "{tmp}/x.txt", "--out", "{tmp}/m"], "unknown kind of data"),
        (["info", "{tmp}/x.txt"], "x.txt"),
        (["train", "{tmp}/t.csv", "--out", "{tmp}/m"], "no column 'label'"),
        (
            [
                "train",
                "{tmp}/t.csv",
                "--out",
                "{tmp}/m",
                "--label-column",
                "y",
                "--max-iter",
                "0",
            ],
            "--max-iter must be",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_file_or_flag(tmp_path, capsys, argv, message):
    (tmp_path / "x.txt").write_text("not a model")
    (tmp_path / "t.csv").write_text("a,y\n1,0\n2,1\n3,0\n4,1\n")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_train_calibrate_and_info_shows_the_temperature(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(24), 8)
    X = (rng.normal(size=(24, 4)) * 3)[y] + rng.normal(size=(y.size, 4))
    np.savez(tmp_path / "rows.npz", X=X.astype(np.float32), y=y)
    out = tmp_path / "m.safetensors"
    argv = ["train", str(tmp_path / "rows.npz"), "--out", str(out), "--quiet"]
    assert main([*argv, "--max-iter", "5", "--n-way", "3", "--calibrate"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "calibration:  temperature" in capsys.readouterr().out


def test_predict_unknown_label_needs_a_calibrated_model(image_tree, capsys):
    model, data = str(image_tree / "model.safetensors"), str(image_tree / "data")
    query = str(sorted((image_tree / "data").iterdir())[0])
    argv = ["predict", model, "--support", data, "--query", query]
    assert main([*argv, "--unknown-label", "none"]) == 2
    assert "meta-trained with --calibrate" in capsys.readouterr().err


def test_train_card_and_evaluate_record_write_results_into_the_model(
    image_tree, tmp_path, capsys
):
    from skmeta.meta.model import MetaModel

    data = str(image_tree / "data")
    out = tmp_path / "glyphs.safetensors"
    argv = ["train", data, "--out", str(out), "--image-size", "28", "--color", "grey"]
    argv += ["--backbone", "conv4_strided", "--max-iter", "3", "--n-way", "3"]
    assert main([*argv, "--k-shot", "2", "--quiet", "--card"]) == 0
    card = tmp_path / "glyphs.md"
    assert "Not measured yet" in card.read_text()
    argv = ["evaluate", str(out), data, "--n-way", "3", "--n-episodes", "4"]
    assert main([*argv, "--n-query", "2", "--json", "--record"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (entry,) = MetaModel.load(out).config["evaluations"]
    assert entry["task"] == "3-way 1-shot, 2 queries" and entry["n_episodes"] == 4
    assert entry["mean"] == pytest.approx(result["mean"])
    assert entry["data"]["n_classes"] == 8 and entry["data"]["episode_seed"] == 0
    text = card.read_text()
    assert "| 3-way 1-shot, 2 queries |" in text and "Not measured" not in text
    assert main(["info", str(out)]) == 0
    assert "evaluated:    3-way 1-shot, 2 queries" in capsys.readouterr().out


def test_train_takes_augmentation_presets_separated_by_commas(
    image_tree, tmp_path, capsys
):
    from skmeta.meta.model import MetaModel

    out = tmp_path / "m.safetensors"
    argv = ["train", str(image_tree / "data"), "--out", str(out), "--quiet"]
    argv += ["--max-iter", "2", "--n-way", "3"]
    assert main([*argv, "--augmentation", "affine,elastic"]) == 0
    recorded = MetaModel.load(out).config["training"]["augmentation"]
    assert recorded == "[affine, elastic]"
    assert main([*argv, "--augmentation", "elastic"]) == 0
    assert MetaModel.load(out).config["training"]["augmentation"] == "elastic"
    capsys.readouterr()
    assert main([*argv, "--augmentation", "affine,colour"]) == 2
    assert "--augmentation colour is unknown" in capsys.readouterr().err


def test_train_help_says_augmentation_presets_compose():
    from skmeta.cli import _parser

    train = _parser()._subparsers._group_actions[0].choices["train"]
    assert "affine,elastic" in train.format_help()


def _table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)) + np.repeat(np.arange(6), 10)[:, None]
    path = tmp_path / "rows.npz"
    np.savez(path, X=X.astype(np.float32), y=np.repeat(np.arange(6), 10))
    return path


def test_train_interrupted_writes_the_model_so_far_and_exits_130(
    tmp_path, capsys, monkeypatch
):
    from skmeta.meta.callbacks import History

    step = History.on_step_end

    def interrupted(self, loop, loss, metrics):
        step(self, loop, loss, metrics)
        if loop.n_iter == 7:
            raise KeyboardInterrupt

    monkeypatch.setattr(History, "on_step_end", interrupted)
    out = tmp_path / "m.safetensors"
    argv = ["train", str(_table(tmp_path)), "--out", str(out), "--quiet"]
    assert main([*argv, "--max-iter", "20", "--n-way", "3"]) == 130
    assert "interrupted: the model after 7 iterations of 20" in capsys.readouterr().out
    assert MetaModel.load(out).config["training"]["n_iter"] == 7
    assert main(["info", str(out)]) == 0
    assert "interrupted (Ctrl-C): the model so far" in capsys.readouterr().out


def test_train_checkpoint_flags_resume_a_run(tmp_path, capsys):
    out, ckpt = tmp_path / "m.safetensors", tmp_path / "run.ckpt"
    argv = ["train", str(_table(tmp_path)), "--out", str(out), "--quiet"]
    argv += ["--n-way", "3", "--seed", "0", "--checkpoint", str(ckpt)]
    assert main([*argv, "--max-iter", "6", "--checkpoint-every", "2"]) == 0
    assert ckpt.exists()
    # the same run again resumes from its end: no iteration is redone
    assert main([*argv, "--max-iter", "6", "--checkpoint-every", "2"]) == 0
    assert "(6 iterations)" in capsys.readouterr().out.splitlines()[-1]


def test_embed_takes_a_flat_folder_of_unlabelled_images(image_tree, tmp_path, capsys):
    flat = tmp_path / "flat"
    flat.mkdir()
    images = sorted((image_tree / "data").rglob("*.png"))[:5]
    for i, image in enumerate(images):
        (flat / f"photo{i}.png").write_bytes(image.read_bytes())
    out = tmp_path / "features.npz"
    model = str(image_tree / "model.safetensors")
    assert main(["embed", model, str(flat), "--out", str(out)]) == 0
    saved = np.load(out)
    assert saved["features"].shape[0] == 5 and "y" not in saved.files
    assert [Path(name).name for name in saved["names"]] == [
        f"photo{i}.png" for i in range(5)
    ]


def test_library_warnings_name_the_flags(tmp_path):
    out = tmp_path / "m.safetensors"
    argv = [sys.executable, "-m", "skmeta", "train", str(_table(tmp_path))]
    argv += ["--out", str(out), "--max-iter", "3", "--n-way", "3", "--quiet"]
    done = subprocess.run(
        [*argv, "--checkpoint-every", "5"], capture_output=True, text=True, check=True
    )
    assert (
        "skmeta train: warning: These settings are ignored: --checkpoint-every 5"
        in done.stderr
    )
    assert "checkpoint_every" not in done.stderr


def test_a_quoted_tilde_is_the_home_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    _table(tmp_path)  # ~/rows.npz
    argv = ["train", "~/rows.npz", "--out", "~/m.safetensors", "--quiet"]
    assert main([*argv, "--max-iter", "2", "--n-way", "3"]) == 0
    assert (tmp_path / "m.safetensors").exists()


def test_demo_prints_warnings_as_the_commands_lines(monkeypatch, capsys):
    """demo's warnings came out as Python's '<frozen runpy>:88: UserWarning'
    lines (reviewer); they read as the other commands' now."""
    import warnings

    from skmeta import _demo

    def warn(config):
        warnings.warn(
            "Meta-training's loss did not fall. Try another learning_rate.",
            UserWarning,
            stacklevel=2,
        )

    monkeypatch.setattr(_demo, "run_demo", warn)
    assert main(["demo", "--quick"], console=True) == 0
    err = capsys.readouterr().err
    assert "skmeta demo: warning: Meta-training's loss did not fall" in err
    assert "UserWarning" not in err
    # demo has no --learning-rate: train's flags are not named
    assert "Try another learning_rate." in err and "--learning-rate" not in err
