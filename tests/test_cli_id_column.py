"""--id-column in train and evaluate, as in predict and embed: a table's
column (an .npz file's array) of the rows' names, never a feature, so that
one table goes through train, evaluate and predict with the same flag."""

import numpy as np
import pytest

from skmeta.cli import main
from skmeta.meta.model import MetaModel


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """4 classes of 10 rows: customer_id (numbers), features a-d and label
    as rows.csv; the same as rows.npz (X, y, customer_id)."""
    root = tmp_path_factory.mktemp("id_column")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    X = (rng.normal(size=(40, 4)) + 6 * y[:, None]).round(4)
    ids = np.arange(1000, 1040)
    rows = [
        ",".join(map(str, [i, *row, label]))
        for i, row, label in zip(ids, X, y, strict=True)
    ]
    text = "customer_id,a,b,c,d,label\n" + "\n".join(rows) + "\n"
    (root / "rows.csv").write_text(text)
    np.savez(root / "rows.npz", X=X, y=y, customer_id=ids)
    return root


def _run(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def _train(table, out, *flags):
    argv = ["train", table / "rows.csv", "--out", out, "--quiet"]
    return [*argv, "--max-iter", "2", "--n-way", "2", "--seed", "0", *flags]


def _names(model) -> list:
    return list(MetaModel.load(model).config["provenance"]["feature_names"])


def test_a_table_goes_through_train_evaluate_predict_with_its_id_column(
    table, tmp_path, capsys
):
    """Without the flag, train meta-trained on the ids (numbers) as a
    feature; evaluate had no --id-column at all."""
    model, flag = tmp_path / "m.safetensors", ["--id-column", "customer_id"]
    assert _run(capsys, *_train(table, model))[0] == 0
    assert _names(model) == ["customer_id", "a", "b", "c", "d"]  # the trap
    assert _run(capsys, *_train(table, model, *flag))[0] == 0
    assert _names(model) == ["a", "b", "c", "d"]
    evaluate = ["evaluate", model, table / "rows.csv", "--n-way", "2"]
    evaluate += ["--n-query", "3", "--n-episodes", "4", "--json"]
    status, out, err = _run(capsys, *evaluate, *flag)
    assert status == 0, err
    scored = out
    status, out, err = _run(capsys, *evaluate)  # train's column, recorded
    assert status == 0 and out == scored, err
    # an .npz file's array, as predict and embed take it
    npz = ["evaluate", model, table / "rows.npz", *evaluate[3:]]
    status, out, err = _run(capsys, *npz, *flag)
    assert status == 0 and out == scored, err
    predict = ["predict", model, "--support", table / "rows.csv"]
    status, out, err = _run(capsys, *predict, "--query", table / "rows.csv", *flag)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "customer_id,label,probability"
    assert [line.split(",")[0] for line in lines[1:]] == [
        str(i) for i in range(1000, 1040)
    ]


def test_train_on_an_npz_file_checks_its_id_array(table, tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    argv = _train(table, model, "--id-column", "customer_id")
    argv[1] = table / "rows.npz"
    assert _run(capsys, *argv)[0] == 0
    argv[-1] = "cid"
    status, _, err = _run(capsys, *argv)
    assert status == 2 and "rows.npz: no array 'cid' (--id-column)." in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--id-column", "cid"], "rows.csv: no column 'cid' (--id-column); its"),
        (["--id-column", "label"], "--id-column label: it is the label column"),
    ],
)
def test_train_refuses_a_bad_id_column(table, tmp_path, capsys, flags, message):
    model = tmp_path / "m.safetensors"
    status, _, err = _run(capsys, *_train(table, model, *flags))
    assert status == 2 and message in err
    assert not model.exists()


def test_an_id_column_is_not_a_folder_nor_a_group(table, tmp_path, capsys):
    (tmp_path / "images" / "a").mkdir(parents=True)
    argv = ["train", tmp_path / "images", "--out", tmp_path / "m.safetensors"]
    status, _, err = _run(capsys, *argv, "--id-column", "cid")
    assert status == 2 and "is a folder of images, named by their files" in err
    model = tmp_path / "m.safetensors"
    assert _run(capsys, *_train(table, model, "--id-column", "customer_id"))[0] == 0
    evaluate = ["evaluate", model, table / "rows.csv", "--groups", "customer_id"]
    status, _, err = _run(capsys, *evaluate, "--id-column", "customer_id")
    assert status == 2
    assert "--id-column customer_id: it is a column of groups (--groups)" in err


def test_pandas_index_may_be_the_id_column(table, tmp_path, capsys):
    """The refusal of 'Unnamed: 0' (pandas' index) names --id-column, which
    now takes it in every command."""
    lines = (table / "rows.csv").read_text().splitlines()
    text = "\n".join(["Unnamed: 0" + lines[0][len("customer_id") :], *lines[1:]])
    (tmp_path / "index.csv").write_text(text + "\n")
    model = tmp_path / "m.safetensors"
    argv = _train(table, model)
    argv[1] = tmp_path / "index.csv"
    status, _, err = _run(capsys, *argv)
    assert status == 2 and "or give its name to --id-column 'Unnamed: 0'" in err
    assert _run(capsys, *argv, "--id-column", "Unnamed: 0")[0] == 0
    assert _names(model) == ["a", "b", "c", "d"]
    evaluate = ["evaluate", model, tmp_path / "index.csv", "--n-way", "2"]
    evaluate += ["--n-query", "3", "--n-episodes", "2"]
    assert _run(capsys, *evaluate, "--id-column", "Unnamed: 0")[0] == 0


@pytest.mark.parametrize(
    ("name", "values", "warned"),
    [
        ("customer_id", np.arange(1000, 1040)[::-1], True),  # an id's name
        ("row", np.arange(40), True),  # consecutive: a row number
        ("row", np.arange(40) * 3, False),  # distinct, neither
        ("customer_id", np.arange(40) % 4, False),  # repeated: a code, not ids
        ("customer_id", np.arange(40) + 0.5, False),  # not whole numbers
    ],
)
def test_train_warns_of_a_column_of_row_ids(tmp_path, capsys, name, values, warned):
    """Without --id-column, train meta-trained on a column of ids in
    silence; it now names the column and the flag."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    X = (rng.normal(size=(40, 2)) + 6 * y[:, None]).round(4)
    rows = [
        ",".join(map(str, [v, *row, label]))
        for v, row, label in zip(values, X, y, strict=True)
    ]
    (tmp_path / "t.csv").write_text(f"{name},a,b,label\n" + "\n".join(rows) + "\n")
    argv = [str(a) for a in _train(tmp_path, tmp_path / "m.safetensors")]
    argv[1] = str(tmp_path / "t.csv")
    capsys.readouterr()
    assert main(argv, console=True) == 0  # warnings as the command's lines
    err = capsys.readouterr().err
    assert (f"Give --id-column {name} to keep it out" in err) == warned, err
    if warned:
        assert main([*argv, "--id-column", name], console=True) == 0
        assert "--id-column" not in capsys.readouterr().err


def test_train_records_its_id_column_for_the_other_commands(table, tmp_path, capsys):
    """Without the flag, evaluate, predict and embed refused the table whose
    id column train had been told of ("unknown: ['customer_id']")."""
    model, flag = tmp_path / "m.safetensors", ["--id-column", "customer_id"]
    assert _run(capsys, *_train(table, model, *flag))[0] == 0
    assert MetaModel.load(model).config["provenance"]["id_column"] == "customer_id"
    status, out, _ = _run(capsys, "info", model)
    assert "row names:    column 'customer_id' (not a feature)" in out
    predict = ["predict", model, "--support", table / "rows.csv"]
    predict += ["--query", table / "rows.csv"]
    status, given, err = _run(capsys, *predict, *flag)
    assert status == 0, err
    status, recorded, err = _run(capsys, *predict)
    assert status == 0 and recorded == given, err
    assert recorded.splitlines()[1].startswith("1000,")
    for out in ("given.csv", "recorded.csv"):
        embed = ["embed", model, table / "rows.csv", "--out", tmp_path / out]
        status, _, err = _run(capsys, *embed, *(flag if out == "given.csv" else ()))
        assert status == 0, err
    given = (tmp_path / "given.csv").read_text()
    assert given == (tmp_path / "recorded.csv").read_text()
    assert given.startswith("customer_id,label,metafeatureextractor0,")
    untold = tmp_path / "untold.safetensors"  # trained on the ids as a feature
    assert _run(capsys, *_train(table, untold))[0] == 0
    assert "id_column" not in MetaModel.load(untold).config["provenance"]
    status, out, _ = _run(capsys, "predict", untold, *predict[2:])
    assert status == 0 and out.splitlines()[1].startswith("0,")  # row numbers


def test_a_recorded_id_column_named_as_the_label_column_is_the_label(
    table, tmp_path, capsys
):
    model = tmp_path / "m.safetensors"
    assert _run(capsys, *_train(table, model, "--id-column", "customer_id"))[0] == 0
    evaluate = ["evaluate", model, table / "rows.csv", "--n-way", "2"]
    evaluate += ["--n-query", "3", "--n-episodes", "2"]
    status, _, err = _run(capsys, *evaluate, "--label-column", "customer_id")
    assert status == 2 and "unknown: ['label']" in err  # not left out: labels


def test_embed_refuses_names_for_a_npy_file_before_reading(table, tmp_path, capsys):
    """The names were dropped in silence: a .npy file holds the matrix."""
    model = tmp_path / "m.safetensors"
    assert _run(capsys, *_train(table, model))[0] == 0
    out = tmp_path / "features.npy"
    embed = ["embed", model, tmp_path / "absent.csv", "--out", out]
    status, _, err = _run(capsys, *embed, "--id-column", "customer_id")
    assert status == 2 and not out.exists()
    assert "a .npy file holds the features alone, not the rows' names" in err
    assert "(--id-column customer_id); use a .npz, .csv or .parquet" in err
