"""Support statistics in one layer-by-layer pass (skmeta.meta.accel.statistics)
equal the reference's probe passes, and decline beyond their memory budget."""

import pytest
import torch
from torch import nn

from skmeta.meta import accel
from skmeta.meta.accel import statistics
from skmeta.meta.accel.statistics import (
    layerwise_statistics,
    supports_layerwise_statistics,
)
from skmeta.meta.backbones import MLP, Conv4
from skmeta.meta.functional import embed, support_statistics
from skmeta.meta.net import MetaNet
from skmeta.meta.norm import use_task_norm

SHAPE = (2, 16, 16)


def _net(downsample="maxpool", affine=True, task_norm=True, seed=0):
    torch.manual_seed(seed)
    backbone = Conv4(SHAPE[0], hidden_channels=6, downsample=downsample)
    if not affine:
        for m in backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.affine, m.weight, m.bias = False, None, None
    if task_norm:
        use_task_norm(backbone)
    net = MetaNet(backbone, SHAPE, per_feature_scaling=True)
    net.input_mean.normal_()
    net.input_scale.uniform_(0.5, 2.0)
    for p in net.backbone.parameters():  # away from the identity batch norm
        p.data.add_(0.3 * torch.randn_like(p))
    return net.double().train()


def _rows(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, torch.Size(SHAPE).numel(), generator=g, dtype=torch.float64)


def _weights(net, seed=2):
    g = torch.Generator().manual_seed(seed)
    return {  # a task's adapted weights; the last block stays the network's
        f"backbone.{name}": p.detach()
        + 0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype)
        for name, p in net.backbone.named_parameters()
        if not name.startswith("features.12")
    }


def _reference(net, weights, x, chunk_rows):
    with accel.disabled():
        return support_statistics(net, weights, x, chunk_rows)


def _assert_same(got, want):
    assert len(got) == len(want) == 4
    for (mean, var), (ref_mean, ref_var) in zip(got, want, strict=True):
        torch.testing.assert_close(mean, ref_mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(var, ref_var, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("downsample", ["maxpool", "strided"])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("chunk_rows", [7, 40, 100])
def test_equal_to_the_reference_probe_passes(downsample, affine, chunk_rows):
    net = _net(downsample, affine)
    assert supports_layerwise_statistics(net)
    x, weights = _rows(57), _weights(net)
    got = layerwise_statistics(net, weights, x, chunk_rows)
    _assert_same(got, _reference(net, weights, x, chunk_rows))
    # and the whole batch's, as one pass over all rows has them
    with torch.no_grad():
        whole = embed(net, weights, x)[1]
    _assert_same(got, whole)


def test_recomputes_convolutions_that_do_not_fit_the_cache(monkeypatch):
    net, x = _net(), _rows(40)
    weights = _weights(net)
    want = _reference(net, weights, x, 9)
    # the first block's input and output fit, its convolution's output does not
    first_in, first_z = x.shape[1], 6 * 16 * 16
    first_out = 6 * 8 * 8
    budget = 40 * (first_in + first_out + first_z // 2) * x.element_size()
    monkeypatch.setattr(statistics, "CACHE_BYTES", budget)
    _assert_same(layerwise_statistics(net, weights, x, 9), want)


def test_declines_past_the_cache_and_the_reference_runs(monkeypatch):
    net, x = _net(), _rows(40)
    weights = _weights(net)
    want = _reference(net, weights, x, 9)
    monkeypatch.setattr(statistics, "CACHE_BYTES", 1000)
    assert layerwise_statistics(net, weights, x, 9) is None
    _assert_same(support_statistics(net, weights, x, 9), want)


def test_only_conv4_with_task_batch_norms():
    assert not supports_layerwise_statistics(_net(task_norm=False))
    mlp = MetaNet(MLP(8, hidden_sizes=(4,), out_features=3), (8,), False)
    assert not supports_layerwise_statistics(mlp)


def test_the_switch_selects_the_path():
    net = _net()
    assert accel.find("support_statistics", net) is layerwise_statistics
    with accel.disabled():
        assert accel.find("support_statistics", net) is None
