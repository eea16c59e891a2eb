"""torchvision classification models as backbones: ``"torchvision:<name>"``.

Any classification model of ``torchvision.models.list_models(module=
torchvision.models)`` works, e.g. ``backbone="torchvision:resnet18"``. Its
classification head is replaced by ``nn.Identity``, so the backbone outputs
the features the head would have read, flattened to ``(batch, dim)``: the
``fc`` layer (ResNets, RegNets, ShuffleNets, GoogLeNet, Inception), ``head``
(Swin), or the last linear layer of ``classifier`` / ``heads`` (VGG, AlexNet,
MobileNets, EfficientNets, ConvNeXt, DenseNet, MNASNet, MaxViT, ViT; the last
convolution for SqueezeNet). For ResNet-18 that is the 512-d pooled feature.

Weights (``backbone_params={"weights": ...}``):

- None (default): random initialisation, as ``get_model(name, weights=None)``;
- a path to a local file: a state dict saved with ``torch.save`` (read with
  ``weights_only=True``, no code runs) or a ``.safetensors`` file, for the
  full model (head included) or without the head;
- a torchvision weights name, e.g. ``"DEFAULT"`` or ``"IMAGENET1K_V1"``:
  passed to ``torchvision.models.get_model(name, weights=...)``, which
  downloads it (or reads torch's hub cache). Offline, the error says which
  file to download and how to pass its path.

A model rebuilt from a saved skmeta model file never reads the weights again:
the file holds them (:func:`skmeta.meta.net.build_net` builds without reading
them). Weights whose torchvision builder changes the architecture beyond
GoogLeNet's and Inception's input transform (e.g. ViT's 384-pixel ``SWAG``
weights set ``image_size=384``) need that keyword in ``backbone_params`` too.
torchvision is imported only when such a backbone is used.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import torch
from torch import nn

from .._optional import import_torchvision

__all__ = ["PREFIX", "TorchvisionBackbone", "build_torchvision", "model_names"]

PREFIX = "torchvision:"
_HEADS = ("fc", "classifier", "heads", "head")
_AUX = ("aux1", "aux2", "AuxLogits")  # GoogLeNet's and Inception's side heads
# What torchvision's builders set for these two when loading ImageNet weights
# (torchvision.models.googlenet / inception_v3); a local file needs the same.
_PRETRAINED_KWARGS = {
    name: {"transform_input": True, "aux_logits": True, "init_weights": False}
    for name in ("googlenet", "inception_v3")
}


def _torchvision(name: str):
    return import_torchvision(f"backbone='{PREFIX}{name}'")


def model_names() -> list[str]:
    """The classification models torchvision offers, by name."""
    tv = _torchvision("<name>")
    return list(tv.models.list_models(module=tv.models))


def check_name(name: str) -> None:
    """Raise ValueError unless `name` is a torchvision classification model."""
    names = model_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"backbone='{PREFIX}{name}': torchvision has no classification model "
            f"{name!r}.{hint} The names are those of "
            "torchvision.models.list_models(module=torchvision.models)."
        )


class TorchvisionBackbone(nn.Module):
    """A torchvision model without its classification head.

    Parameters
    ----------
    model : torch.nn.Module
        The torchvision model, head already replaced by ``nn.Identity``.
    repeat_grey : bool, default=False
        Repeat a 1-channel input to the 3 channels torchvision models take.

    Shapes: ``(batch, C, H, W) -> (batch, dim)`` with C = 3, or 1 when
    `repeat_grey`. Side outputs of GoogLeNet and Inception in training mode
    are dropped.
    """

    def __init__(self, model: nn.Module, repeat_grey: bool = False) -> None:
        super().__init__()
        self.model = model
        self.repeat_grey = repeat_grey

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.repeat_grey:
            x = x.expand(-1, 3, -1, -1)
        out = self.model(x.to(memory_format=torch.channels_last))
        if not isinstance(out, torch.Tensor):  # e.g. GoogLeNetOutputs
            out = out[0]
        return out.flatten(1)


def build_torchvision(
    name: str,
    input_shape: tuple[int, ...],
    weights=None,
    read_weights: bool = True,
    **params,
) -> TorchvisionBackbone:
    """Build torchvision model `name` without its head (see the module doc).

    Parameters
    ----------
    name : str
        A torchvision classification model, e.g. ``"resnet18"``.
    input_shape : tuple of int
        ``(C, H, W)`` with C = 3, or 1 (the grey channel is repeated to 3).
    weights : None, str or path-like, default=None
        None, a local weights file, or a torchvision weights name.
    read_weights : bool, default=True
        False: build the model `weights` fit (for GoogLeNet and Inception,
        their input transform) without reading them, for a state dict to be
        loaded instead.
    **params
        Passed to the torchvision builder (e.g. ``dropout=0.0``).

    Returns
    -------
    TorchvisionBackbone
    """
    check_name(name)
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        raise ValueError(
            f"backbone='{PREFIX}{name}' takes colour images, input_shape=(3, H, W) "
            f"(or (1, H, W): the grey channel is repeated); got {tuple(input_shape)}."
        )
    tv = _torchvision(name)
    keep_aux = bool(params.get("aux_logits", False))
    path = None if weights is None or not read_weights else _weights_path(weights)
    if weights is not None and read_weights and path is None:  # a weights name
        model = _download(tv, name, weights, params)
    else:
        if weights is None:  # torchvision's own initialisation, without warnings
            defaults = {"init_weights": True} if name in _PRETRAINED_KWARGS else {}
        else:
            defaults = _PRETRAINED_KWARGS.get(name, {})
        model = tv.models.get_model(name, weights=None, **{**defaults, **params})
        if path is not None:
            _load_file(model, path, name)
    if not keep_aux and getattr(model, "aux_logits", False):
        model.aux_logits = False  # as torchvision does after loading weights
        for attr in _AUX:
            if hasattr(model, attr):
                setattr(model, attr, None)
    _remove_head(model, name)
    return TorchvisionBackbone(model, repeat_grey=input_shape[0] == 1)


def _weights_path(weights) -> Path | None:
    """The local file `weights` names, or None for None and weights names."""
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        path = Path(weights)
    elif isinstance(weights, str):
        path = Path(os.path.expanduser(weights))
        looks_like_path = (
            os.sep in weights
            or "/" in weights
            or path.suffix in (".pt", ".pth", ".bin", ".safetensors")
        )
        if not looks_like_path and not path.is_file():
            return None  # a weights name such as "IMAGENET1K_V1"
    else:
        raise TypeError(
            "backbone_params['weights'] must be None, a file path or a torchvision "
            f"weights name such as 'DEFAULT'; got {type(weights).__name__}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"backbone_params['weights']: no file at {path}.")
    return path


def _read_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several kinds for foreign files
        raise ValueError(
            f"backbone_params['weights']: {path} is not a state dict saved with "
            f"torch.save ({type(exc).__name__}: {str(exc).splitlines()[0]})."
        ) from None
    for key in ("state_dict", "model"):  # common checkpoint layouts
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(
            f"backbone_params['weights']: {path} does not hold a state dict "
            "(a mapping of parameter names to tensors)."
        )
    return state


def _load_file(model: nn.Module, path: Path, name: str) -> None:
    """Load a state dict file into `model` (the whole model; the head's
    weights may be missing)."""
    state = _read_state_dict(path)
    if state and all(k.startswith("module.") for k in state):  # DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    head = _head_name(model)
    result = model.load_state_dict(state, strict=False)
    missing = [
        k for k in result.missing_keys if head is None or not k.startswith(head + ".")
    ]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"backbone_params['weights']: {path} does not fit torchvision's "
            f"{name}: missing {missing[:5]}, unexpected "
            f"{list(result.unexpected_keys)[:5]}."
        )


def _download(tv, name: str, weights: str, params: dict) -> nn.Module:
    """``get_model(name, weights=weights)``, with clear errors for an unknown
    name and for a download that fails (offline)."""
    enum = tv.models.get_model_weights(name)
    try:
        entry = enum.verify(weights)
    except (KeyError, TypeError):
        raise ValueError(
            f"backbone_params['weights']={weights!r} is neither a file nor a "
            f"weights name of torchvision's {name}; its names are "
            f"{['DEFAULT', *(w.name for w in enum)]}."
        ) from None
    try:
        return tv.models.get_model(name, weights=entry, **params)
    except OSError as exc:  # urllib's URLError is an OSError
        file_name = entry.url.rsplit("/", 1)[-1]
        raise OSError(
            f"Could not download the {entry} weights of torchvision's {name} "
            f"from {entry.url} ({exc}). Download that file on a machine with "
            "internet access and pass its path: backbone_params={'weights': "
            f"'/path/to/{file_name}'}} (or put it in torch's hub cache, "
            f"{torch.hub.get_dir()}/checkpoints/)."
        ) from exc


def _head_name(model: nn.Module) -> str | None:
    """Dotted name of the module :func:`_remove_head` replaces."""
    for attr in _HEADS:
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            return attr
        if isinstance(head, nn.Sequential):
            for kind in (nn.Linear, nn.Conv2d):  # SqueezeNet's is a 1x1 conv
                last = [n for n, m in head.named_children() if isinstance(m, kind)]
                if last:
                    return f"{attr}.{last[-1]}"
    return None


def _remove_head(model: nn.Module, name: str) -> None:
    head = _head_name(model)
    if head is None:
        raise ValueError(
            f"backbone='{PREFIX}{name}': could not find its classification head "
            f"(none of {_HEADS}). Build the model yourself and use "
            "MetaModel.from_module, or pass a factory as backbone=."
        )
    parent, _, attr = head.rpartition(".")
    setattr(model.get_submodule(parent), attr, nn.Identity())
