"""What the command line reads and writes: model files written atomically,
predictions as proper CSV, tables to predict on, CSVs with a byte-order mark,
parquet's optional dependency, and model files with a custom backbone."""

import csv
import io
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from skmeta._cli_data import load_dataset
from skmeta.cli import main
from skmeta.meta.model import MetaModel


def _small_model() -> MetaModel:
    return MetaModel.from_module(torch.nn.Linear(4, 3), input_shape=(4,))


# -- model files written atomically (skmeta/meta/io.py) ---------------------------


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_save_leaves_nothing_behind(tmp_path, monkeypatch, failing):
    import skmeta.meta.io as model_io

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_io.os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        _small_model().save(tmp_path / "m.safetensors")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_saves_use_temporary_files_of_their_own(tmp_path, monkeypatch):
    import skmeta.meta.io as model_io

    renamed, replace = [], model_io.os.replace

    def record(source, target):
        renamed.append(Path(source))
        return replace(source, target)

    monkeypatch.setattr(model_io.os, "replace", record)
    model = _small_model()
    model.save(tmp_path / "m.safetensors")
    model.save(tmp_path / "m.safetensors")  # as a concurrent writer would
    assert len(set(renamed)) == 2  # never one temporary file for two writes
    assert all(p.parent == tmp_path and p.name.endswith(".tmp") for p in renamed)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    loaded = MetaModel.load(tmp_path / "m.safetensors", backbone=torch.nn.Linear(4, 3))
    assert loaded.embedding_dim == 3


def test_a_save_into_a_missing_folder_fails_cleanly(tmp_path):
    with pytest.raises(FileNotFoundError):
        _small_model().save(tmp_path / "missing" / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


# -- tables, CSV in and out ---------------------------------------------------------


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """3 well-separated classes of 10 rows, labels with a comma and a quote,
    as a .csv with a byte-order mark, and a model trained on it."""
    root = tmp_path_factory.mktemp("cli_files")
    rng = np.random.default_rng(0)
    names = np.array(["shoes, red", 'say "hi"', "plain"])
    y = np.repeat(np.arange(3), 10)
    X = rng.normal(size=(30, 4)) + 6 * y[:, None]
    with open(root / "rows.csv", "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "a", "b", "c", "d"])
        writer.writerows([name, *row] for name, row in zip(names[y], X, strict=True))
    np.savez(root / "query.npz", X=X[::5].astype(np.float32))
    with open(root / "query.csv", "w") as handle:  # no label column
        handle.write("a,b,c,d\n")
        handle.writelines(",".join(map(str, row)) + "\n" for row in X[::5])
    out = root / "m.safetensors"
    argv = ["train", str(root / "rows.csv"), "--out", str(out), "--quiet"]
    assert main([*argv, "--max-iter", "3", "--n-way", "2", "--seed", "0"]) == 0
    return root, names[y[::5]]


def test_csv_with_a_byte_order_mark_is_read(table):
    root, _ = table
    data = load_dataset(root / "rows.csv")
    assert data.X.shape == (30, 4) and data.y[0] == "shoes, red"


@pytest.mark.parametrize("block", [1, 7, 4096])
def test_csv_rows_are_read_in_blocks_to_the_same_array(table, monkeypatch, block):
    import skmeta._cli_tables as cli_tables

    root, _ = table
    with open(root / "rows.csv", newline="", encoding="utf-8-sig") as handle:
        records = list(csv.reader(handle))[1:]
    expected = np.array([row[1:] for row in records], dtype=np.float32)
    monkeypatch.setattr(cli_tables, "_CSV_BLOCK", block)
    data = load_dataset(root / "rows.csv")
    np.testing.assert_array_equal(data.X, expected)
    assert data.X.dtype == np.float32 and data.y.tolist() == [r[0] for r in records]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file"),
        ("label,a\n", "no data rows"),
        ("label,a\n0,1\n1,2,3\n", "line 3: 3 fields"),
        ("label,a\n0,x\n", "line 2: column 'a' is not a number \\('x'\\)"),
        ("label,a,a\n0,1.5,x\n", "column 'a' is not a number \\('x'\\)"),
        ("label,a\n0," + "1" * 200_000 + "\n", "not a readable .csv file"),
        (b"label,a\n0,\xff\n", "not UTF-8 text"),
    ],
)
def test_bad_csv_files_are_named_with_the_line(tmp_path, text, message):
    path = tmp_path / "rows.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=message):
        load_dataset(path)


def _printed(out: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["file", "label", "probability"]
    assert all(len(row) == 3 for row in rows)
    return rows[1:]


def test_channel_last_images_in_an_npz_are_moved_to_channel_first(tmp_path):
    """(n, H, W, C), as np.asarray(PIL image) stacks, was read as H channels
    of W x C images; it is moved to (n, C, H, W), with a warning."""
    rng = np.random.default_rng(0)
    first = rng.random((6, 3, 8, 5)).astype(np.float32)  # (n, C, H, W)
    np.savez(tmp_path / "last.npz", X=first.transpose(0, 2, 3, 1), y=np.arange(6))
    np.savez(tmp_path / "first.npz", X=first, y=np.arange(6))
    with pytest.warns(UserWarning, match="read as channel-last images"):
        last = load_dataset(tmp_path / "last.npz")
    expected = load_dataset(tmp_path / "first.npz")
    assert last.input_shape == expected.input_shape == (3, 8, 5)
    np.testing.assert_array_equal(last.X, expected.X)


def test_embed_output_reads_back_as_data(table, tmp_path, capsys):
    root, _ = table
    features = tmp_path / "features.npz"
    argv = ["embed", str(root / "m.safetensors"), str(root / "rows.csv")]
    assert main([*argv, "--out", str(features)]) == 0
    data = load_dataset(features)  # its 'features' are the rows
    assert data.X.shape == (30, np.load(features)["features"].shape[1])


@pytest.mark.parametrize("query", ["query.npz", "query.csv", "rows.csv"])
def test_predict_on_table_rows_prints_proper_csv(table, capsys, query):
    root, expected = table
    argv = ["predict", str(root / "m.safetensors"), "--support", str(root / "rows.csv")]
    capsys.readouterr()
    assert main([*argv, "--query", str(root / query)]) == 0
    rows = _printed(capsys.readouterr().out)
    if query != "rows.csv":  # every 5th row: two of each class
        assert [row[1] for row in rows] == list(expected)
    assert {row[1] for row in rows} <= {"shoes, red", 'say "hi"', "plain"}
    assert all(0 < float(row[2]) <= 1 for row in rows)


def test_predict_refuses_images_for_a_table_model_truly(table, tmp_path, capsys):
    root, _ = table
    (tmp_path / "images").mkdir()
    argv = ["predict", str(root / "m.safetensors"), "--support", str(root / "rows.csv")]
    assert main([*argv, "--query", str(tmp_path / "images")]) == 2
    err = capsys.readouterr().err
    assert "not grey or colour images" in err and ".npz or .csv" in err
    np.savez(tmp_path / "wide.npz", X=np.zeros((2, 5), np.float32))
    assert main([*argv, "--query", str(tmp_path / "wide.npz")]) == 2
    assert "rows of 5 values; the model takes rows of 4" in capsys.readouterr().err


def test_predict_prints_file_names_and_labels_with_commas(tmp_path, capsys):
    from _cli_models import glyph_folder_and_model

    model = glyph_folder_and_model(tmp_path, max_iter=2)
    classes = sorted(p.name for p in (tmp_path / "data").iterdir())[:2]
    support, query = tmp_path / "support", tmp_path / "query"
    query.mkdir()
    for name, label in zip(classes, ["shoes, red", 'boots "b"'], strict=True):
        shutil.copytree(tmp_path / "data" / name, support / label)
        first = sorted((tmp_path / "data" / name).iterdir())[0]
        shutil.copy(first, query / f"photo, {label[:5]}.png")
    capsys.readouterr()
    argv = ["predict", str(model), "--support", str(support), "--query", str(query)]
    assert main(argv) == 0
    rows = _printed(capsys.readouterr().out)
    assert sorted(row[0] for row in rows) == ["photo, boots.png", "photo, shoes.png"]
    assert {row[1] for row in rows} <= {"shoes, red", 'boots "b"'}


@pytest.mark.parametrize("damage", ["cut", "empty", "flipped"])
def test_a_damaged_npz_file_is_refused_naming_it(tmp_path, damage):
    """A cut, empty or bit-flipped .npz raised zipfile.BadZipFile or EOFError
    (a traceback from the command); now a DataError naming the file."""
    path = tmp_path / "rows.npz"
    X = np.arange(18, dtype=np.float32).reshape(6, 3)
    np.savez(path, X=X, y=np.arange(6))
    data = bytearray(path.read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    else:  # a bit of X's values: the archive's CRC finds it
        data[data.find(X.tobytes()) + 5] ^= 4
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"rows\.npz: (not a readable|its array 'X')"):
        load_dataset(path)


def test_an_npz_array_declaring_more_than_it_holds_is_refused(tmp_path):
    """A header declaring 10**12 rows made NumPy allocate 14.6 TiB before
    reading (MemoryError); the declared size is checked against the bytes
    the archive holds for the array first."""
    import zipfile

    path = tmp_path / "rows.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 3)}
    )
    labels = io.BytesIO()
    np.save(labels, np.arange(6))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", header.getvalue() + bytes(72))
        archive.writestr("y.npy", labels.getvalue())
    with pytest.raises(ValueError, match=r"'X' declares shape \(1000000000000, 3\)"):
        load_dataset(path)


# -- embed --out .parquet -------------------------------------------------------------


def test_parquet_without_pyarrow_is_one_line_before_any_work(
    table, tmp_path, capsys, monkeypatch
):
    root, _ = table
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails
    out = tmp_path / "features.parquet"
    argv = ["embed", str(root / "m.safetensors"), str(root / "rows.csv")]
    assert main([*argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "skmeta[parquet]"' in err
    assert not out.exists()


def test_parquet_is_written_where_pyarrow_is_installed(table, tmp_path):
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    root, _ = table
    out = tmp_path / "features.parquet"
    argv = ["embed", str(root / "m.safetensors"), str(root / "rows.csv")]
    assert main([*argv, "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 30 and frame["label"][0] == "shoes, red"


def test_the_parquet_extra_installs_pyarrow():
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["parquet"]
    assert any(req.startswith("pyarrow") for req in extra)
    assert any(req.startswith("pandas") for req in extra)


# -- model files with a custom backbone ---------------------------------------


def test_info_describes_a_custom_backbone_model_without_its_module(tmp_path, capsys):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    path = tmp_path / "custom.safetensors"
    MetaModel.from_module(net, input_shape=(3, 2, 2)).save(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "torch.nn.modules.container.Sequential" in out
    assert "input shape:  (3, 2, 2)" in out and "embedding:    5 features" in out
    assert "MetaModel.load(path, backbone=" in out
    # the commands that need the network say what to do instead
    argv = ["predict", str(path), "--support", str(tmp_path), "--query", str(tmp_path)]
    assert main(argv) == 2
    assert "cannot rebuild it; use the Python API" in capsys.readouterr().err
    # a corrupt file is still refused
    data = bytearray(path.read_bytes())
    data[-3] ^= 1  # a weight
    path.write_bytes(bytes(data))
    assert main(["info", str(path)]) == 2
    assert "checksum does not match" in capsys.readouterr().err


def _resigned(path: Path, change) -> None:
    """Rewrite the model file at `path` with `change` applied to its JSON
    metadata, its checksum made anew (as anyone can)."""
    from safetensors.torch import load_file, safe_open
    from safetensors.torch import save as to_bytes

    from skmeta.meta.io_checks import checksum

    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads(handle.metadata()["skmeta"])
    change(metadata)
    metadata.pop("sha256")
    metadata["sha256"] = checksum(metadata, tensors)
    path.write_bytes(to_bytes(tensors, metadata={"skmeta": json.dumps(metadata)}))


def test_info_names_a_bad_record_of_a_custom_backbone_model(tmp_path, capsys):
    """Described from its metadata alone, a custom-backbone file's records
    are checked as MetaModel.load checks them (it said KeyError('mean'))."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    path = tmp_path / "custom.safetensors"
    MetaModel.from_module(net, input_shape=(3, 2, 2)).save(path)
    _resigned(path, lambda m: m["config"].update(evaluations=[{"task": "5-way"}]))
    assert main(["info", str(path)]) == 2
    assert "config['evaluations'][0]: An evaluation needs 'mean'" in (
        capsys.readouterr().err
    )


def test_info_and_errors_show_a_files_control_characters_escaped(tmp_path, capsys):
    """A file's strings could carry terminal escape sequences (retitle,
    clear, hide text): skmeta info and the command's errors escape them."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    path = tmp_path / "m.safetensors"
    MetaModel.from_module(net, input_shape=(3, 2, 2)).save(path)
    _resigned(path, lambda m: m["config"].update(provenance={"skmeta": "\x1b[2J"}))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "skmeta \\x1b[2J" in out
    assert main(["info", str(tmp_path / "\x1b[2J.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J.safetensors: no such model file" in err


def test_cli_guide_gives_the_readme_demo_time():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    guide = (root / "docs" / "user_guide" / "cli.rst").read_text()
    seconds = re.search(r"about (\d+) s in all", readme)
    if seconds is None:
        pytest.skip("the README no longer states the demo's time this way")
    assert f"about {seconds[1]} seconds" in guide


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_bad_csv_file_is_closed_while_its_error_is_held(tmp_path):
    import os

    path = tmp_path / "rows.csv"
    path.write_text("label,a\n0,1\n1,x\n")
    with pytest.raises(ValueError, match="line 3") as info:
        load_dataset(path)
    held = [os.readlink(f) for f in Path("/proc/self/fd").iterdir() if f.is_symlink()]
    assert info.value is not None and str(path) not in held


# -- evaluate --groups ----------------------------------------------------------


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    """12 classes of 4 rows in 3 families, each row by one of 4 sources, as
    .npz and .csv, and a model trained on the rows."""
    root = tmp_path_factory.mktemp("groups")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(12), 4)
    family, source = y // 4, np.tile(np.arange(4), 12)
    X = (rng.normal(size=(12, 4)) * 4)[y] + rng.normal(size=(48, 4))
    np.savez(root / "rows.npz", X=X, y=y, family=family, source=source)
    with open(root / "rows.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["family", "a", "b", "label", "c", "d", "source"])
        for row, label, fam, src in zip(X, y, family, source, strict=True):
            writer.writerow([fam, row[0], row[1], label, row[2], row[3], src])
    out = root / "m.safetensors"
    argv = ["train", str(root / "rows.npz"), "--out", str(out), "--quiet"]
    assert main([*argv, "--max-iter", "3", "--n-way", "3", "--seed", "0"]) == 0
    return root, X.astype(np.float32), y, family, source


@pytest.mark.parametrize("data", ["rows.npz", "rows.csv"])
def test_evaluate_draws_episodes_within_groups(families, capsys, data):
    from skmeta import FewShotClassifier, episodic_score

    root, X, y, family, source = families
    model = MetaModel.load(root / "m.safetensors")
    argv = ["evaluate", str(root / "m.safetensors"), str(root / data), "--json"]
    argv += ["--n-way", "3", "--k-shot", "1", "--n-query", "1", "--n-episodes", "20"]
    runs = [("family,source", np.c_[family, source])]
    if data.endswith(".npz"):  # a .csv file's source column is a feature
        runs.insert(0, ("family", family))  # unless named
    for names, groups in runs:
        assert main([*argv, "--groups", names]) == 0
        printed = json.loads(capsys.readouterr().out)
        expected = episodic_score(
            FewShotClassifier(pretrained=model), X, y, n_way=3, n_query=1,
            n_episodes=20, random_state=0, groups=groups,
        )  # fmt: skip
        assert printed["mean"] == pytest.approx(expected.mean)
        assert printed["task"].startswith("3-way 1-shot within family")
    assert "by two sources" in printed["task"]


def test_evaluate_groups_errors_name_the_flag(families, capsys):
    root = families[0]
    model = str(root / "m.safetensors")
    for data, names, message in (
        ("rows.npz", "family,source,family", "give one name, or two"),
        ("rows.npz", "genus", "no array 'genus' (--groups)"),
        ("rows.csv", "genus", "no column 'genus' (--groups)"),
        (".", "family", "groups are arrays of an .npz file or columns of a .csv"),
    ):
        assert main(["evaluate", model, str(root / data), "--groups", names]) == 2
        assert message in capsys.readouterr().err


def test_evaluate_warns_on_classes_the_model_meta_trained_on(families, tmp_path):
    """By name; numbers name nothing (each file may count its classes from 0)."""
    import warnings

    _, X, y, _, _ = families
    names = np.array([f"char{i}" for i in range(12)])
    files = {
        "old": (X[y < 6], names[y[y < 6]]),
        "all": (X, names[y]),
        "new": (X[y >= 6], names[y[y >= 6]]),
        "old_numbers": (X[y < 6], y[y < 6]),
        "renumbered": (X[y >= 6], y[y >= 6] - 6),  # 0..5 again, new classes
    }
    for name, (rows, labels) in files.items():
        np.savez(tmp_path / f"{name}.npz", X=rows, y=labels)

    def evaluate(model, data):
        model_file = tmp_path / f"{model}.safetensors"
        if not model_file.exists():
            train = ["train", str(tmp_path / f"{model}.npz"), "--out", str(model_file)]
            assert main([*train, "--quiet", "--max-iter", "2", "--n-way", "3"]) == 0
        argv = ["evaluate", str(model_file), str(tmp_path / f"{data}.npz")]
        return main([*argv, "--n-way", "3", "--n-query", "1", "--n-episodes", "5"])

    with pytest.warns(UserWarning, match=r"6 of the 12 classes .* meta-trained on"):
        assert evaluate("old", "all") == 0
    for model, data in (("old", "new"), ("old_numbers", "renumbered")):
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            assert evaluate(model, data) == 0


def test_csv_columns_are_matched_by_name(table, tmp_path, capsys):
    """skmeta train records a table's column names; the other commands order
    a table's columns by them (a reordered query gave other labels, exit 0)."""
    root, _ = table
    model = MetaModel.load(root / "m.safetensors")
    assert list(model.config["provenance"]["feature_names"]) == ["a", "b", "c", "d"]
    with open(root / "query.csv") as handle:
        records = list(csv.reader(handle))
    for name, order in (("same", [0, 1, 2, 3]), ("reversed", [3, 2, 1, 0])):
        with open(tmp_path / f"{name}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([[r[i] for i in order] for r in records])
    argv = ["predict", str(root / "m.safetensors"), "--support", str(root / "rows.csv")]
    printed = []
    for name in ("same", "reversed"):
        assert main([*argv, "--query", str(tmp_path / f"{name}.csv")]) == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1]
    with open(tmp_path / "renamed.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["a", "b", "c", "e"], *records[1:]])
    assert main([*argv, "--query", str(tmp_path / "renamed.csv")]) == 2
    err = capsys.readouterr().err
    assert "missing: ['d'], unknown: ['e']" in err
