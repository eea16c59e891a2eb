"""Conv4 embeddings for passes that are differentiated once: the query passes.

In the MAML family the second derivatives come from the inner loop; the query
pass after it is only ever differentiated once. Run through the modules,
its batch norm + ReLU holds a gradient buffer per op in the backward pass
(ReLU's input gradient, and batch norm's, which torch's CPU kernel allocates
twice), and a batch norm with given statistics is four elementwise ops, each
keeping a full activation. Here each batch norm (with the ReLU after it) is one
once-differentiable node built on torch's own batch-norm kernels, whose
backward writes both input gradients into the gradient buffer it receives. On
the MAML paper's Omniglot Conv4 that is three activation-sized buffers fewer at
the query pass's peak.

Same function and gradients as the modules (float rounding apart; tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Conv4
from ..net import MetaNet
from ..norm import TaskBatchNorm
from . import register
from .grouped import _layers, supports_grouped

__all__ = ["first_order_embed", "supports_first_order_embed"]

_aten = torch.ops.aten


def supports_first_order_embed(net: MetaNet) -> bool:
    """Whether :func:`first_order_embed` can run this network: a built-in
    :class:`~skmeta.meta.backbones.Conv4` whose batch norms use batch or task
    statistics (as :func:`~skmeta.meta.grouped.supports_grouped`)."""
    return (
        isinstance(net, MetaNet)
        and type(net.backbone) is Conv4
        and supports_grouped(net)
    )


def _non_leaf(t: torch.Tensor | None) -> torch.Tensor | None:
    """`t`, or a view of it if it is a leaf that requires grad.

    ``Function.apply`` takes a leaf's autograd lock while holding the GIL,
    whereas torch's own ops take it without the GIL and then may wait for the
    GIL (to keep the leaf's Python object alive). Two worker threads sharing a
    parameter (ANIL's body, say) can deadlock that way; the view is made by a
    torch op, and ``apply`` then takes no leaf's lock.
    """
    if t is not None and t.requires_grad and t.grad_fn is None:
        return t.view_as(t)
    return t


def convolve(
    layer: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None, h: torch.Tensor
) -> torch.Tensor:
    """`layer`'s convolution of `h` with the given `weight` and `bias`."""
    return F.conv2d(
        h,
        weight,
        bias,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        groups=layer.groups,
    )


def _channel_view(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.view(1, -1, 1, 1)


class _NormReLU(torch.autograd.Function):
    """``relu(batch_norm(x))`` (or without the ReLU), differentiable once.

    With ``mean``/``var`` None it normalises with the batch's statistics
    (biased variance, as ``F.batch_norm`` in training); otherwise with the
    given ones, which then receive gradients too (task batch norm). With
    ``private_grad`` the gradient arriving in the backward pass is a buffer of
    the next layer's backward that nothing else reads (a convolution or
    max-pool follows): the input gradients are written into it.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, relu, private_grad):
        batch_stats = mean is None
        if batch_stats:
            y, mean, invstd = _aten.native_batch_norm(
                x, weight, bias, None, None, True, 0.0, eps
            )
        else:
            y = _aten.native_batch_norm(x, weight, bias, mean, var, False, 0.0, eps)[0]
            invstd = torch.rsqrt(var + eps)
        if relu:
            y.relu_()
        ctx.save_for_backward(x, y if relu else None, weight, mean, var, invstd)
        ctx.batch_stats, ctx.relu, ctx.eps = batch_stats, relu, eps
        ctx.private_grad = private_grad
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, y, weight, mean, var, invstd = ctx.saved_tensors
        if not ctx.private_grad:  # the caller's: ours to write is a copy
            grad = grad.clone(memory_format=torch.channels_last)
        # ReLU's and batch norm's input gradients are written into `grad`
        if ctx.relu:
            _aten.threshold_backward.grad_input(grad, y, 0, grad_input=grad)
        # per channel: sum(grad) and sum(grad * x_hat), by torch's kernel
        _, grad_weight, grad_bias = _aten.native_batch_norm_backward(
            grad,
            x,
            weight,
            None if ctx.batch_stats else mean,
            None if ctx.batch_stats else var,
            # the statistics used, in both modes: CUDA's kernel asserts them
            # defined when it does not compute the input gradient (CPU's reads
            # the running ones outside training)
            mean,
            invstd,
            ctx.batch_stats,
            ctx.eps,
            [False, True, True],
        )
        scale = invstd if weight is None else weight * invstd
        grad_input = grad_mean = grad_var = None
        if ctx.batch_stats:
            if ctx.needs_input_grad[0]:
                # d x = scale * (g - sum(g) / n - x_hat * sum(g * x_hat) / n)
                #     = scale * g + slope * x + shift, per channel
                n = x.numel() // x.shape[1]
                slope = -scale * invstd * grad_weight / n
                shift = -scale * grad_bias / n - slope * mean
                torch.addcmul(
                    _channel_view(shift), grad, _channel_view(scale), out=grad
                )
                grad_input = grad.addcmul_(x, _channel_view(slope))
        else:
            if ctx.needs_input_grad[0]:
                grad_input = grad.mul_(_channel_view(scale))
            if ctx.needs_input_grad[3]:
                grad_mean = -scale * grad_bias
            if ctx.needs_input_grad[4]:
                w = 1.0 if weight is None else weight
                grad_var = -0.5 * w * invstd * invstd * grad_weight
        return (
            grad_input,
            grad_weight if ctx.needs_input_grad[1] else None,
            grad_bias if ctx.needs_input_grad[2] else None,
            grad_mean,
            grad_var,
            None,
            None,
            None,
        )


@register("embed_once", supports_first_order_embed)
def first_order_embed(
    net: MetaNet,
    weights: dict[str, torch.Tensor],
    x: torch.Tensor,
    stats: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Embed one task's rows with its weights, for a pass differentiated once.

    Parameters
    ----------
    net : MetaNet
        With a backbone :func:`supports_first_order_embed` accepts.
    weights : dict of str to Tensor
        Values of parameters by their name in `net` (the task's adapted
        weights); parameters not given are the network's own.
    x : Tensor of shape (n_rows, n_features)
    stats : list of (mean, var), optional
        Per :class:`~skmeta.meta.norm.TaskBatchNorm`, in module order, each of
        shape (channels,): the statistics to normalise with. None or empty:
        the batch's.

    Returns
    -------
    embedding : Tensor of shape (n_rows, embedding_dim)
        As ``net(x)`` with `weights` swapped in; its graph can be
        differentiated once (a second derivative raises an error).
    """
    prefix, layers = _layers(net)

    def param(i: int, name: str) -> torch.Tensor | None:
        value = weights.get(f"{prefix}.{i}.{name}")
        return getattr(layers[i], name) if value is None else value

    x = net.standardize(x)
    h = x.view(x.shape[0], *net.input_shape).to(memory_format=torch.channels_last)
    n_norms = 0
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.Conv2d):
            h = convolve(layer, param(i, "weight"), param(i, "bias"), h)
        elif isinstance(layer, nn.BatchNorm2d):
            mean = var = None
            if isinstance(layer, TaskBatchNorm):
                if stats:
                    mean, var = stats[n_norms]
                n_norms += 1
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            weight, bias = (
                (param(i, "weight"), param(i, "bias")) if layer.affine else (None, None)
            )
            h = _NormReLU.apply(
                h,
                *(_non_leaf(t) for t in (weight, bias, mean, var)),
                layer.eps,
                relu,
                i + 1 + relu < len(layers),  # a convolution or max-pool follows
            )
            i += relu  # the ReLU ran inside
        elif isinstance(layer, nn.MaxPool2d | nn.ReLU):
            h = layer(h)  # no parameters: Conv4's own module (its ReLU in place)
        else:  # supports_first_order_embed lets no other layer through
            raise TypeError(f"first_order_embed cannot run {layer!r}.")
        i += 1
    return h.flatten(1)
