"""What the ``skmeta`` command writes, and the model files it reads.

Output paths are checked before any work (:func:`check_output_path`), so a
typo in ``--out`` costs no meta-training; predictions are printed as CSV by
the :mod:`csv` module, so labels and file names with commas or quotes stay one
field each; and :func:`describe_model_file` describes a model from its
metadata alone, a model whose backbone is a custom torch module included.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from ._cli_data import DataError

__all__ = [
    "check_output_path",
    "describe_model_file",
    "load_model",
    "write_predictions",
]

PYTHON_API = (
    "the command line cannot rebuild it; use the Python API: "
    "MetaModel.load(path, backbone=<the torch.nn.Module class>)"
)


def check_output_path(path, flag: str = "--out") -> None:
    """Refuse a file name that cannot be written, before any work is done:
    a folder, or a file whose folder is missing or not writable.

    Raises
    ------
    DataError
        Naming `flag`, the path and the fix.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{flag} {path}: is a folder; give a file name in it.")
    folder = path.parent
    if not folder.exists():
        raise DataError(
            f"{flag} {path}: the folder {folder} does not exist; create it first."
        )
    if not folder.is_dir():
        raise DataError(f"{flag} {path}: {folder} is not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"{flag} {path}: the folder {folder} is not writable.")


def write_predictions(names, labels, probabilities, stream=None, name=None) -> None:
    """Print ``file,label,probability`` CSV (one row per query) to `stream`
    (stdout by default), quoting fields as the :mod:`csv` module does.

    Parameters
    ----------
    names, labels : sequence of length n_queries
        Each query's file name (or row number) and label.
    probabilities : sequence of float or None, of length n_queries
        The probability of each query's label; None leaves the field empty,
        for a query labelled ``--unknown-label``: it has no probability of
        its own, and that of its rejected best class would read as certainty
        that it is unknown.
    stream : file-like, optional
        Where to print; stdout by default.
    name : str, optional
        The first column's name: the ``--id-column`` that `names` are from
        (default ``file``).
    """
    if stream is None:
        with _utf8_unless_terminal(sys.stdout) as out:
            write_predictions(names, labels, probabilities, out, name)
        return
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([name or "file", "label", "probability"])
    for name, label, p in zip(names, labels, probabilities, strict=True):
        writer.writerow([name, label, "" if p is None else f"{p:.4f}"])


@contextlib.contextmanager
def _utf8_unless_terminal(stream):
    """`stream` (stdout), or a UTF-8 writer onto its bytes when it goes to a
    file or a pipe in another encoding, as skmeta's other text files are
    written and its CSV reader reads them: in the locale's code page
    (Windows' cp1252, the C locale's ASCII) a non-ASCII label failed, or was
    written in an encoding skmeta cannot read back. A terminal keeps the
    encoding it displays; `stream` itself is left as it was (no
    ``reconfigure``: a caller of :func:`skmeta.cli.main` keeps its stdout)."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
    raw = getattr(stream, "buffer", None)
    if encoding == "utf8" or raw is None or stream.isatty():
        yield stream
        return
    stream.flush()  # what was printed before comes first
    out = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
    try:
        yield out
    finally:
        out.flush()
        out.detach()  # the bytes stream stays open, stdout's


def _metadata(path: Path):
    """The JSON metadata of a model file; None where it cannot be read (then
    ``MetaModel.load`` says why)."""
    from safetensors import SafetensorError, safe_open

    from .meta.io import _METADATA_KEY, parse_json

    try:
        with safe_open(str(path), framework="pt") as handle:
            text = (handle.metadata() or {})[_METADATA_KEY]
        return parse_json(text)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError):
        return None


def _is_custom(data) -> bool:
    config = data.get("config") if isinstance(data, dict) else None
    return isinstance(config, dict) and config.get("backbone") == "custom"


def load_model(path):
    """The model in file `path`, or a :class:`DataError` naming the file (a
    model whose backbone is a custom module is refused: see `PYTHON_API`)."""
    from .meta.model import MetaModel

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file.")
    data = _metadata(path)
    if _is_custom(data):
        name = data["config"].get("backbone_name", "custom")
        raise DataError(
            f"{path}: the model's backbone is a custom module ({name}); {PYTHON_API}."
        )
    try:
        return MetaModel.load(path)
    except ValueError as exc:  # the file named once
        raise DataError(
            str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        ) from None


def describe_model_file(path) -> str:
    """The text of ``skmeta info``: :func:`~skmeta.meta.provenance.summary` of
    the model in file `path`. A model with a custom backbone is described from
    its metadata, its checksum checked, without building its network."""
    from .meta.provenance import summary

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such model file.")
    data = _metadata(path)
    if not _is_custom(data):
        return summary(load_model(path), path)
    _check_checksum(path, data)
    config = data["config"]
    _check_records(path, config, data.get("history") or [])
    try:
        view = SimpleNamespace(
            config=config,
            method=str(config["method"]),
            input_shape=tuple(int(s) for s in config["input_shape"]),
            embedding_dim=int(config["embedding_dim"]),
            history=tuple(data.get("history") or ()),
        )
        text = summary(view, path)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(f"{path} is not a valid skmeta model file: {exc!r}") from None
    return f"{text}\nnote:         a custom backbone: {PYTHON_API}"


def _check_records(path: Path, config: dict, history) -> None:
    """Refuse records the summary reads of the wrong JSON types (as
    ``MetaModel.load`` does: :func:`~skmeta.meta.record_checks.check_records`)."""
    from .meta.record_checks import check_records

    def fail(problem: str):
        raise DataError(f"{path} is not a valid skmeta model file: {problem}.")

    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        fail("history is not a list of JSON objects")
    check_records(config, history, fail)


def _check_checksum(path: Path, data: dict) -> None:
    """Refuse a file of a newer format, or whose weights or JSON do not match
    its checksum (as ``MetaModel.load`` does)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .meta.io import FORMAT_VERSION
    from .meta.io_checks import checksum

    version = data.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise DataError(
            f"{path} was written by a newer skmeta (format {version}); upgrade "
            "skmeta to read it."
        )
    expected = data.get("sha256")
    if expected is None:
        return
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path} is not a valid skmeta model file: {exc}") from None
    if expected != checksum({k: v for k, v in data.items() if k != "sha256"}, state):
        raise DataError(
            f"{path} is not a valid skmeta model file: its checksum does not "
            "match (the file is corrupt)."
        )
