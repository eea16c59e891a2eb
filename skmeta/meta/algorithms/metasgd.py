"""Meta-SGD (Li, Zhou, Chen & Li, 2017): MAML whose inner step size is a
meta-learnt tensor, one rate per weight (initialised at ``inner_lr``)."""

from __future__ import annotations

import torch

from .maml import MAML

__all__ = ["MetaSGD"]


def lr_key(name: str) -> str:
    """Name in ``net.extra`` of the learnt rates of parameter `name`."""
    return "lr__" + name.replace(".", "__")


class MetaSGD(MAML):
    """Meta-SGD: one meta-learnt inner learning rate per weight.

    Parameters
    ----------
    inner_lr, inner_steps, first_order, regression, inner_batch_size
        As for :class:`~.maml.MAML`; `inner_lr` initialises the rates.
    """

    name = "metasgd"
    summary = "Meta-SGD: MAML with learnt per-weight inner learning rates"
    # its learnt rates replace inner_lr
    adaptation_settings = ("inner_steps", "inner_batch_size")

    def meta_parameters(self, net, embedding_dim, n_classes):
        params = super().meta_parameters(net, embedding_dim, n_classes)
        adapted = self.inner_parameters(net, dict(net.named_parameters()))
        shapes = {name: p.shape for name, p in adapted.items()}
        shapes.update({name: p.shape for name, p in params.items()})
        for name, shape in shapes.items():
            params[lr_key(name)] = torch.full(shape, self.inner_lr)
        return params

    def sgd_step(self, params, names, tensors, grads):
        return [
            t - params["extra." + lr_key(name)] * g
            for name, t, g in zip(names, tensors, grads, strict=True)
        ]
