import pytest
import torch
from torch import nn

from skmeta.meta.backbones import build_backbone, resolve_backbone


@pytest.mark.parametrize(
    "name, shape, dim",
    [
        ("mlp", (10,), 64),
        ("conv4", (1, 28, 28), 64),
        ("conv4_strided", (1, 28, 28), 256),
        ("conv4", (3, 32, 32), 256),
        ("conv6", (1, 28, 28), 64),  # 28 -> 14 -> 7 -> 3 -> 1, kept twice
        ("conv6", (3, 84, 84), 64 * 5 * 5),  # Chen et al.'s 1,600 features
    ],
)
def test_builtin_shapes(name, shape, dim):
    net = build_backbone(name, shape, None).eval()
    assert net(torch.zeros(3, *shape)).shape == (3, dim)


def test_auto_picks_by_input_shape():
    assert resolve_backbone("auto", (5,)) == "mlp"
    assert resolve_backbone("auto", (1, 8, 8)) == "conv4"


def test_backbone_params_reach_the_module():
    net = build_backbone("mlp", (4,), {"hidden_sizes": (8,), "out_features": 3})
    assert net(torch.zeros(2, 4)).shape == (2, 3)
    conv = build_backbone("conv4", (1, 16, 16), {"hidden_channels": 8})
    assert conv(torch.zeros(2, 1, 16, 16)).shape == (2, 8)


def test_custom_class_and_factory():
    class Tiny(nn.Module):
        def __init__(self, width=4):
            super().__init__()
            self.linear = nn.Linear(6, width)

        def forward(self, x):
            return self.linear(x)

    assert resolve_backbone(Tiny, (6,)) is Tiny
    assert build_backbone(Tiny, (6,), {"width": 2})(torch.zeros(1, 6)).shape == (1, 2)
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        build_backbone(lambda: "nope", (6,), None)


def test_bad_backbones_have_clear_errors():
    with pytest.raises(ValueError, match="unknown"):
        resolve_backbone("resnet99", (4,))
    with pytest.raises(ValueError, match="needs images"):
        resolve_backbone("conv4", (784,))
    with pytest.raises(TypeError, match="backbone must be"):
        resolve_backbone(3, (4,))


def test_conv4_equals_the_textbook_layer_order():
    """Conv4 runs max-pool before ReLU, channels-last: the same function as
    conv-BN-ReLU-pool in NCHW."""
    torch.manual_seed(0)
    net = build_backbone("conv4", (1, 28, 28), None).double().eval()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    layers = list(net.features)
    h = x
    for i in range(0, len(layers), 4):
        conv, bn, pool = layers[i], layers[i + 1], layers[i + 2]
        h = pool(torch.relu(bn(conv(h))))
    torch.testing.assert_close(net(x), h.flatten(1))


def test_conv4_downsamples_block_by_block():
    """One choice per block: max-pool the first (full resolution), stride the
    rest; 28 -> 14 (pool) -> 7 -> 4 -> 2 (strides, rounded up)."""
    mixed = ("maxpool", "strided", "strided", "strided")
    net = build_backbone("conv4", (1, 28, 28), {"downsample": mixed}).eval()
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 64 * 2 * 2)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.features) == 1
    # a list (as read back from a model file's JSON) builds the same network
    again = build_backbone("conv4", (1, 28, 28), {"downsample": list(mixed)})
    assert str(again) == str(net)


@pytest.mark.parametrize(
    "downsample", ["avgpool", (), ("maxpool",) * 3 + ("blur",), 2, None]
)
def test_conv4_refuses_bad_downsample(downsample):
    with pytest.raises(ValueError, match="downsample must be"):
        build_backbone("conv4", (1, 28, 28), {"downsample": downsample})


def test_a_downsample_sequence_sets_the_number_of_blocks():
    for blocks in (2, 4, 6):
        chosen = ("strided",) * min(blocks, 3) + ("none",) * max(blocks - 3, 0)
        net = build_backbone("conv4", (1, 28, 28), {"downsample": chosen}).eval()
        convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
        norms = [m for m in net.features if isinstance(m, nn.BatchNorm2d)]
        assert len(convs) == len(norms) == blocks
        side = {2: 7, 4: 4, 6: 4}[blocks]
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 64 * side * side)
    conv6 = build_backbone("conv6", (1, 28, 28), None)
    assert sum(isinstance(m, nn.MaxPool2d) for m in conv6.features) == 4
    assert sum(isinstance(m, nn.Conv2d) for m in conv6.features) == 6
    with pytest.raises(ValueError, match="conv6.*fixes its downsampling"):
        build_backbone("conv6", (1, 28, 28), {"downsample": "strided"})
    with pytest.raises(ValueError, match="needs images"):
        resolve_backbone("conv6", (784,))


def test_conv4_block_without_downsampling_keeps_its_size():
    """``"none"``: a stride-1 conv alone; 28 -> 14 -> 7 -> 4 -> 4."""
    kept = ("strided", "strided", "strided", "none")
    net = build_backbone("conv4", (1, 28, 28), {"downsample": kept}).eval()
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 64 * 4 * 4)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (2, 2), (2, 2), (1, 1)]
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.features)
