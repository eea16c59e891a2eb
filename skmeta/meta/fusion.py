"""Inference-only rewrites of a network: fewer passes over each activation.

In eval mode a batch norm with running statistics is an affine map per channel,
so it folds into the convolution before it (``torch.nn.utils.fusion``), and a
ReLU right after a convolution or linear layer may work in place. Each saves one
full pass over an activation per layer. (Linear layers are not folded with a
following batch norm: on inputs of more than two dimensions the two act on
different axes.)
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fuse_for_inference"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _foldable(norm: nn.Module) -> bool:
    """A plain batch norm (not a subclass with its own forward, such as task
    batch norm) that normalises with running statistics."""
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
