"""The version of skmeta, written only here: ``pyproject.toml`` reads it
(``[tool.setuptools.dynamic]``) and ``skmeta.__version__`` imports it."""

__version__ = "0.1.0.dev0"
