"""Tasks adapted together (skmeta.meta.accel.grouped, .meta_gradient) equal
tasks adapted one by one, and the reference meta-gradient."""

import pytest
import torch
import torch.nn.functional as F
from maml_helpers import GRADIENT_METHODS, classification_batch
from torch import nn

from skmeta.meta import accel
from skmeta.meta.accel import meta_gradient as grouping
from skmeta.meta.accel.grouped import grouped_embed, supports_grouped
from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.backbones import MLP, Conv4
from skmeta.meta.net import MetaNet, widest_activations
from skmeta.meta.norm import norm_statistics, use_task_norm
from skmeta.meta.train import meta_gradient

SHAPES = {
    "conv4": (1, 16, 16),
    "conv4_strided": (2, 8, 8),
    "conv4_mixed": (1, 16, 16),  # max-pool first, strides, a block kept at 2x2
    "mlp": (5,),
}
DOWNSAMPLE = {
    "conv4": "maxpool",
    "conv4_strided": "strided",
    "conv4_mixed": ("maxpool", "strided", "strided", "none"),
}


def _backbone(kind, task_norm=True):
    if kind == "mlp":
        backbone = MLP(5, hidden_sizes=(7,), out_features=4)
    else:
        backbone = Conv4(
            SHAPES[kind][0], hidden_channels=3, downsample=DOWNSAMPLE[kind]
        )
    if task_norm:
        use_task_norm(backbone)
    else:  # batch statistics in every pass, no running averages
        for m in backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
    return backbone


def _net(kind, algorithm=None, task_norm=True, seed=0):
    torch.manual_seed(seed)
    net = MetaNet(_backbone(kind, task_norm), SHAPES[kind], per_feature_scaling=True)
    net.input_mean.normal_()
    net.input_scale.uniform_(0.5, 2.0)
    for p in net.backbone.parameters():  # away from the identity batch norm
        p.data.add_(0.1 * torch.randn_like(p))
    if algorithm is not None:
        dim = net.embedding_dim()
        for name, value in algorithm.meta_parameters(net, dim, 3).items():
            net.extra[name] = nn.Parameter(value + 0.3 * torch.randn_like(value))
    return net.double().train()


def _batch(kind, n_tasks, regression=False, seed=1):
    width = torch.Size(SHAPES[kind]).numel()
    if not regression:
        return classification_batch(n_tasks, width, seed)
    g = torch.Generator().manual_seed(seed)

    def rows(n):
        return torch.randn(n_tasks, n, width, generator=g, dtype=torch.float64)

    targets = torch.randn(n_tasks, 10, generator=g, dtype=torch.float64)
    return TaskBatch(rows(4), targets[:, :4], rows(6), targets[:, 4:], n_way=1)


@pytest.mark.parametrize("kind", list(SHAPES))
@pytest.mark.parametrize("task_norm", [True, False])
def test_grouped_embeddings_and_statistics_equal_task_by_task(kind, task_norm):
    net = _net(kind, task_norm=task_norm)
    assert supports_grouped(net)
    x = _batch(kind, n_tasks=3).support_x
    g = torch.Generator().manual_seed(2)
    named = list(net.backbone.named_parameters())
    weights = {  # per-task values of every parameter but the last, shared
        f"backbone.{name}": p.detach().expand(3, *p.shape)
        + 0.3 * torch.randn(3, *p.shape, generator=g, dtype=p.dtype)
        for name, p in named[:-1]
    }
    emb, stats = grouped_embed(net, weights, x)
    for task in range(3):
        with norm_statistics() as captured:
            expected = torch.func.functional_call(
                net, {k: w[task] for k, w in weights.items()}, (x[task],), strict=False
            )
        torch.testing.assert_close(emb[task], expected, rtol=1e-12, atol=1e-12)
        assert len(stats) == len(captured) == (4 * task_norm if kind != "mlp" else 0)
        for (mean, var), (m, v) in zip(stats, captured, strict=True):
            torch.testing.assert_close(mean[task], m, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(var[task], v, rtol=1e-12, atol=1e-12)


def test_other_backbones_and_running_statistics_are_not_grouped():
    custom = MetaNet(nn.Sequential(nn.Linear(5, 3)), (5,), per_feature_scaling=False)
    assert not supports_grouped(custom)
    net = MetaNet(Conv4(1, hidden_channels=3), (1, 8, 8), per_feature_scaling=False)
    assert not supports_grouped(net)  # plain batch norm with running averages
    mutated = _net("conv4_strided")
    mutated.backbone.features.append(nn.Tanh())  # a layer grouped_embed lacks
    assert not supports_grouped(mutated)
    mlp = _net("mlp")
    mlp.backbone.layers.insert(1, nn.BatchNorm1d(7))
    assert not supports_grouped(mlp)


@pytest.mark.parametrize("kind", ["conv4_strided", "mlp"])
@pytest.mark.parametrize(
    "method, settings",
    [(m, {}) for m in GRADIENT_METHODS]
    + [("protomaml", {"first_order": True}), ("metasgd", {"inner_steps": 1})],
)
def test_grouped_meta_gradient_equals_task_by_task(kind, method, settings, monkeypatch):
    _check_grouped_meta_gradient(kind, method, settings, monkeypatch)


@pytest.mark.parametrize(
    "kind, method, task_norm, fixed_way",
    [
        ("conv4", "maml", True, False),  # max-pool
        ("conv4_strided", "maml", False, True),  # the MAML paper's network
        ("conv4_strided", "protomaml", False, False),
        ("conv4_strided", "anil", False, True),
        ("mlp", "metasgd", True, True),
    ],
)
def test_grouped_meta_gradient_other_networks(
    kind, method, task_norm, fixed_way, monkeypatch
):
    _check_grouped_meta_gradient(
        kind, method, {}, monkeypatch, task_norm=task_norm, fixed_way=fixed_way
    )


def _check_grouped_meta_gradient(
    kind, method, settings, monkeypatch, task_norm=True, fixed_way=False
):
    settings = {"inner_lr": 0.3, "inner_steps": 2, **settings}
    algorithm = make_algorithm(method, **settings)
    net, batch = _net(kind, algorithm, task_norm=task_norm), _batch(kind, n_tasks=5)
    if fixed_way:  # one head row per way (Finn et al.)
        torch.manual_seed(3)
        dim = net.extra["head_weight"].shape[-1]
        net.extra["head_weight"] = nn.Parameter(torch.randn(3, dim).double())
        net.extra["head_bias"] = nn.Parameter(torch.randn(3).double())
    with accel.disabled():  # the reference
        loss, metrics = algorithm.loss(net, batch)
    loss.backward()
    expected = [p.grad.clone() for p in net.parameters()]
    path = accel.find("meta_gradient", algorithm)
    assert (path is grouping.grouped_meta_gradient) == (method != "reptile")
    for workers in (1, 2, 3):
        assert grouping.group_size(net, batch, workers) > 1
        for p in net.parameters():
            p.grad = None
        value, got = meta_gradient(algorithm, net, batch, n_jobs=workers)
        assert value == pytest.approx(loss.item(), rel=1e-10)
        assert got == pytest.approx(metrics, rel=1e-6)  # float32 accuracy
        for a, p in zip(expected, net.parameters(), strict=True):
            torch.testing.assert_close(p.grad, a, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["maml", "metasgd", "fomaml"])
def test_grouped_regression_meta_gradient_equals_task_by_task(method, monkeypatch):
    algorithm = make_algorithm(method, inner_lr=0.05, inner_steps=2, regression=True)
    net, batch = _net("mlp", algorithm), _batch("mlp", n_tasks=4, regression=True)
    with accel.disabled():
        loss, _ = algorithm.loss(net, batch)
    loss.backward()
    expected = [p.grad.clone() for p in net.parameters()]
    assert grouping.group_size(net, batch, 2) == 2
    for p in net.parameters():
        p.grad = None
    meta_gradient(algorithm, net, batch, n_jobs=2)
    for a, p in zip(expected, net.parameters(), strict=True):
        torch.testing.assert_close(p.grad, a, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "backbone, shape",
    [
        (Conv4(1), (1, 28, 28)),
        (Conv4(3, downsample="strided"), (3, 21, 17)),
        (MLP(10, hidden_sizes=(33, 12), out_features=8), (10,)),
    ],
)
def test_widest_activation_is_the_widest_layer_output_per_row(backbone, shape):
    net = MetaNet(use_task_norm(backbone), shape, per_feature_scaling=False)
    sizes = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.register_forward_hook(lambda m, i, out: sizes.append(out[0].numel()))
    net(torch.zeros(2, torch.Size(shape).numel()))
    assert widest_activations(net)[0] == max(sizes)


def test_group_size_follows_workers_cap_and_activation_budget(monkeypatch):
    net = _net("conv4_strided", make_algorithm("maml"))
    batch = _batch("conv4_strided", n_tasks=32)  # 6 support rows of 3 x 4 x 4
    assert widest_activations(net)[0] == 48
    assert grouping.group_size(net, batch, 2) == 4  # GROUP_SIZE
    assert grouping.group_size(net, batch, 16) == 2  # 32 tasks / 16 workers
    # three tasks' widest support activations
    monkeypatch.setattr(grouping, "GROUP_BUDGET", 6 * 48 * 3)
    assert grouping.group_size(net, batch, 2) == 3
    monkeypatch.setattr(grouping, "GROUP_BUDGET", 6 * 48 - 1)  # not even one
    assert grouping.group_size(net, batch, 2) == 1
    with accel.disabled():  # no grouped path: task by task
        monkeypatch.setattr(grouping, "GROUP_BUDGET", 2**21)
        assert grouping.group_size(net, batch, 2) == 1


@pytest.mark.parametrize(
    "n_tasks, workers, expected",
    [
        (32, 2, [4] * 8),
        (12, 2, [3, 3, 3, 3]),  # not 4, 4, 4: 8 tasks for one worker
        (10, 2, [2, 3, 2, 3]),
        (3, 2, [1, 2]),
        (5, 1, [2, 3]),
    ],
)
def test_groups_keep_the_workers_balanced(n_tasks, workers, expected, monkeypatch):
    algorithm = make_algorithm("maml")
    net, batch = _net("mlp", algorithm), _batch("mlp", n_tasks=n_tasks)
    sizes = []
    real = grouping._group_gradients

    def spy(algorithm, net, named, params, batch, tasks):
        sizes.append((tasks.start, len(tasks)))
        return real(algorithm, net, named, params, batch, tasks)

    monkeypatch.setattr(grouping, "_group_gradients", spy)
    meta_gradient(algorithm, net, batch, n_jobs=workers)
    assert [size for _, size in sorted(sizes)] == expected


def test_meta_gradient_equals_a_plain_second_order_loop(monkeypatch):
    # An independent reference: MAML written out with functional_call, task by
    # task, none of skmeta's inner-loop code.
    algorithm = make_algorithm("maml", inner_lr=0.3, inner_steps=2)
    net = _net("conv4_strided", algorithm, task_norm=False)
    batch = _batch("conv4_strided", n_tasks=6)
    params = dict(net.named_parameters())
    total = 0
    for task in range(6):
        weights = {k: v for k, v in params.items() if k.startswith("backbone.")}
        head_w = params["extra.head_weight"].expand(3, -1)
        head_b = params["extra.head_bias"].expand(3)
        for _ in range(2):
            emb = torch.func.functional_call(net, weights, (batch.support_x[task],))
            loss = F.cross_entropy(F.linear(emb, head_w, head_b), batch.support_y)
            grads = torch.autograd.grad(
                loss, [*weights.values(), head_w, head_b], create_graph=True
            )
            weights = {
                k: v - 0.3 * g
                for (k, v), g in zip(weights.items(), grads, strict=False)
            }
            head_w, head_b = head_w - 0.3 * grads[-2], head_b - 0.3 * grads[-1]
        emb = torch.func.functional_call(net, weights, (batch.query_x[task],))
        outputs = F.linear(emb, head_w, head_b)
        total = total + F.cross_entropy(outputs, batch.query_y) / 6
    expected = torch.autograd.grad(total, list(params.values()))
    assert grouping.group_size(net, batch, 2) == 3
    meta_gradient(algorithm, net, batch, n_jobs=2)
    for a, p in zip(expected, params.values(), strict=True):
        torch.testing.assert_close(p.grad, a, rtol=1e-9, atol=1e-12)
