"""Task batch norm statistics of a large support set in one forward pass.

The reference (:func:`skmeta.meta.functional.support_statistics`) finds
each layer's statistics with a pass of its own: a layer's statistics need the
layers before it normalised with theirs, so pass ``k`` runs every chunk of
rows up to task batch norm ``k`` and stops there. On the Conv4 that
is about 2.8 forward passes per inner step (the later layers are the cheap
ones; every probe repeats the first ones).

Here, for a :class:`~skmeta.meta.backbones.Conv4` whose batch norms are all
task batch norms, the pass goes layer by layer over *all* rows at once: each
block's input is kept for every row (the previous block's output), its
convolution runs over the chunks and the statistics are merged, then the
chunks are normalised, pooled and rectified into the next block's input. A
convolution's output is kept too when it fits the cache, and otherwise
computed again after its statistics are known (the first block's: a cheap
1-channel convolution with the largest output). One forward pass and a bit,
in place of 2.8.

Memory: the activations kept for all rows (a block's input and output, and
its convolution's output when kept) stay within :data:`CACHE_BYTES`
(256 MiB: the 2,000-row Omniglot case keeps at most 226 MB); a support set too
large for that takes the reference, whose memory is that of one chunk. So peak
memory stays bounded whatever the number of rows.

Same statistics as the reference, to float rounding (the same chunks, the
same float64 merge; each chunk's moments by :func:`_moments`; tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..net import MetaNet
from ..norm import Statistics, TaskBatchNorm, merge_moments
from . import register
from .first_order import convolve, supports_first_order_embed
from .grouped import _layers

__all__ = ["CACHE_BYTES", "layerwise_statistics", "supports_layerwise_statistics"]

CACHE_BYTES = 256 << 20


def supports_layerwise_statistics(net: MetaNet) -> bool:
    """Whether :func:`layerwise_statistics` can run this network: a built-in
    Conv4 (:func:`~.first_order.supports_first_order_embed`) whose batch norms
    are all :class:`~skmeta.meta.norm.TaskBatchNorm`."""
    if not supports_first_order_embed(net):
        return False
    norms = [m for m in _layers(net)[1] if isinstance(m, nn.BatchNorm2d)]
    return bool(norms) and all(isinstance(m, TaskBatchNorm) for m in norms)


def _blocks(layers: nn.Sequential) -> list[tuple[int, int, list[nn.Module]]]:
    """``(conv index, norm index, modules after the norm)`` per Conv4 block."""
    blocks, i = [], 0
    while i < len(layers):
        if not isinstance(layers[i], nn.Conv2d) or not isinstance(
            layers[i + 1], TaskBatchNorm
        ):
            raise TypeError(f"layerwise_statistics cannot run {layers[i]!r}.")
        j = i + 2
        while j < len(layers) and not isinstance(layers[j], nn.Conv2d):
            if not isinstance(layers[j], nn.MaxPool2d | nn.ReLU):
                raise TypeError(f"layerwise_statistics cannot run {layers[j]!r}.")
            j += 1
        blocks.append((i, i + 1, list(layers[i + 2 : j])))
        i = j
    return blocks


@register("support_statistics", supports_layerwise_statistics)
@torch.no_grad()
def layerwise_statistics(
    net: MetaNet, weights: dict[str, torch.Tensor], x: torch.Tensor, chunk_rows: int
) -> Statistics | None:
    """Task batch norm statistics of all of `x`, as one pass over it has them.

    Parameters
    ----------
    net : MetaNet
        With a backbone :func:`supports_layerwise_statistics` accepts.
    weights : dict of str to Tensor
        Parameter values by name (one task's, no task axis); a parameter not
        given is the network's own.
    x : Tensor of shape (n_rows, n_features)
    chunk_rows : int
        Rows per convolution call (the reference's chunks, for the same
        float64 merge).

    Returns
    -------
    list of (mean, var) or None
        Per task batch norm, in network order, each of shape (channels,):
        the mean and biased variance over all rows and pixels. None when the
        activations kept for all rows would pass :data:`CACHE_BYTES`: then
        use the reference.
    """
    prefix, layers = _layers(net)

    def param(i: int, name: str) -> torch.Tensor | None:
        value = weights.get(f"{prefix}.{i}.{name}")
        return getattr(layers[i], name) if value is None else value

    blocks = _blocks(layers)
    n = x.shape[0]
    # floats per row of every block's input, convolution output and output
    h = net.standardize(x[:1]).view(1, *net.input_shape)
    sizes = []
    for conv, _, after in blocks:
        z = _convolve(layers, conv, param, h)
        channel = z.new_zeros(z.shape[1])
        out = F.batch_norm(z, channel, channel + 1)  # shapes only
        for module in after:
            out = module(out)
        sizes.append((h.numel(), z.numel(), out.numel()))
        h = out
    # a block's input and output are kept for all rows at once
    if n * max(a + c for a, _, c in sizes) * x.element_size() > CACHE_BYTES:
        return None
    chunks = [
        net.standardize(part)
        .view(part.shape[0], *net.input_shape)
        .to(memory_format=torch.channels_last)
        for part in x.split(chunk_rows)
    ]
    stats: Statistics = []
    for (conv, norm, after), (in_floats, z_floats, out_floats) in zip(
        blocks, sizes, strict=True
    ):
        # the convolution's output too, if it fits beside the block's input and output
        keep = n * (in_floats + z_floats + out_floats) * x.element_size() <= CACHE_BYTES
        outputs, running, count = [], None, None
        for part in chunks:
            z = _convolve(layers, conv, param, part)
            mean, var = _moments(z)
            count, *running = merge_moments(
                running, count, mean, var, z.numel() // z.shape[1]
            )
            if keep:
                outputs.append(z)
        mean, m2 = running
        mean, var = mean.to(x.dtype), (m2 / count).to(x.dtype)
        stats.append((mean, var))
        bn = layers[norm]
        weight, bias = (
            (param(norm, "weight"), param(norm, "bias")) if bn.affine else (None, None)
        )
        for k, part in enumerate(chunks):
            z = outputs[k] if keep else _convolve(layers, conv, param, part)
            if keep:
                outputs[k] = None  # freed as the next input grows
            h = F.batch_norm(z, mean, var, weight, bias, False, 0.0, bn.eps)
            for module in after:
                h = module(h)
            chunks[k] = h
    return stats


def _moments(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of `z` (batch, channels, H, W),
    float64.

    Two passes of sums: the mean, then the sums of the deviations from it and
    of their squares (so the variance suffers no cancellation), finished in
    float64. On a channels-last activation about 10 times faster than
    ``torch.var_mean`` over the batch and pixel axes, and as accurate (about
    1e-7 relative in float32, measured against float64).
    """
    n = z.numel() // z.shape[1]
    shift = z.sum((0, 2, 3)) / n
    deviation = z - shift.view(1, -1, 1, 1)
    first = deviation.sum((0, 2, 3)).double() / n
    second = deviation.square_().sum((0, 2, 3)).double() / n
    return shift.double() + first, (second - first * first).clamp_min(0.0)


def _convolve(layers, i, param, h):
    """Layer `i` (a ``Conv2d``) of `layers` with its weights from `param`."""
    return convolve(layers[i], param(i, "weight"), param(i, "bias"), h)
