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
