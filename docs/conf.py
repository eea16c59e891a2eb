"""Sphinx configuration of the skmeta documentation.

Build (warnings are errors, the gallery runs): ``docs/build.sh``, or
``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

import os
import re
import sys
from pathlib import Path

# OpenMP threads that spin at barriers make two torch processes on a small
# shared machine slow each other down 10x or more (docs/design.md, "CPU speed
# notes"); read when torch loads, so set before the gallery imports it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # the gallery draws off-screen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout, also when skmeta is not installed

import skmeta  # noqa: E402

project = "skmeta"
author = "The skmeta developers"
copyright = "The skmeta developers, BSD-3-Clause"
release = skmeta.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",  # docs/design.md, the developer notes, as it is
    "sphinx_design",  # the cards of the front page
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "**/*.py.md5", "build.sh"]
default_role = "py:obj"  # `name` in docstrings links when it can, silently if not

# -- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"  # the numpydoc sections say it all
numpydoc_show_class_members = False  # autosummary templates list them
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()  # tests/test_docstrings.py validates them

# -- Cross-links to other projects -------------------------------------------
# Intersphinx needs each project's objects.inv from the internet. The machine
# that builds these docs in CI has no internet (only package registries), so
# the links are made only when SKMETA_DOCS_ONLINE=1: CI checks the build
# offline, where references such as :class:`sklearn.pipeline.Pipeline` or
# :class:`torch.nn.Module` render as plain code and warn about nothing
# (nitpicky is off). A build for publishing sets SKMETA_DOCS_ONLINE=1; that
# configuration is not checked by CI.
if os.environ.get("SKMETA_DOCS_ONLINE") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }
else:
    intersphinx_mapping = {}


def _offline_foreign_refs(app, what, name, obj, options, lines):
    """Plain text for the cross-references of docstrings inherited from
    scikit-learn (``get_params``, ``set_output``, ``score``, ...) when building
    offline: their ``:ref:`` and ``:term:`` targets are labels of
    scikit-learn's own documentation, which only intersphinx can resolve.
    skmeta's own docstrings are left alone, so their broken references still
    fail the build."""
    if intersphinx_mapping:
        return
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    role = re.compile(r":(?:ref|term):`([^`<]*?)\s*(?:<([^>`]*)>)?`")
    for i, line in enumerate(lines):
        lines[i] = role.sub(lambda m: f"*{m.group(1).strip() or m.group(2)}*", line)


def setup(app):
    app.connect("autodoc-process-docstring", _offline_foreign_refs)


# -- Gallery -----------------------------------------------------------------
# Only examples/plot_*.py belong to the gallery and run at build time (small
# sizes, each well under a minute on 2 CPU cores); the other scripts in
# examples/ are run by tests/test_examples.py.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"^(?!plot_)",  # matched against the file name
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "reference_url": {"skmeta": None},
    "doc_module": ("skmeta",),
    "backreferences_dir": "generated/backreferences",
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 1,
}
if os.environ.get("SKMETA_DOCS_NO_GALLERY") == "1":  # quick builds while writing
    sphinx_gallery_conf["plot_gallery"] = "False"

# -- MyST (design.md) ----------------------------------------------------------
myst_heading_anchors = 3
# design.md links to files outside docs/ (../shared, ../skmeta/...); they are
# not pages of this site, so MyST's missing-reference check is off for them.
suppress_warnings = ["myst.xref_missing"]

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skmeta {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_static_path = []
html_show_sourcelink = False


# -- Command-line help, generated ---------------------------------------------
# user_guide/cli.rst includes the help of each command as the parser prints it,
# so the page cannot drift from the code (the flags' help is itself read from
# the estimators' docstrings).
def _write_cli_help() -> None:
    import argparse

    from skmeta import cli

    out = Path(__file__).parent / "_generated" / "cli"
    out.mkdir(parents=True, exist_ok=True)
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        parser = cli._parser()
        texts = {"skmeta": parser.format_help()}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    texts[name] = sub.format_help()
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    for name, text in texts.items():
        path = out / f"{name}.txt"
        if not path.exists() or path.read_text() != text:  # no needless rebuilds
            path.write_text(text)


_write_cli_help()
