"""Inference-only folding of batch norms and in-place ReLUs
(skmeta.meta.accel.fusion)."""

import copy

import pytest
import torch
from torch import nn

from skmeta.meta.accel.fusion import fuse_for_inference
from skmeta.meta.norm import TaskBatchNorm


def _trained_norms(module):
    """Give every batch norm non-trivial running statistics and affine terms."""
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))
    return module.eval().requires_grad_(False)


def test_conv_batch_norm_pairs_fold_and_outputs_stay():
    torch.manual_seed(0)
    net = _trained_norms(
        nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2),
            nn.BatchNorm2d(8),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32, 5),
            nn.ReLU(),
        )
    )
    x = torch.randn(6, 1, 12, 12)
    expected = net(x)
    fused = copy.deepcopy(net)
    assert fuse_for_inference(fused)
    assert [type(m).__name__ for m in fused] == [
        "Conv2d", "Identity", "ReLU", "Conv2d", "Identity", "MaxPool2d", "ReLU",
        "Flatten", "Linear", "ReLU",
    ]  # fmt: skip
    assert fused[2].inplace and fused[9].inplace
    assert not fused[6].inplace  # after max-pool: left as it was
    torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)
    assert not fuse_for_inference(fused)  # nothing left to do


@pytest.mark.parametrize(
    "norm",
    [
        TaskBatchNorm(4),  # its own forward: per-task statistics
        nn.BatchNorm2d(4, track_running_stats=False),  # batch statistics
    ],
)
def test_norms_without_running_statistics_stay(norm):
    net = nn.Sequential(nn.Conv2d(1, 4, 3), norm).eval()
    assert not fuse_for_inference(net)
    assert net[1] is norm


def test_a_norm_in_training_mode_stays():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    net[0].eval()
    assert not fuse_for_inference(net)


def test_first_relu_of_a_sequential_never_writes_into_the_input():
    net = nn.Sequential(nn.ReLU(), nn.Linear(3, 3)).eval()
    x = torch.tensor([[-1.0, 2.0, -3.0]])
    fuse_for_inference(net)
    net(x)
    assert not net[0].inplace
    assert x[0, 0] == -1.0
