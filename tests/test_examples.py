"""The examples run (in their quick mode: tiny data, a few iterations)."""

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_example_runs(monkeypatch, capsys):
    monkeypatch.setenv("SKMETA_EXAMPLE_QUICK", "1")
    runpy.run_path(str(EXAMPLES / "few_shot_glyphs.py"), run_name="__main__")
    assert capsys.readouterr().out.strip()


# The gallery (examples/plot_*.py) runs when the documentation is built
# (docs/build.sh, CI's last stage).
