"""The files: models (safetensors weights plus JSON metadata: config,
history, and a SHA-256 of both that loading checks, ``io_checks.py``) and
meta-training checkpoints (safetensors tensors plus JSON state, written
atomically).

Loading never executes code from a file: no pickle.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import torch

from .io_checks import check_model_file, checksum

if TYPE_CHECKING:
    from .model import MetaModel

__all__ = [
    "FORMAT_VERSION",
    "checkpoint_metadata",
    "frozen",
    "json_value",
    "load",
    "parse_json",
    "load_checkpoint",
    "save",
    "save_checkpoint",
    "thawed",
]

FORMAT_VERSION = 1
_METADATA_KEY = "skmeta"
CHECKPOINT_FORMAT_VERSION = 1
_CHECKPOINT_KEY = "skmeta_checkpoint"
_TENSOR = "__tensor__"  # {"__tensor__": name}: a tensor of the file, in the JSON


def save(model, path: str | os.PathLike[str]) -> None:
    """Write the model to a safetensors file (weights + JSON metadata).

    Loading it back never executes code from the file.
    """
    from safetensors.torch import save as to_bytes

    metadata = {
        "format_version": FORMAT_VERSION,
        "config": model.thawed_config(),
        "history": model.thawed_history(),
    }
    tensors = {k: v.contiguous() for k, v in model.state.items()}
    metadata["sha256"] = checksum(metadata, tensors)  # checked by load
    _write_atomically(
        Path(os.path.expanduser(path)),
        to_bytes(tensors, metadata={_METADATA_KEY: json.dumps(metadata)}),
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """`data` to `path` through a temporary file in the same folder, synced,
    then renamed over `path`: a process killed at any moment leaves the old
    file or the new one, whole. The temporary file's name is new to each call
    (``.<name>.<random>.tmp``, created exclusively), so concurrent writes never
    share one, and it is removed if writing or renaming fails. The file gets
    the permissions of any new file (``0o666`` less the umask; safetensors' own
    writer and ``tempfile.mkstemp`` make them ``0o600``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            descriptor = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:  # another writer's: draw another name
            continue
    try:
        with open(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:  # an interrupt too: leave nothing behind
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:  # the rename itself, where the system lets a folder be synced
        _fsync(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        pass


def load(path: str | os.PathLike[str], backbone: Callable | None = None) -> MetaModel:
    """Read a model written by :func:`save` (see ``MetaModel.load``)."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = Path(os.path.expanduser(path))
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = _read_tensors(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a valid skmeta model file (expected a safetensors "
            f"file written by MetaModel.save): {exc}"
        ) from None
    if _METADATA_KEY not in metadata:
        raise ValueError(
            f"{path} is a safetensors file but not a skmeta model (no "
            f"'{_METADATA_KEY}' metadata); write models with MetaModel.save."
        )
    try:
        data = parse_json(metadata[_METADATA_KEY])
    except ValueError as exc:
        raise ValueError(f"{path} has corrupt skmeta metadata: {exc}") from None
    check_model_file(str(path), data, state, backbone, FORMAT_VERSION)
    from .model import MetaModel

    try:
        return MetaModel(state, data["config"], data.get("history", ()), backbone)
    except (RuntimeError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path} is not a valid skmeta model file: {exc!r}") from exc


#: How deep a file's JSON may nest: skmeta writes 5 levels in a model file
#: (an evaluation's ``data``), 6 or so in a checkpoint; deeper JSON would
#: reach Python's recursion limit in the code that reads it (a
#: ``RecursionError``, not a ``ValueError``).
MAX_JSON_DEPTH = 32


def parse_json(text: str):
    """The value of the JSON `text` of a file's metadata.

    Raises
    ------
    ValueError
        If it is not JSON, or nests more than :data:`MAX_JSON_DEPTH` levels.
    """
    try:
        value = json.loads(text)
    except RecursionError:  # thousands of levels: the parser's own recursion
        value = None
        depth = MAX_JSON_DEPTH + 1
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    else:
        depth, level = 0, [value]
        while level and depth <= MAX_JSON_DEPTH:  # iteratively: no recursion
            depth += 1
            level = [
                item
                for v in level
                if isinstance(v, dict | list)
                for item in (v.values() if isinstance(v, dict) else v)
            ]
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"its JSON nests more than {MAX_JSON_DEPTH} levels deep")
    return value


def json_value(value):
    """``json.dumps``'s `default`: a NumPy scalar as the Python number it holds
    (``n_way=np.int64(5)`` is a valid setting); anything else is refused."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def frozen(value):
    """Read-only view of nested JSON-like data."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value


def thawed(value):
    """Plain dicts and lists again, from :func:`frozen` data."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thawed(v) for v in value]
    return value


# -- checkpoints ------------------------------------------------------------------


def save_checkpoint(path: str | Path, data: Mapping) -> None:
    """Write `data` (nested dicts and lists of JSON values and tensors) to a
    safetensors file, atomically: a temporary file in the same folder, synced
    to disk, then renamed over `path`. A process killed at any moment leaves
    the previous file or the new one, whole. A SHA-256 of the JSON and the
    tensors (``"sha256"``) lets :func:`load_checkpoint` find bytes damaged
    on disk, which would resume silently to other weights."""
    from safetensors.torch import save as to_bytes

    tensors: dict = {}
    metadata = {"format_version": CHECKPOINT_FORMAT_VERSION, **_pack(data, "", tensors)}
    metadata["sha256"] = checksum(metadata, tensors)
    _write_atomically(
        Path(path), to_bytes(tensors, metadata={_CHECKPOINT_KEY: json.dumps(metadata)})
    )


def checkpoint_metadata(path: str | Path) -> dict:
    """The JSON of a checkpoint written by :func:`save_checkpoint` (tensors
    as ``{"__tensor__": name}``), without reading its tensors.

    Raises
    ------
    ValueError
        If `path` is not such a checkpoint, or of another format version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        data = parse_json(metadata[_CHECKPOINT_KEY])
        version = data["format_version"]  # a TypeError unless an object
        if not isinstance(data.get("fingerprint", {}), dict):
            raise ValueError("its fingerprint is not a JSON object")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"checkpoint={str(path)!r} is not a skmeta checkpoint ({exc!r}). "
            "Delete it (or give another path) to meta-train afresh."
        ) from None
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint={str(path)!r} is of format {version}; this skmeta "
            f"reads format {CHECKPOINT_FORMAT_VERSION}."
        )
    return data


def load_checkpoint(path: str | Path) -> dict:
    """The data :func:`save_checkpoint` wrote, tensors on the CPU (its
    checksum checked when it has one: files written before had none)."""
    data = checkpoint_metadata(path)
    recorded = data.pop("sha256", None)
    try:
        tensors = _read_tensors(path)
        if recorded is not None and checksum(data, tensors) != recorded:
            raise ValueError("its checksum does not match: damaged bytes")
        return _unpack(data, tensors)
    except (KeyError, OSError, ValueError, TypeError) as exc:
        raise ValueError(
            f"checkpoint={str(path)!r} is corrupt: {exc!r}. Delete it (or give "
            "another path) to meta-train afresh."
        ) from None


#: Whether loaded tensors are copied out of the file's memory map: on Windows,
#: where a mapped file can be neither replaced nor removed.
COPY_OUT_OF_MAP = os.name == "nt"


def _read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file at `path`.

    ``safetensors.torch.load_file`` gives tensors that live in a memory map
    of the file, shared with the page cache (several processes serving one
    model hold one copy). On Windows (:data:`COPY_OUT_OF_MAP`) a mapped file
    can be neither replaced nor removed, so saving a model over the file it
    was loaded from (``skmeta evaluate --record``, ``model.save(path)`` after
    ``MetaModel.load(path)``) failed while the model lived: there, copies
    drop the map at once (one model-sized copy more in memory)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    if not COPY_OUT_OF_MAP:
        return tensors
    return {name: tensor.clone() for name, tensor in tensors.items()}


def _pack(value, name: str, tensors: dict):
    """`value` with each tensor moved to `tensors` (a CPU copy, so that none
    shares memory with another) and replaced by a reference to it."""
    if isinstance(value, torch.Tensor):
        tensors[name] = value.detach().to("cpu", copy=True).contiguous()
        return {_TENSOR: name}
    prefix = f"{name}/" if name else ""
    if isinstance(value, Mapping):
        return {str(k): _pack(v, f"{prefix}{k}", tensors) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_pack(v, f"{prefix}{i}", tensors) for i, v in enumerate(value)]
    return value


def _unpack(value, tensors: Mapping):
    if isinstance(value, dict):
        if set(value) == {_TENSOR}:
            return tensors[value[_TENSOR]]
        return {k: _unpack(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, tensors) for v in value]
    return value


def _fsync(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
