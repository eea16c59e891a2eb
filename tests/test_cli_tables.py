"""Feature tables as a data scientist has them (pandas' CSV files): missing
values, index columns, identifier columns, unlabelled rows to embed."""

import numpy as np
import pytest

from skmeta._cli_data import load_dataset, load_unlabelled
from skmeta.cli import main

IMPUTE = "impute the table first \\(e.g. sklearn.impute.SimpleImputer\\)"


def _write(path, text: str):
    path.write_text(text)
    return path


# -- missing values ----------------------------------------------------------------


@pytest.mark.parametrize("cell", ["", "NA", "nan", "NaN", "-nan", " n/a ", "NULL"])
def test_a_missing_value_is_named_the_same_way_however_written(tmp_path, cell):
    """An empty cell or NA was 'not a number; name it with --label-column';
    nan parsed, and scikit-learn's message came later, naming no file."""
    path = _write(tmp_path / "rows.csv", f"label,a,b\n0,1,2\n1,3,{cell}\n")
    message = f"rows.csv, line 3: missing value in column 'b'; {IMPUTE}"
    with pytest.raises(ValueError, match=message):
        load_dataset(path)
    with pytest.raises(ValueError, match=message):  # rows to label too
        load_unlabelled(path, (2,))


def test_text_is_still_not_a_number(tmp_path):
    path = _write(tmp_path / "rows.csv", "label,a,b\n0,1,C17\n")
    with pytest.raises(ValueError, match="column 'b' is not a number \\('C17'\\)"):
        load_dataset(path)
    with pytest.raises(ValueError, match="--label-column, --id-column or --groups"):
        load_dataset(path)


@pytest.mark.parametrize(
    "cell, message",
    [
        ("inf", "line 3: infinite value \\(inf\\) in column 'b'"),
        ("-Infinity", "line 3: infinite value \\(-inf\\) in column 'b'"),
        ("1e39", "line 3: value 1e\\+39 in column 'b' is beyond float32's range"),
    ],
)
def test_a_number_that_is_not_a_finite_float32_is_refused(tmp_path, cell, message):
    path = _write(tmp_path / "rows.csv", f"label,a,b\n0,1,2\n1,3,{cell}\n")
    with pytest.raises(ValueError, match=message):
        load_dataset(path)


@pytest.mark.parametrize("block", [1, 2, 4096])
def test_the_first_bad_line_is_named_whatever_the_block(tmp_path, monkeypatch, block):
    """nan is found when a block is converted, text at once: the earlier
    line is still the one named."""
    import skmeta._cli_tables as cli_tables

    monkeypatch.setattr(cli_tables, "_CSV_BLOCK", block)
    text = "label,a,b\n0,1,2\n0,1,2\n1,nan,2\n1,3,NA\n1,3,x\n"
    with pytest.raises(ValueError, match="line 4: missing value in column 'a'"):
        load_dataset(_write(tmp_path / "rows.csv", text))


def test_missing_values_of_an_npz_file_are_named(tmp_path):
    X = np.ones((5, 3))
    X[3, 1] = np.nan
    np.savez(tmp_path / "rows.npz", X=X, y=np.arange(5))
    with pytest.raises(ValueError, match="row 3 of X: missing value in column 1"):
        load_dataset(tmp_path / "rows.npz")
    X[3, 1] = 1e300  # float64 rows are read as float32
    np.savez(tmp_path / "rows.npz", X=X, y=np.arange(5))
    with pytest.raises(ValueError, match="beyond float32's range"):
        load_dataset(tmp_path / "rows.npz")


def test_a_missing_value_exits_2_naming_the_file(tmp_path, capsys):
    path = _write(tmp_path / "rows.csv", "label,a\n0,1\n0,2\n1,nan\n1,4\n")
    assert main(["train", str(path), "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "rows.csv, line 4: missing value in column 'a'" in err
    assert not (tmp_path / "m.safetensors").exists()


# -- pandas' index column ------------------------------------------------------------


@pytest.mark.parametrize(
    "header, shown",
    [
        (
            ",a,b,label",
            "column 1 of the header has no name, as pandas writes its index",
        ),
        ("Unnamed: 0,a,b,label", "column 1 of the header is 'Unnamed: 0', pandas'"),
        ("a, ,b,label", "column 2 of the header has no name"),
    ],
)
def test_a_column_without_a_name_is_refused(tmp_path, capsys, header, shown):
    """df.to_csv(path) writes the index under an empty name: train used the
    row number as a feature, and a table written with index=False then
    failed with "missing: ['']"."""
    path = _write(tmp_path / "rows.csv", f"{header}\n0,1,2,x\n1,3,4,y\n")
    with pytest.raises(ValueError, match=shown):
        load_dataset(path)
    with pytest.raises(ValueError, match="df.to_csv\\(..., index=False\\)"):
        load_unlabelled(path, (2,))
    assert main(["train", str(path), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "rows.csv: column" in capsys.readouterr().err


def test_a_column_named_by_a_flag_may_be_unnamed(tmp_path):
    path = _write(tmp_path / "rows.csv", "Unnamed: 0,a,b\nx,1,2\ny,3,4\n")
    data = load_dataset(path, label_column="Unnamed: 0")
    assert data.columns == ["a", "b"] and data.y.tolist() == ["x", "y"]


def test_a_pandas_frame_written_with_its_index_is_refused(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "label": ["x", "y"]})
    frame.to_csv(tmp_path / "rows.csv")  # index=True, pandas' default
    with pytest.raises(ValueError, match="index=False"):
        load_dataset(tmp_path / "rows.csv")
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert load_dataset(tmp_path / "rows.csv").columns == ["a", "b"]


# -- embed and predict on unlabelled tables -----------------------------------------


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """3 classes of 10 rows of features a-d as rows.csv (label column) and a
    model trained on it; the rows without labels as query.csv and query.npz."""
    root = tmp_path_factory.mktemp("cli_tables")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    X = (rng.normal(size=(30, 4)) + 6 * y[:, None]).round(4)
    rows = [",".join(map(str, [*row, label])) for row, label in zip(X, y, strict=True)]
    _write(root / "rows.csv", "a,b,c,d,label\n" + "\n".join(rows) + "\n")
    query = [",".join(map(str, row)) for row in X]
    _write(root / "query.csv", "a,b,c,d\n" + "\n".join(query) + "\n")
    np.savez(root / "query.npz", X=X.astype(np.float32))
    argv = ["train", str(root / "rows.csv"), "--out", str(root / "m.safetensors")]
    assert main([*argv, "--quiet", "--max-iter", "2", "--n-way", "2"]) == 0
    return root


def _embedded(table, data, out, *flags):
    argv = ["embed", str(table / "m.safetensors"), str(table / data)]
    return main([*argv, "--out", str(out), *flags])


@pytest.mark.parametrize("data", ["query.csv", "query.npz"])
def test_embed_takes_a_table_without_labels(table, tmp_path, data):
    """It refused a .csv without a label column (an .npz without y): only
    flat image folders were read without labels."""
    assert _embedded(table, data, tmp_path / "e.csv") == 0
    lines = (tmp_path / "e.csv").read_text().splitlines()
    assert len(lines) == 31 and lines[0].split(",")[0] == "name"
    assert "label" not in lines[0] and lines[1].startswith("0,")
    assert _embedded(table, data, tmp_path / "e.npz") == 0
    assert sorted(np.load(tmp_path / "e.npz").files) == ["features", "names"]
    # labelled rows embed as before, with their labels
    assert _embedded(table, "rows.csv", tmp_path / "e.csv") == 0
    assert (tmp_path / "e.csv").read_text().startswith("name,label,")


def test_embed_refuses_a_label_column_given_and_absent(table, tmp_path, capsys):
    assert _embedded(table, "query.csv", tmp_path / "e.csv", "--label-column", "y") == 2
    assert "query.csv: no column 'y' (--label-column)" in capsys.readouterr().err
    assert not (tmp_path / "e.csv").exists()


# -- identifier columns --------------------------------------------------------------


def _predicted(table, capsys, query, *flags, support="rows.csv"):
    argv = ["predict", str(table / "m.safetensors"), "--support", str(table / support)]
    capsys.readouterr()
    status = main([*argv, "--query", str(query), *flags])
    return status, capsys.readouterr()


def _with_ids(table, tmp_path, ids, source="query.csv", name="customer_id"):
    """`source` with a first column `name` of `ids`."""
    lines = (table / source).read_text().splitlines()
    rows = [f"{name},{lines[0]}"]
    rows += [f"{i},{line}" for i, line in zip(ids, lines[1:], strict=True)]
    return _write(tmp_path / f"ids_{source}", "\n".join(rows) + "\n")


def test_an_extra_column_of_a_query_is_named(table, tmp_path, capsys):
    """The width was checked first: "rows of 5 values; the model takes 4"."""
    query = _with_ids(table, tmp_path, range(1000, 1030))
    status, out = _predicted(table, capsys, query)
    assert status == 2
    assert "missing: [], unknown: ['customer_id']; name a column" in out.err
    assert "--id-column" in out.err and "rows of 5 values" not in out.err


@pytest.mark.parametrize("ids", [[f"C{i}" for i in range(30)], range(1000, 1030)])
def test_predict_names_rows_by_an_id_column(table, tmp_path, capsys, ids):
    status, plain = _predicted(table, capsys, table / "query.csv")
    assert status == 0
    query = _with_ids(table, tmp_path, ids)
    status, out = _predicted(table, capsys, query, "--id-column", "customer_id")
    assert status == 0
    lines = out.out.splitlines()
    assert lines[0] == "customer_id,label,probability"
    assert [line.split(",")[0] for line in lines[1:]] == [str(i) for i in ids]
    expected = [line.split(",", 1)[1] for line in plain.out.splitlines()[1:]]
    assert [line.split(",", 1)[1] for line in lines[1:]] == expected
    # a support set with the column leaves it out of the features too
    _with_ids(table, tmp_path, ids, source="rows.csv")
    support = str(tmp_path / "ids_rows.csv")
    status, out = _predicted(
        table, capsys, query, "--id-column", "customer_id", support=support
    )
    assert status == 0 and out.out.splitlines() == lines


def test_embed_names_rows_by_an_id_column(table, tmp_path):
    ids = [f"C{i}" for i in range(30)]
    query = _with_ids(table, tmp_path, ids)
    for suffix in (".csv", ".npz"):
        out = tmp_path / f"e{suffix}"
        assert _embedded(table, query, out, "--id-column", "customer_id") == 0
    lines = (tmp_path / "e.csv").read_text().splitlines()
    assert lines[0].startswith("customer_id,") and "label" not in lines[0]
    assert [line.split(",")[0] for line in lines[1:]] == ids
    assert np.load(tmp_path / "e.npz")["names"].tolist() == ids
    np.savez(tmp_path / "ids.npz", X=np.load(table / "query.npz")["X"], cid=ids)
    assert _embedded(table, tmp_path / "ids.npz", out, "--id-column", "cid") == 0
    assert np.load(out)["names"].tolist() == ids


def test_a_bad_id_column_is_refused(table, tmp_path, capsys):
    model = str(table / "m.safetensors")
    for data, name, message in (
        ("query.csv", "cid", "query.csv: no column 'cid' (--id-column); its"),
        ("query.npz", "cid", "query.npz: no array 'cid' (--id-column)."),
        ("rows.csv", "label", "--id-column label: it is the label column"),
        (".", "cid", "is a folder of images, named by their files"),
    ):
        argv = ["embed", model, str(table / data), "--out", str(tmp_path / "e.csv")]
        assert main([*argv, "--id-column", name]) == 2
        assert message in capsys.readouterr().err
    status, out = _predicted(table, capsys, table / "query.csv", "--id-column", "x")
    assert status == 2 and "no column 'x' (--id-column)" in out.err


def test_embedded_columns_are_named_as_in_python(table, tmp_path):
    """The CLI wrote f0..f63; Python names them metafeatureextractor0..63."""
    pd = pytest.importorskip("pandas")
    from skmeta import MetaFeatureExtractor
    from skmeta.meta.model import MetaModel

    assert _embedded(table, "query.csv", tmp_path / "e.csv") == 0
    written = pd.read_csv(tmp_path / "e.csv")
    rows = pd.read_csv(table / "query.csv")
    extractor = MetaFeatureExtractor(pretrained=MetaModel.load(table / "m.safetensors"))
    frame = extractor.set_output(transform="pandas").fit_transform(rows)
    assert list(written.columns) == ["name", *frame.columns]
    assert frame.columns[0] == "metafeatureextractor0"
    np.testing.assert_allclose(written[frame.columns], frame, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "sep, words", [(";", "semicolons"), ("\t", "tabs"), ("|", "'\\|'")]
)
def test_a_file_separated_otherwise_is_named_so(tmp_path, sep, words):
    """A European Excel file (';' and decimal commas) failed with 'line 2:
    197 fields, the header has 1' (reviewer)."""
    text = sep.join(["label", "a", "b"]) + "\n" + sep.join(["0", "1,5", "2,25"])
    path = _write(tmp_path / "rows.csv", text + "\n")
    with pytest.raises(ValueError, match=f"rows.csv: .*looks separated by {words}"):
        load_dataset(path)
    with pytest.raises(ValueError, match="df.to_csv\\(path, index=False\\)"):
        load_unlabelled(path, (2,))
    # a one-column table is a table still
    one = _write(tmp_path / "one.csv", "a\n1\n2\n")
    assert load_unlabelled(one, (1,)).X.tolist() == [[1.0], [2.0]]
