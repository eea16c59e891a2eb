"""The examples run (in their quick mode: tiny data, a few iterations)."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["few_shot_glyphs.py", "grid_search_inner_loop.py"])
def test_example_runs(name, monkeypatch, capsys):
    monkeypatch.setenv("SKMETA_EXAMPLE_QUICK", "1")
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert capsys.readouterr().out.strip()


@pytest.mark.slow
def test_tabular_example_runs(capsys):
    runpy.run_path(str(EXAMPLES / "tabular_new_classes.py"), run_name="__main__")
    assert "meta-learnt" in capsys.readouterr().out
