"""Backbones: the torch networks that map input rows to embeddings.

Every backbone takes a batch shaped ``(batch, *input_shape)`` and returns
``(batch, embedding_dim)``. Built-ins are named by string (``"mlp"``,
``"conv4"``, ``"conv4_strided"``, ``"conv6"``, ``"resnet12"``), torchvision's
classification models by ``"torchvision:<name>"`` (:mod:`.vision`); any
``torch.nn.Module`` class or factory works too, and a module instance serves
as a template (deep-copied).

``backbone_params`` reach the module's constructor, except the keys skmeta
itself reads (:data:`SKMETA_PARAMS`): ``"trainable_blocks"``
(:mod:`.freezing`) and ``"input_normalization"`` (:mod:`.input_normalization`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from numbers import Real

import torch
from torch import nn

from . import vision
from .freezing import freeze_blocks
from .resnet12 import ResNet12

__all__ = [
    "BUILTIN_BACKBONES",
    "MLP",
    "SKMETA_PARAMS",
    "Conv4",
    "ResNet12",
    "build_backbone",
    "resolve_backbone",
    "takes_images",
]

# backbone_params keys skmeta reads itself, never passed to a factory
SKMETA_PARAMS = ("trainable_blocks", "input_normalization")


class MLP(nn.Module):
    """Fully connected ReLU network for tabular rows.

    Parameters
    ----------
    in_features : int
        Width of an input row.
    hidden_sizes : sequence of int, default=(256, 256)
        Widths of the hidden layers.
    out_features : int, default=64
        Embedding dimension.
    dropout : float, default=0.0
        Probability of zeroing each hidden unit, after each hidden ReLU
        (``torch.nn.Dropout``): a regulariser of meta-training on small
        tables. Active in train mode only (meta-training), so embeddings,
        adaptation and predictions are deterministic. 0: no dropout layer.

    Shapes: ``(batch, in_features) -> (batch, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (256, 256),
        out_features: int = 64,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if (
            not isinstance(dropout, Real)
            or isinstance(dropout, bool)
            or not 0 <= dropout < 1
        ):
            raise ValueError(
                "backbone_params['dropout'] must be a float in [0, 1), the "
                f"probability of zeroing a hidden unit; got {dropout!r}."
            )
        layers: list[nn.Module] = []
        width = in_features
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:  # none at 0: the layers (and saved names) as before
                layers.append(nn.Dropout(float(dropout)))
            width = hidden
        layers.append(nn.Linear(width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))


class Conv4(nn.Module):
    """The Conv4 of the few-shot literature: 4 x [conv3x3, batchnorm, ReLU, 2x down]
    (or as many blocks as `downsample` lists).

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    hidden_channels : int, default=64
        Channels of every conv layer.
    downsample : {"maxpool", "strided", "none"} or sequence of them, default="maxpool"
        ``"maxpool"``: conv (stride 1) then 2x2 max-pool, as in Prototypical Networks.
        ``"strided"``: conv with stride 2 (MAML's Omniglot model), several times
        faster on a CPU. ``"none"``: conv (stride 1) alone, the block keeps
        its input's size (a larger embedding, more positions to compute). A
        string applies to 4 blocks; a sequence gives one choice per block,
        and its length the number of blocks: e.g.
        ``("maxpool", "strided", "strided", "strided")`` max-pools the first,
        full-resolution block and strides the rest (1.9x the strided Conv4's
        meta-training time on 28x28 images, ``benchmarks/conv4_cost.py``), and
        ``("maxpool",) * 4 + ("none",) * 2`` is the Conv6 of Chen et al.
        (2019, "A closer look at few-shot classification"; ``backbone="conv6"``).

    Shapes: ``(batch, C, H, W) -> (batch, hidden_channels * h * w)`` where ``h, w``
    are H, W halved by each block that downsamples, rounded down by a max-pool
    and up by a stride (28x28 gives 1x1 with max-pool, 2x2 strided, 4x4 with
    ``("strided", "strided", "strided", "none")``). Computed channels-last, with
    max-pool before ReLU (the same function, faster).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 64,
        downsample: str | Sequence[str] = "maxpool",
    ) -> None:
        super().__init__()
        per_block = [downsample] * 4 if isinstance(downsample, str) else downsample
        if (
            not isinstance(per_block, Sequence)
            or len(per_block) < 1
            or any(choice not in ("maxpool", "strided", "none") for choice in per_block)
        ):
            raise ValueError(
                "downsample must be 'maxpool', 'strided', 'none' or a non-empty "
                f"sequence of them (one per block), got {downsample!r}."
            )
        blocks: list[nn.Module] = []
        channels = in_channels
        for choice in per_block:
            stride = 2 if choice == "strided" else 1
            blocks += [
                nn.Conv2d(channels, hidden_channels, 3, stride=stride, padding=1),
                nn.BatchNorm2d(hidden_channels),
            ]
            if choice == "maxpool":
                # relu(maxpool(x)) == maxpool(relu(x)), values and gradients, with
                # the ReLU on a 4x smaller tensor (1.16x faster training here).
                blocks.append(nn.MaxPool2d(2, ceil_mode=False))
            # In place is safe: batch norm and max-pool backward need their
            # inputs, not their outputs.
            blocks.append(nn.ReLU(inplace=True))
            channels = hidden_channels
        self.features = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last activations: oneDNN's NHWC convolutions and vectorised
        # NHWC batch norm and pooling, 1.3x faster on a CPU. `.to`, not
        # `.contiguous`: a 1-channel NCHW tensor already counts as channels-last
        # contiguous and would stay NCHW.
        return self.features(x.to(memory_format=torch.channels_last)).flatten(1)


def _mlp(input_shape: tuple[int, ...], **params) -> nn.Module:
    in_features = 1
    for size in input_shape:
        in_features *= size
    return MLP(in_features, **params)


def _conv4(input_shape: tuple[int, ...], **params) -> nn.Module:
    return Conv4(input_shape[0], **params)


def _conv4_strided(input_shape: tuple[int, ...], **params) -> nn.Module:
    return Conv4(input_shape[0], downsample="strided", **params)


def _conv6(input_shape: tuple[int, ...], **params) -> nn.Module:
    if "downsample" in params:
        raise ValueError(
            "backbone='conv6' fixes its downsampling (4 max-pooled blocks, then "
            "2 that keep the size); for another, give backbone='conv4' a "
            "'downsample' sequence of 6."
        )
    return Conv4(input_shape[0], downsample=("maxpool",) * 4 + ("none",) * 2, **params)


def _resnet12(input_shape: tuple[int, ...], **params) -> nn.Module:
    return ResNet12(input_shape[0], **params)


BUILTIN_BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "conv4": _conv4,
    "conv4_strided": _conv4_strided,
    "conv6": _conv6,
    "resnet12": _resnet12,
}
# built-ins that take images, input_shape=(C, H, W)
_IMAGE_BACKBONES = ("conv4", "conv4_strided", "conv6", "resnet12")


def takes_images(backbone: str) -> bool:
    """Whether backbone name `backbone` takes images only: a convolutional
    built-in or a ``torchvision:<name>`` model."""
    return backbone in _IMAGE_BACKBONES or backbone.startswith(vision.PREFIX)


def resolve_backbone(backbone, input_shape: tuple[int, ...]) -> str | Callable:
    """Name of a built-in or torchvision backbone, or the user's class/factory
    (or module instance) unchanged.

    ``"auto"`` is ``"conv4"`` for images (an `input_shape` of length 3) and
    ``"mlp"`` otherwise. A ``"torchvision:<name>"`` is checked against
    torchvision's classification models (importing torchvision).
    """
    if isinstance(backbone, str):
        if backbone == "auto":
            return "conv4" if len(input_shape) == 3 else "mlp"
        if backbone.startswith(vision.PREFIX):
            vision.check_name(backbone[len(vision.PREFIX) :])
        elif backbone not in BUILTIN_BACKBONES:
            raise ValueError(
                f"backbone={backbone!r} is unknown; use one of "
                f"{['auto', *BUILTIN_BACKBONES]}, 'torchvision:<model name>', a "
                "torch.nn.Module class or a callable that returns a module."
            )
        if takes_images(backbone) and len(input_shape) != 3:
            raise ValueError(
                f"backbone={backbone!r} needs images: pass input_shape=(C, H, W) "
                f"(got input_shape={input_shape})."
            )
        return backbone
    if callable(backbone):
        return backbone
    raise TypeError(
        "backbone must be a string, a torch.nn.Module class or a callable returning "
        f"a module; got {type(backbone).__name__}."
    )


def build_backbone(
    backbone: str | Callable | nn.Module,
    input_shape: tuple[int, ...],
    params: dict | None,
    load_weights: bool = True,
) -> nn.Module:
    """Build a fresh backbone module (float32, on the CPU).

    Parameters
    ----------
    backbone : str, callable or torch.nn.Module
        A built-in name, ``"torchvision:<name>"``, a module class or factory,
        or a module instance (deep-copied, never changed).
    input_shape : tuple of int
        Shape of one row, e.g. ``(n_features,)`` or ``(C, H, W)``.
    params : dict or None
        ``backbone_params``. Built-ins and torchvision models receive
        `input_shape` plus these; a user class or factory receives only these,
        as keyword arguments; a module instance takes none. The keys of
        :data:`SKMETA_PARAMS` are skmeta's: ``trainable_blocks`` freezes blocks
        (:func:`~skmeta.meta.freezing.freeze_blocks`).
    load_weights : bool, default=True
        Read a torchvision model's ``weights``. False when rebuilding a saved
        model, whose file holds the weights.

    Returns
    -------
    torch.nn.Module
    """
    params = dict(params or {})
    trainable_blocks = params.pop("trainable_blocks", None)
    params.pop("input_normalization", None)
    if isinstance(backbone, nn.Module):
        if params:
            raise ValueError(
                "backbone is a module instance, which takes no backbone_params; "
                f"got {sorted(params)}."
            )
        module = copy.deepcopy(backbone)
    elif isinstance(backbone, str) and backbone.startswith(vision.PREFIX):
        name = backbone[len(vision.PREFIX) :]
        module = vision.build_torchvision(
            name, tuple(input_shape), read_weights=load_weights, **params
        )
    elif isinstance(backbone, str):
        module = BUILTIN_BACKBONES[backbone](tuple(input_shape), **params)
    else:
        module = backbone(**params)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"The backbone factory {backbone!r} returned "
                f"{type(module).__name__}, not a torch.nn.Module."
            )
    return freeze_blocks(module.float(), trainable_blocks)
