"""Which layers train: ``backbone_params={"trainable_blocks": k}``.

A backbone is split into *blocks*, in the order the input meets them; all but
the last ``k`` are frozen. What a block is, per backbone:

==============================  ==============================================
backbone                        blocks
==============================  ==============================================
``conv4``, ``conv4_strided``,   its conv + batch norm (+ pool) + ReLU blocks
``conv6``                       (4, 6 for ``conv6``, or one per ``downsample``)
``mlp``                         its linear layers
``resnet12``                    its 4 residual blocks
``torchvision:`` ResNets        the stem (``conv1``, ``bn1``), then ``layer1``
(``layer1`` .. ``layer4``)      .. ``layer4``: 5 blocks, the stem frozen first
other ``torchvision:`` models,  the entries of ``features`` (``layers`` for
and any module with a           MNASNet, ``trunk_output`` for RegNets) that
``features``, ``layers`` or     hold parameters, each layer its own block (a
``trunk_output`` Sequential     conv and its batch norm are two), then the
                                other top-level children that hold parameters
any other module                its top-level children that hold parameters
==============================  ==============================================

``trainable_blocks=None`` (the default) trains everything, ``0`` nothing of the
backbone. Frozen means:

- its parameters have ``requires_grad=False``: meta-training's optimiser
  leaves them alone (their gradient stays None), and the inner loop of the
  gradient-based methods does not adapt them
  (:attr:`~skmeta.meta.net.MetaNet.frozen_parameters`);
- its batch norms stay in eval mode, in training too: they normalise with
  their running statistics and never update them (as a pretrained network's
  batch norms are usually frozen), and task batch norm
  (:func:`~skmeta.meta.norm.use_task_norm`) leaves them so. A frozen layer is
  thus a fixed function, the same in training and at inference.
"""

from __future__ import annotations

from torch import nn

__all__ = [
    "FROZEN_NORMS",
    "FrozenBatchNorm1d",
    "FrozenBatchNorm2d",
    "FrozenBatchNorm3d",
    "backbone_blocks",
    "freeze_blocks",
]


class _EvalOnly:
    """Mixin: a batch norm that stays in eval mode whatever ``train`` says."""

    def train(self, mode: bool = True):
        return super().train(False)


class FrozenBatchNorm1d(_EvalOnly, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that stays in eval mode (running statistics)."""


class FrozenBatchNorm2d(_EvalOnly, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that stays in eval mode (running statistics)."""


class FrozenBatchNorm3d(_EvalOnly, nn.BatchNorm3d):
    """``nn.BatchNorm3d`` that stays in eval mode (running statistics)."""


_FROZEN = {
    nn.BatchNorm1d: FrozenBatchNorm1d,
    nn.BatchNorm2d: FrozenBatchNorm2d,
    nn.BatchNorm3d: FrozenBatchNorm3d,
}
FROZEN_NORMS = tuple(_FROZEN.values())
# torchvision's names of the Sequential that holds a model's stages
_STAGES = ("features", "layers", "trunk_output")


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _children_blocks(module: nn.Module) -> list[list[nn.Module]]:
    return [[child] for child in module.children() if _has_parameters(child)]


def backbone_blocks(module: nn.Module) -> list[list[nn.Module]]:
    """The blocks of `module` (table in the module doc), input side first.

    Parameters
    ----------
    module : torch.nn.Module
        A backbone.

    Returns
    -------
    list of list of torch.nn.Module
        One list of modules per block.
    """
    from .backbones import MLP, Conv4
    from .resnet12 import ResNet12
    from .vision import TorchvisionBackbone

    if isinstance(module, TorchvisionBackbone):
        module = module.model
    if isinstance(module, Conv4):
        blocks: list[list[nn.Module]] = []
        for layer in module.features:
            if isinstance(layer, nn.Conv2d):
                blocks.append([])
            blocks[-1].append(layer)
        return blocks
    if isinstance(module, MLP):
        return [[m] for m in module.layers if isinstance(m, nn.Linear)]
    if isinstance(module, ResNet12):
        return [[block] for block in module.blocks]
    stages = [getattr(module, f"layer{i}", None) for i in range(1, 5)]
    if all(isinstance(stage, nn.Module) for stage in stages):  # ResNet family
        children = list(module.children())
        stem = [m for m in children[: children.index(stages[0])] if _has_parameters(m)]
        return [stem, *([stage] for stage in stages)]
    for attr in _STAGES:
        stages = getattr(module, attr, None)
        if isinstance(stages, nn.Sequential):
            rest = [c for c in module.children() if c is not stages]
            return _children_blocks(stages) + [[c] for c in rest if _has_parameters(c)]
    return _children_blocks(module)


def freeze_blocks(module: nn.Module, trainable_blocks: int | None) -> nn.Module:
    """Freeze all blocks of `module` but the last `trainable_blocks` (in place).

    Parameters
    ----------
    module : torch.nn.Module
        A backbone (see :func:`backbone_blocks`).
    trainable_blocks : int or None
        Blocks left trainable, counted from the output side; None: all.

    Returns
    -------
    torch.nn.Module
        `module`, its frozen parameters with ``requires_grad=False`` and its
        frozen batch norms in eval mode for good (``FrozenBatchNorm*d``).
    """
    if trainable_blocks is None:
        return module
    blocks = backbone_blocks(module)
    if (
        isinstance(trainable_blocks, bool)
        or not isinstance(trainable_blocks, int)
        or not 0 <= trainable_blocks <= len(blocks)
    ):
        raise ValueError(
            f"backbone_params['trainable_blocks'] must be an int from 0 to "
            f"{len(blocks)} (this backbone's blocks) or None; got "
            f"{trainable_blocks!r}."
        )
    for block in blocks[: len(blocks) - trainable_blocks]:
        for part in block:
            part.requires_grad_(False)
            for norm in part.modules():
                if type(norm) in _FROZEN:
                    # same parameters, buffers and state-dict keys; only
                    # `train` differs
                    norm.__class__ = _FROZEN[type(norm)]
                    norm.eval()
    return module
