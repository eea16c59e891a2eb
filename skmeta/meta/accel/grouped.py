"""Several tasks' support sets through the built-in backbones at once.

The inner loop of the MAML family runs each task's few support rows through the
network with that task's own weights. Task by task, every op works on a handful
of rows, and the second-order meta-gradient through those tiny ops costs more in
per-op overhead than in arithmetic. Here the tasks of a group go through the
network together, each with its own weights and its own batch statistics:

- tasks become channel groups: rows ``(T, n, C, H, W)`` are laid out as
  ``(n, T * C, H, W)`` and a convolution with per-task weights ``(T, O, I, k, k)``
  is one grouped convolution with ``groups=T``;
- batch norm normalises each channel over the rows and pixels of its own task,
  which in that layout is plain per-channel batch norm;
- linear layers are one batched matrix product.

The result equals running the tasks one at a time (same function, float
rounding apart; tested), for :class:`~skmeta.meta.backbones.Conv4` and
:class:`~skmeta.meta.backbones.MLP` built of the layers they use. Other
backbones are run task by task by the caller.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import MLP, Conv4
from ..net import MetaNet
from ..norm import TaskBatchNorm, batch_statistics, normalize
from . import register

__all__ = ["grouped_embed", "supports_grouped"]


def _layers(net: MetaNet) -> tuple[str, nn.Sequential] | None:
    backbone = net.backbone
    if type(backbone) is Conv4:
        return "backbone.features", backbone.features
    if type(backbone) is MLP:
        return "backbone.layers", backbone.layers
    return None


def _supported_layer(module: nn.Module, backbone: nn.Module) -> bool:
    if type(backbone) is MLP:
        return isinstance(module, nn.Linear | nn.ReLU)
    if isinstance(module, TaskBatchNorm):
        return True
    if isinstance(module, nn.BatchNorm2d):
        # batch statistics only: a running average would be updated per task
        return module.running_mean is None and module.training
    if isinstance(module, nn.Conv2d):
        return module.padding_mode == "zeros" and isinstance(module.padding, tuple)
    return isinstance(module, nn.ReLU | nn.MaxPool2d)


def supports_grouped(net: MetaNet) -> bool:
    """Whether :func:`grouped_embed` can run this network."""
    found = _layers(net) if isinstance(net, MetaNet) else None
    return found is not None and all(
        _supported_layer(m, net.backbone) for m in found[1]
    )


@register("embed_tasks", supports_grouped)
def grouped_embed(
    net: MetaNet, weights: dict[str, torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Embed the rows of several tasks, each task with its own weights.

    Parameters
    ----------
    net : MetaNet
        Its backbone a :class:`Conv4` or :class:`MLP` (:func:`supports_grouped`).
    weights : dict of str to Tensor of shape (n_tasks, *parameter_shape)
        Per-task values of backbone parameters, by their name in `net`; a
        parameter not given is the network's own, shared by every task.
    x : Tensor of shape (n_tasks, n_rows, n_features)

    Returns
    -------
    embeddings : Tensor of shape (n_tasks, n_rows, embedding_dim)
    statistics : list of (mean, var), each of shape (n_tasks, channels)
        The batch statistics each :class:`TaskBatchNorm` used, in module order
        (plain batch norms record none), as ``task_statistics`` captures them.
    """
    prefix, layers = _layers(net)
    n_tasks, n_rows = x.shape[:2]
    x = net.standardize(x)

    def param(i: int, name: str) -> torch.Tensor:
        value = weights.get(f"{prefix}.{i}.{name}")
        if value is None:
            own = getattr(layers[i], name)
            value = own.unsqueeze(0).expand(n_tasks, *own.shape)
        return value

    stats: list[tuple[torch.Tensor, torch.Tensor]] = []
    if type(net.backbone) is MLP:
        h = x
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Linear):
                weight = param(i, "weight").transpose(1, 2)
                if layer.bias is None:
                    h = torch.bmm(h, weight)
                else:
                    h = torch.baddbmm(param(i, "bias").unsqueeze(1), h, weight)
            elif isinstance(layer, nn.ReLU):
                h = F.relu(h)
            else:  # supports_grouped lets no other layer through
                raise TypeError(f"grouped_embed cannot run {layer!r}.")
        return h, stats

    # (T, n, C, H, W) -> (n, T * C, H, W): each task's channels form one group
    h = x.view(n_tasks, n_rows, *net.input_shape).transpose(0, 1)
    h = h.reshape(n_rows, n_tasks * net.input_shape[0], *net.input_shape[1:])
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Conv2d):
            w = param(i, "weight")
            b = param(i, "bias").flatten() if layer.bias is not None else None
            h = F.conv2d(
                h,
                w.flatten(0, 1),
                b,
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                groups=n_tasks * layer.groups,
            )
        elif isinstance(layer, TaskBatchNorm):
            # each task's channels over that task's rows: per-channel statistics
            mean, var = batch_statistics(h)
            stats.append((mean.view(n_tasks, -1), var.view(n_tasks, -1)))
            affine = [param(i, n).flatten() for n in ("weight", "bias")]
            h = normalize(
                h, mean, var, *(affine if layer.affine else (None, None)), layer.eps
            )
        elif isinstance(layer, nn.BatchNorm2d):
            h = F.batch_norm(
                h,
                None,
                None,
                param(i, "weight").flatten() if layer.affine else None,
                param(i, "bias").flatten() if layer.affine else None,
                training=True,
                eps=layer.eps,
            )
        elif isinstance(layer, nn.MaxPool2d):
            h = layer(h)  # no parameters: the module itself
        elif isinstance(layer, nn.ReLU):
            h = F.relu(h)
        else:  # supports_grouped lets no other layer through
            raise TypeError(f"grouped_embed cannot run {layer!r}.")
    # (n, T * C, h, w) -> (T, n, C * h * w), the order of Conv4's flatten
    return h.reshape(n_rows, n_tasks, -1).transpose(0, 1), stats
