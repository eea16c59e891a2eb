"""The model file: safetensors weights plus JSON metadata (config, history).

Loading never executes code from the file: no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

__all__ = ["FORMAT_VERSION", "frozen", "load", "save", "thawed"]

FORMAT_VERSION = 1
_METADATA_KEY = "skmeta"


def save(model, path: str | Path) -> None:
    """Write the model to a safetensors file (weights + JSON metadata).

    Loading it back never executes code from the file.
    """
    from safetensors.torch import save_file

    metadata = {
        "format_version": FORMAT_VERSION,
        "config": model.thawed_config(),
        "history": model.thawed_history(),
    }
    tensors = {k: v.contiguous() for k, v in model.state.items()}
    save_file(tensors, str(path), metadata={_METADATA_KEY: json.dumps(metadata)})


def load(path: str | Path, backbone: Callable | None = None):
    """Read a model written by :func:`save` (see ``MetaModel.load``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
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
        data = json.loads(metadata[_METADATA_KEY])
        version, config = data["format_version"], data["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} has corrupt skmeta metadata: {exc!r}") from None
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by a newer skmeta (format {version}); "
            "upgrade skmeta to read it."
        )
    if config["backbone"] != "custom" and backbone is not None:
        raise ValueError(
            f"{path} uses the built-in backbone {config['backbone']!r}; "
            "do not pass backbone=."
        )
    from .model import MetaModel

    return MetaModel(state, config, data.get("history", ()), backbone=backbone)


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
