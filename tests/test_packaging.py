"""One version, written in skmeta/_version.py; the PEP 561 marker ships."""

import importlib.metadata
import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import skmeta
from skmeta import _version

PACKAGE = Path(skmeta.__file__).resolve().parent
ROOT = PACKAGE.parent


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11")
    path = ROOT / "pyproject.toml"
    if not path.is_file():
        pytest.skip("not a source checkout")
    return tomllib.loads(path.read_text())


def _installed_from_here():
    """The installed skmeta distribution when it is this checkout (a regular
    or an editable install of it); None otherwise."""
    try:
        dist = importlib.metadata.distribution("skmeta")
    except importlib.metadata.PackageNotFoundError:
        return None
    installed = Path(dist.locate_file("skmeta/__init__.py")).resolve()
    if installed.parent == PACKAGE:
        return dist
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if url.startswith("file:") and Path(unquote(urlparse(url).path)) == ROOT:
        return dist
    return None


def test_pyproject_reads_the_version_from_the_package():
    project = _pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "skmeta._version.__version__"}
    assert skmeta.__version__ is _version.__version__


def test_version_is_the_installed_distributions():
    dist = _installed_from_here()
    if dist is None:
        pytest.skip("this checkout is not installed as a distribution")
    assert skmeta.__version__ == dist.version


def test_py_typed_marker_ships():
    assert (PACKAGE / "py.typed").is_file()
    package_data = _pyproject()["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["skmeta"]
