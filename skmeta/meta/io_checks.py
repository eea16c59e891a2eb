"""Checks of a model file's contents before anything is built from them.

A model file is safetensors tensors plus JSON (:mod:`.io`); neither can run
code, but either can be corrupt or made up. :func:`check_model_file` refuses,
with ``ValueError``, metadata of the wrong types, a checksum that does not
match (a flipped bit anywhere in the weights or the JSON), and weights whose
names, shapes or dtypes differ from those of the network the config
describes. The network is first built on torch's ``"meta"`` device, which
holds shapes and no values, so a config with absurd sizes costs no memory.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from numbers import Integral

import torch

from .record_checks import check_records
from .setting_checks import finite_number
from .target_scaling import check_target_scaling

__all__ = ["check_model_file", "checksum"]


def checksum(metadata: Mapping, tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a model's JSON metadata (keys sorted) and its tensors (names,
    dtypes, shapes and bytes, in name order), as hex."""
    digest = hashlib.sha256(
        json.dumps(metadata, sort_keys=True, allow_nan=True).encode()
    )
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"\0{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_model_file(
    where: str,
    data,
    state: Mapping[str, torch.Tensor],
    backbone: Callable | None,
    format_version: int,
) -> None:
    """Refuse model-file contents that are corrupt or do not fit together.

    Parameters
    ----------
    where : str
        The file, for messages.
    data : object
        The parsed JSON metadata: ``format_version``, ``config``, ``history``
        and, in files written since the checksum was added, ``sha256``.
    state : mapping of str to Tensor
        The file's tensors.
    backbone : callable or torch.nn.Module or None
        What ``MetaModel.load`` was given for a custom backbone.
    format_version : int
        The newest format this skmeta reads.

    Raises
    ------
    ValueError
        Naming the file and what is wrong.
    """

    def fail(problem: str):
        raise ValueError(
            f"{where} is not a valid skmeta model file: {problem}.{_newer(data)}"
        )

    if not isinstance(data, dict):
        fail("its metadata is not a JSON object")
    version = data.get("format_version")
    if not _is_int(version) or version < 1:
        fail(f"format_version is {version!r}, not a positive int")
    if version > format_version:
        raise ValueError(
            f"{where} was written by a newer skmeta (format {version}); "
            "upgrade skmeta to read it."
        )
    expected = data.get("sha256")
    if expected is not None:
        unsigned = {k: v for k, v in data.items() if k != "sha256"}
        if expected != checksum(unsigned, state):
            fail("its checksum does not match (the file is corrupt)")
    config, history = data.get("config"), data.get("history", [])
    if not isinstance(config, dict):
        fail("config is not a JSON object")
    _check_method_known(where, config)
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        fail("history is not a list of JSON objects")
    _check_config(config, fail)
    check_records(config, history, fail)  # what skmeta info, cards, ... read
    _check_weights(config, state, backbone, fail)


def _check_method_known(where: str, config: dict) -> None:
    """Refuse a method this process does not have: perhaps a plugin's, not
    installed here (naming the distribution the file records, if any)."""
    from .algorithms import ALGORITHMS
    from .algorithms.plugins import missing_method, settle_pending

    settle_pending()
    method = config.get("method")
    if isinstance(method, str) and method not in ALGORITHMS:
        raise ValueError(f"{where}: {missing_method(method, config.get('provenance'))}")


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_config(config: dict, fail) -> None:
    from .algorithms import make_algorithm

    kinds = {
        "method": str,
        "method_params": dict,
        "backbone": str,
        "input_shape": list,
        "per_feature_scaling": bool,
    }
    for key, kind in kinds.items():
        if not isinstance(config.get(key), kind):
            fail(f"config[{key!r}] is {config.get(key)!r}, not a {kind.__name__}")
    if not isinstance(config.get("backbone_params"), dict | None):
        fail(f"config['backbone_params'] is {config.get('backbone_params')!r}")
    shape = config["input_shape"]
    if not shape or not all(_is_int(s) and s > 0 for s in shape):
        fail(f"config['input_shape'] is {shape!r}, not a list of positive ints")
    if not _is_int(config.get("embedding_dim")) or config["embedding_dim"] < 1:
        fail(f"config['embedding_dim'] is {config.get('embedding_dim')!r}")
    try:
        algorithm = make_algorithm(config["method"], **config["method_params"])
    except (TypeError, ValueError) as exc:
        fail(f"config['method_params'] do not fit {config['method']!r}: {exc}")
    ignored = config.get("ignored_features", [])
    n_features = math.prod(shape)
    if not (
        isinstance(ignored, list)
        and all(_is_int(i) and 0 <= i < n_features for i in ignored)
        and len(set(ignored)) == len(ignored)
        and (not ignored or (config["per_feature_scaling"] and n_features > 1))
    ):
        fail(f"config['ignored_features'] is {ignored!r}")
    if config.get("calibration") is not None:
        _check_calibration(config["calibration"], fail)
    if config.get("target_scaling") is not None:
        if not algorithm.regression:
            fail("config['target_scaling'] is set, but the model classifies")
        check_target_scaling(config["target_scaling"], fail)


def _check_calibration(record, fail) -> None:
    """What predict_proba and the open-set threshold read of
    ``config["calibration"]``: a positive finite temperature, and score
    quantiles at increasing levels in [0, 1], as many as the levels."""

    def numbers(value) -> bool:
        return isinstance(value, list) and all(finite_number(v) for v in value)

    if not isinstance(record, dict):
        fail(f"config['calibration'] is {record!r}, not a dict")
    temperature = record.get("temperature")
    if not (numbers([temperature]) and temperature > 0):
        fail(f"config['calibration']['temperature'] is {temperature!r}")
    levels = record.get("known_score_levels")
    quantiles = record.get("known_score_quantiles")
    if not (
        numbers(levels)
        and numbers(quantiles)
        and len(levels) == len(quantiles) > 0
        and all(a < b for a, b in zip(levels[:-1], levels[1:], strict=True))
        and levels[-1] <= 1
        and 0 <= levels[0]
    ):
        fail(
            "config['calibration'] holds no usable score quantiles "
            f"(levels {levels!r}, quantiles {quantiles!r})"
        )


def _check_weights(config: dict, state: Mapping, backbone, fail) -> None:
    """The file's tensors against the network the config describes, built on
    the ``meta`` device: the same names, shapes and dtypes."""
    from .algorithms import make_algorithm
    from .net import build_net, float32_default

    if config["backbone"] != "custom" and backbone is not None:
        raise ValueError(
            f"The model uses the built-in backbone {config['backbone']!r}; "
            "do not pass backbone=."
        )
    _check_depth(config, state, fail)
    try:
        with torch.device("meta"), float32_default():
            net = build_net(config, backbone)
            embedding_dim = net.embedding_dim()
            algorithm = make_algorithm(config["method"], **config["method_params"])
            extras = [algorithm.meta_parameters(net, embedding_dim, n) for n in (2, 3)]
    except ValueError:  # build_net's own messages (a custom backbone needed)
        raise
    except Exception as exc:  # a config no network can be built from
        if config["backbone"] == "custom":
            return  # the user's module may not run on "meta"; MetaModel checks
        fail(f"its config describes no network skmeta can build ({exc!r})")
    if embedding_dim != config["embedding_dim"] and config["backbone"] == "custom":
        raise ValueError(  # the file is fine: the module given is another
            f"The backbone given to rebuild the model embeds in {embedding_dim} "
            f"features, not the {config['embedding_dim']} of the saved model "
            f"({config.get('backbone_name', 'a custom module')}). Pass a module "
            "of the saved architecture, e.g. a factory that repeats the changes "
            "made before saving (def make(): net = MyNet(); net.fc = "
            "torch.nn.Identity(); return net), or the module instance itself."
        )
    if embedding_dim != config["embedding_dim"]:
        fail(
            f"config['embedding_dim'] is {config['embedding_dim']}, but the "
            f"network it describes embeds in {embedding_dim}"
        )
    wanted = {k: (v.shape, v.dtype) for k, v in net.state_dict().items()}
    for name, two in extras[0].items():
        three = extras[1][name].shape
        # a size that depends on the number of classes (a fixed-way head)
        shape = [a if a == b else None for a, b in zip(two.shape, three, strict=True)]
        wanted[f"extra.{name}"] = (shape, torch.float32)
    base_mean = "extra.base_mean"  # feature_norm="cl2n"'s; older files lack it
    if getattr(algorithm, "keeps_base_mean", False) and base_mean in state:
        wanted[base_mean] = ([embedding_dim], torch.float32)
    missing = sorted(set(wanted) - set(state))
    unexpected = sorted(set(state) - set(wanted))
    if missing or unexpected:
        fail(
            "its weights do not fit the network its config describes: missing "
            f"{missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, (shape, dtype) in wanted.items():
        tensor = state[name]
        fits = len(tensor.shape) == len(shape) and all(
            want is None or want == got
            for want, got in zip(shape, tensor.shape, strict=True)
        )
        if not fits or tensor.dtype != dtype:
            fail(
                f"weight {name!r} is {tensor.dtype} of shape {tuple(tensor.shape)}; "
                f"the network needs {dtype} of shape {tuple(shape)}"
            )


def _check_depth(config: dict, state: Mapping, fail) -> None:
    """A list in the backbone_params of a built-in or torchvision backbone
    longer than the file has tensors: each entry of such a list is a layer
    or block with weights (the MLP's ``hidden_sizes``, Conv4's
    ``downsample``), so it describes no network of the file, and building it,
    even on ``meta``, costs time and memory per layer (a 300 KB file asking
    for 100,000 layers took 2 minutes and 1 GB to be refused)."""
    if config["backbone"] == "custom":
        return
    for key, value in (config.get("backbone_params") or {}).items():
        if isinstance(value, list) and len(value) > len(state):
            fail(
                f"config['backbone_params'][{key!r}] lists {len(value)} layers, "
                f"more than the file's {len(state)} weights"
            )


def _newer(data) -> str:
    """A sentence for a file a newer skmeta wrote (whose settings this one
    may not know), else ''."""
    from .._version import __version__

    config = data.get("config") if isinstance(data, dict) else None
    made = config.get("provenance") if isinstance(config, dict) else None
    written = made.get("skmeta") if isinstance(made, dict) else None
    if not isinstance(written, str) or _release(written) <= _release(__version__):
        return ""
    return (
        f" It was written by skmeta {written}, newer than this {__version__}: "
        "upgrade skmeta to read it."
    )


def _release(version: str) -> tuple:
    """The numeric release of a version string, e.g. (0, 1, 0) of '0.1.0.dev0'."""
    numbers = []
    for part in version.split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)
