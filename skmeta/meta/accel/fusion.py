"""Inference-only rewrites of a network: fewer passes over each activation.

In eval mode a batch norm with running statistics is an affine map per channel,
so it folds into the convolution before it (``torch.nn.utils.fusion``), and a
ReLU right after a convolution or linear layer may work in place. Each saves one
full pass over an activation per layer. (Linear layers are not folded with a
following batch norm: on inputs of more than two dimensions the two act on
different axes.)
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..backbones import MLP
from ..freezing import FROZEN_NORMS
from ..net import MetaNet
from . import register

__all__ = ["FusedCalls", "fuse_for_inference", "inference_network"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
# frozen batch norms differ from plain ones only by staying in eval mode
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, *FROZEN_NORMS)


def _foldable(norm: nn.Module) -> bool:
    """A plain (or frozen) batch norm (not a subclass with its own forward,
    such as task batch norm) that normalises with running statistics."""
    return (
        type(norm) in _NORMS
        and not norm.training
        and norm.track_running_stats
        and norm.running_mean is not None
    )


def fuse_for_inference(module: nn.Module) -> bool:
    """Fold batch norms into the convolution before them and make the ReLUs
    right after convolutions and linear layers work in place, in every
    ``nn.Sequential`` of `module`.

    Only consecutive entries of an ``nn.Sequential`` are touched: there, one
    entry's output feeds only the next. Folded batch norms become
    ``nn.Identity``, so indices and state-dict keys of other entries stay.

    Parameters
    ----------
    module : torch.nn.Module
        In eval mode, not needing gradients; modified in place. Use a copy.

    Returns
    -------
    bool
        Whether anything changed.
    """
    changed = False
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        previous = None
        for name, child in seq.named_children():
            if isinstance(previous, _CONVS) and _foldable(child):
                fused = fuse_conv_bn_eval(previous, child)
                setattr(seq, _name_of(seq, previous), fused)
                setattr(seq, name, nn.Identity())
                previous, changed = fused, True
                continue
            if isinstance(child, nn.ReLU) and isinstance(
                previous, (*_CONVS, nn.Linear)
            ):
                # the layer's output is a fresh tensor only the ReLU reads
                if not child.inplace:
                    child.inplace, changed = True, True
            if not isinstance(child, nn.Identity):
                previous = child
    return changed


def _name_of(seq: nn.Sequential, child: nn.Module) -> str:
    return next(name for name, m in seq.named_children() if m is child)


@register("inference", lambda net: isinstance(net, MetaNet))
def inference_network(net: MetaNet) -> nn.Module:
    """A module for inference that embeds rows as `net` does, in fewer passes.

    Batch norms with running statistics are folded into the convolutions before
    them and ReLUs after convolutions and linear layers work in place
    (:func:`~skmeta.meta.fusion.fuse_for_inference`). When the backbone is the
    built-in MLP, the input standardisation is also folded into its first linear
    layer (``W diag(1/scale)`` and ``b - W (mean/scale)``), which saves a pass
    over the input (convolutions pad with zeros *after* standardising, so there
    it does not fold exactly). Outputs equal `net`'s up to float rounding; a
    probe batch checks it, and `net` itself is used when they differ (a custom
    backbone might call one entry of an ``nn.Sequential`` on its own).

    Parameters
    ----------
    net : MetaNet
        In eval mode; not modified.

    Returns
    -------
    torch.nn.Module
        Maps ``(batch, n_features)`` to ``(batch, embedding_dim)``, no gradients:
        `net` itself when nothing folds.
    """
    if isinstance(net.backbone, MLP):
        layers = copy.deepcopy(net.backbone.layers).eval().requires_grad_(False)
        first = layers[0]
        with torch.no_grad():
            inverse = net.input_keep / net.input_scale  # 0: an ignored feature
            first.bias.sub_(
                first.weight @ (net.input_mean * inverse).expand(first.in_features)
            )
            first.weight.mul_(inverse)
        fuse_for_inference(layers)
        return layers if _same_embeddings(net, layers) else net
    fused = copy.deepcopy(net).eval().requires_grad_(False)
    if fuse_for_inference(fused) and _same_embeddings(net, fused):
        return fused
    return net


def _same_embeddings(net: MetaNet, other: nn.Module, n_rows: int = 4) -> bool:
    """Whether `other` embeds a probe batch of rows (drawn around the training
    data's mean and scale) as `net` does, to float32 rounding."""
    gen = torch.Generator(device=net.input_mean.device).manual_seed(0)
    noise = torch.randn(
        n_rows, net.n_features, generator=gen, device=net.input_mean.device
    )
    rows = net.input_mean + net.input_scale * noise
    if rows.device.type != "cpu":  # TF32 (CUDA's default for convolutions)
        # rounds both sides beyond the tolerance: the folding is compared on
        # CPU copies (the backends' flags are process-wide, not to be toggled)
        net, other = copy.deepcopy(net).cpu(), copy.deepcopy(other).cpu()
        rows = rows.cpu()
    with torch.inference_mode():
        expected, got = net(rows), other(rows)
    scale = expected.abs().max().item() + 1e-12
    return got.shape == expected.shape and bool(
        ((got - expected).abs().max() <= 1e-4 * scale).item()
    )


class FusedCalls:
    """`net` whose calls on whole rows run the inference copy `fast` (batch
    norms folded, :func:`inference_network`); every other attribute
    (``extra``, the buffers, the backbone) is `net`'s. What a method that
    ``classifies_embeddings`` reads of a network, so it serves them."""

    def __init__(self, net: MetaNet, fast) -> None:
        self.net = net
        self.fast = fast

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fast(x)

    def __getattr__(self, name: str):
        if name in ("net", "fast"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.net, name)
