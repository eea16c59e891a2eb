import numpy as np
import pytest
import torch
from torch import nn

from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.backbones import Conv4, build_backbone
from skmeta.meta.freezing import (
    FrozenBatchNorm2d,
    backbone_blocks,
    freeze_blocks,
)
from skmeta.meta.net import MetaNet
from skmeta.meta.norm import TaskBatchNorm, use_task_norm
from skmeta.meta.train import TrainSettings, meta_train

SHAPE = (1, 16, 16)


@pytest.mark.parametrize(
    "name, shape, params, n_blocks",
    [
        ("conv4", SHAPE, {"hidden_channels": 4}, 4),
        ("conv4_strided", SHAPE, {"hidden_channels": 4}, 4),
        ("conv6", SHAPE, {"hidden_channels": 4}, 6),
        ("conv4", SHAPE, {"hidden_channels": 4, "downsample": ["none"] * 5}, 5),
        ("mlp", (6,), {"hidden_sizes": (5, 5)}, 3),
        ("resnet12", SHAPE, {"channels": (2, 2, 2, 2)}, 4),
        ("torchvision:resnet18", (3, 32, 32), {}, 5),  # stem + layer1..layer4
        # the 13 entries of `features`, then what is left of `classifier`
        ("torchvision:mobilenet_v3_small", (3, 32, 32), {}, 14),
    ],
)
def test_blocks_per_backbone(name, shape, params, n_blocks):
    if name.startswith("torchvision:"):
        pytest.importorskip("torchvision")  # the vision extra
    module = build_backbone(name, shape, params)
    blocks = backbone_blocks(module)
    assert len(blocks) == n_blocks
    # every parameter belongs to exactly one block
    owned = [id(p) for block in blocks for m in block for p in m.parameters()]
    assert sorted(owned) == sorted(id(p) for p in module.parameters())


def test_torchvision_resnet_stem_is_frozen_first():
    pytest.importorskip("torchvision")  # the vision extra
    module = build_backbone(
        "torchvision:resnet18", (3, 32, 32), {"trainable_blocks": 4}
    )
    frozen = {n for n, p in module.named_parameters() if not p.requires_grad}
    assert frozen == {"model.conv1.weight", "model.bn1.weight", "model.bn1.bias"}
    assert isinstance(module.model.bn1, FrozenBatchNorm2d)


def test_frozen_blocks_and_their_batch_norms():
    module = build_backbone(
        "conv4", SHAPE, {"hidden_channels": 4, "trainable_blocks": 1}
    )
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {f"features.12.{k}" for k in ("weight", "bias")} | {
        f"features.13.{k}" for k in ("weight", "bias")
    }
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [type(m) is FrozenBatchNorm2d for m in norms] == [True] * 3 + [False]
    module.train()
    assert [m.training for m in norms] == [False] * 3 + [True]
    # same state-dict keys as without freezing
    plain = build_backbone("conv4", SHAPE, {"hidden_channels": 4})
    assert module.state_dict().keys() == plain.state_dict().keys()
    # task batch norm leaves frozen norms alone and keeps requires_grad
    use_task_norm(module)
    kinds = [type(m) for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    assert kinds == [FrozenBatchNorm2d] * 3 + [TaskBatchNorm]
    assert {n for n, p in module.named_parameters() if p.requires_grad} == trainable


@pytest.mark.parametrize("bad", [-1, 5, 1.5, True, "2"])
def test_bad_trainable_blocks(bad):
    with pytest.raises(ValueError, match="from 0 to 4"):
        freeze_blocks(Conv4(1, 4), bad)


def test_none_trains_everything():
    module = build_backbone("conv4", SHAPE, {"trainable_blocks": None})
    assert all(p.requires_grad for p in module.parameters())


def _images(n_classes=6, per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    patterns = rng.random((n_classes, int(np.prod(SHAPE))))
    X = patterns[y] + 0.3 * rng.standard_normal((y.size, patterns.shape[1]))
    return X.astype(np.float32), y


FROZEN_KEYS = ("features.0.", "features.1.", "features.4.", "features.5.")


@pytest.mark.parametrize(
    "method, params",
    [
        ("protonet", {}),
        # two steps: the first moves only the shared head
        ("maml", {"inner_steps": 2, "first_order": False}),
        ("metasgd", {"inner_steps": 2}),
        ("reptile", {"inner_steps": 2}),
    ],
)
def test_meta_training_leaves_frozen_weights_bitwise_unchanged(method, params):
    torch.manual_seed(0)
    template = Conv4(1, hidden_channels=4)  # a module instance: its copy trains
    before = {k: v.clone() for k, v in template.state_dict().items()}
    X, y = _images()
    settings = TrainSettings(
        n_way=3,
        k_shot=2,
        n_query=2,
        input_shape=SHAPE,
        method=method,
        method_params=params,
        backbone=template,
        backbone_params={"trainable_blocks": 2},
        max_iter=3,
        meta_batch_size=2,
        learning_rate=0.01,
        seed=0,
    )
    model = meta_train(X, y, settings)
    after = {k.removeprefix("backbone."): v for k, v in model.state.items()}
    for key, value in before.items():
        if key.startswith(FROZEN_KEYS):  # weights and running statistics
            assert torch.equal(after[key], value), key
    moved = [k for k in before if not k.startswith(FROZEN_KEYS)]
    assert any(not torch.equal(after[k], before[k]) for k in moved)
    frozen = model.network().frozen_parameters
    assert frozen == {
        f"backbone.{k}"
        for k in before
        if k.startswith(FROZEN_KEYS) and "running" not in k and "num_batches" not in k
    }
    if method == "metasgd":  # learnt rates only for what adapts
        rates = [k for k in model.state if k.startswith("extra.lr__backbone")]
        assert rates and not any("features__0__" in k for k in rates)


def test_inner_loop_does_not_adapt_frozen_parameters():
    torch.manual_seed(0)
    backbone = build_backbone(
        "conv4", SHAPE, {"hidden_channels": 4, "trainable_blocks": 1}
    )
    net = MetaNet(use_task_norm(backbone), SHAPE, per_feature_scaling=False)
    algorithm = make_algorithm("maml", inner_steps=2)
    for name, value in algorithm.meta_parameters(net, 4, 3).items():
        net.extra[name] = nn.Parameter(value.clone())
    net.requires_grad_(False)  # as a MetaModel's network: frozen set kept
    x = torch.randn(6, 256)
    state = algorithm.adapt(net, x, torch.arange(3).repeat(2), 3)
    assert set(state["weights"]) == {
        f"backbone.features.{i}.{k}" for i in (12, 13) for k in ("weight", "bias")
    }
    assert algorithm.predict(net, state, x).shape == (6, 3)
