import subprocess
import sys
from pathlib import Path

import pytest

from skmeta.cli import main


def test_demo_quick_prints_a_table(capsys):
    assert main(["demo", "--quick", "--methods", "protonet"]) == 0
    out = capsys.readouterr().out
    assert "5-way 1-shot" in out and "20-way 1-shot" in out
    assert "protonet" in out and "raw pixels" in out
    assert "never seen in training" in out


def test_demo_bad_data_home_is_a_clean_error(tmp_path, capsys):
    assert main(["demo", "--quick", "--data-home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "error" in err and str(tmp_path) in err


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
