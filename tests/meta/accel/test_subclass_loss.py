"""A gradient-based method may override the ``loss`` hook (CONTRIBUTING,
docs/design.md): the meta-gradient speed path must then give the reference's
gradient, not MAML's."""

import pytest
import torch
from torch import nn

from skmeta.meta import accel
from skmeta.meta.algorithms import MAML, TaskBatch
from skmeta.meta.net import MetaNet
from skmeta.meta.train import meta_gradient


class PenalisedMAML(MAML):
    """MAML plus a penalty on the head: a `loss` of its own."""

    name = "penalised-maml"

    def loss(self, net, batch):
        loss, metrics = super().loss(net, batch)
        return loss + 10.0 * net.extra["head_weight"].pow(2).sum(), metrics


def _gradients(algorithm, net, batch, enabled):
    net.zero_grad()
    if enabled:
        loss, _ = meta_gradient(algorithm, net, batch)
    else:
        with accel.disabled():
            loss, _ = meta_gradient(algorithm, net, batch)
    return loss, {n: p.grad.clone() for n, p in net.named_parameters()}


def test_a_maml_subclass_with_its_own_loss_gets_its_own_meta_gradient():
    torch.manual_seed(0)
    algorithm = PenalisedMAML(inner_steps=1)
    net = MetaNet(
        nn.Sequential(nn.Linear(4, 4), nn.ReLU()), (4,), per_feature_scaling=False
    )
    for name, value in algorithm.meta_parameters(net, 4, 3).items():
        net.extra[name] = nn.Parameter(value + 0.3)
    g = torch.Generator().manual_seed(1)
    batch = TaskBatch(
        torch.randn(4, 6, 4, generator=g),
        torch.tensor([0, 0, 1, 1, 2, 2]),
        torch.randn(4, 9, 4, generator=g),
        torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]),
        n_way=3,
    )
    fast_loss, fast = _gradients(algorithm, net, batch, enabled=True)
    loss, reference = _gradients(algorithm, net, batch, enabled=False)
    assert fast_loss == pytest.approx(loss, rel=1e-5)
    for name, grad in reference.items():
        torch.testing.assert_close(fast[name], grad, rtol=1e-5, atol=1e-6)


def test_maml_itself_keeps_the_grouped_path():
    from skmeta.meta.accel.meta_gradient import grouped_meta_gradient

    assert accel.find("meta_gradient", MAML()) is grouped_meta_gradient
    assert accel.find("meta_gradient", PenalisedMAML()) is not grouped_meta_gradient
