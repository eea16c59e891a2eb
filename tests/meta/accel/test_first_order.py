"""Once-differentiable Conv4 query passes (skmeta.meta.accel.first_order) equal the
modules' forward and gradients, and keep less alive."""

import pytest
import torch
from maml_helpers import classification_batch
from torch import nn
from torch.func import functional_call

from skmeta.meta import accel
from skmeta.meta.accel import meta_gradient as grouping
from skmeta.meta.accel.first_order import first_order_embed, supports_first_order_embed
from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.backbones import MLP, Conv4
from skmeta.meta.net import MetaNet
from skmeta.meta.norm import norm_statistics, use_task_norm
from skmeta.meta.train import meta_gradient

SHAPE = (2, 16, 16)


def _net(downsample, task_norm, affine=True, seed=0):
    torch.manual_seed(seed)
    backbone = Conv4(SHAPE[0], hidden_channels=5, downsample=downsample)
    for m in backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.affine = affine
            if not affine:
                m.weight = m.bias = None
    if task_norm:
        use_task_norm(backbone)
    else:  # batch statistics, no running averages (the MAML paper's)
        for m in backbone.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
    net = MetaNet(backbone, SHAPE, per_feature_scaling=True)
    net.input_mean.normal_()
    net.input_scale.uniform_(0.5, 2.0)
    for p in net.backbone.parameters():  # away from the identity batch norm
        p.data.add_(0.2 * torch.randn_like(p))
    return net.double().train()


def _close(actual, expected, scale):
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12 * float(scale))


@pytest.mark.parametrize(
    "downsample",
    [
        "strided",
        "maxpool",
        ("maxpool", "strided", "maxpool", "strided"),
        ("strided", "strided", "none", "none"),
    ],
)
@pytest.mark.parametrize("task_norm", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_embedding_and_gradients_equal_the_modules(downsample, task_norm, affine):
    net = _net(downsample, task_norm, affine)
    assert supports_first_order_embed(net)
    g = torch.Generator().manual_seed(1)
    width = torch.Size(SHAPE).numel()
    weights = {  # a task's adapted weights; the last conv stays the network's
        f"backbone.{name}": (
            p.detach() + 0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype)
        ).requires_grad_()
        for name, p in list(net.backbone.named_parameters())[:-1]
    }
    stats = None
    if task_norm:  # support statistics, differentiated too (second-order MAML)
        support = torch.randn(7, width, generator=g, dtype=torch.float64)
        with norm_statistics() as captured:
            functional_call(net, weights, (support,), strict=False)
        stats = [
            (m.detach().requires_grad_(), v.detach().requires_grad_())
            for m, v in captured
        ]
    x = torch.randn(11, width, generator=g, dtype=torch.float64)
    inputs = [*weights.values(), *net.parameters()]
    inputs += [t for pair in stats for t in pair] if stats else []
    inputs = [t for t in inputs if t.requires_grad]

    with norm_statistics(stats):
        expected = functional_call(net, weights, (x,), strict=False)
    actual = first_order_embed(net, weights, x, stats)
    _close(actual.detach(), expected.detach(), expected.detach().abs().max())

    v = torch.randn(expected.shape, generator=g, dtype=torch.float64)
    want = torch.autograd.grad((expected * v).sum(), inputs, allow_unused=True)
    got = torch.autograd.grad((actual * v).sum(), inputs, allow_unused=True)
    scale = max(w.abs().max() for w in want if w is not None)
    for w, a in zip(want, got, strict=True):
        if w is None:  # e.g. a conv bias the next batch norm cancels
            assert a is None or a.abs().max() < 1e-12 * scale
        else:
            _close(a, w, scale)


def test_second_derivative_is_refused():
    net = _net("strided", task_norm=False)
    weights = {
        f"backbone.{name}": p.detach().clone().requires_grad_()
        for name, p in net.backbone.named_parameters()
    }
    x = torch.randn(6, torch.Size(SHAPE).numel(), dtype=torch.float64)
    out = first_order_embed(net, weights, x).square().sum()
    (grad,) = torch.autograd.grad(
        out, [weights["backbone.features.1.weight"]], create_graph=True
    )
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        grad.sum().backward()


def test_only_conv4_with_batch_or_task_statistics():
    assert not supports_first_order_embed(
        MetaNet(MLP(4, hidden_sizes=(3,), out_features=2), (4,), True)
    )
    running = MetaNet(Conv4(1, hidden_channels=3), (1, 8, 8), False)
    assert not supports_first_order_embed(running)  # running averages to update
    changed = _net("strided", task_norm=True)
    changed.backbone.features.append(nn.Tanh())
    assert not supports_first_order_embed(changed)


@pytest.mark.parametrize("method", ["maml", "metasgd", "anil", "protomaml"])
@pytest.mark.parametrize("task_norm", [False, True])
@pytest.mark.parametrize("group_size", [1, 4])
def test_meta_gradient_equals_the_module_query_pass(
    method, task_norm, group_size, monkeypatch
):
    """Second-order meta-gradients, task by task and in groups."""
    monkeypatch.setattr(grouping, "GROUP_SIZE", group_size)
    algorithm = make_algorithm(method, inner_lr=0.3, inner_steps=2)
    batch = classification_batch(4, torch.Size(SHAPE).numel(), seed=2)
    accel.find("embed_once", None)  # the built-in paths registered
    fused_paths = accel._PATHS["embed_once"]

    def gradient(fused):
        monkeypatch.setitem(accel._PATHS, "embed_once", fused_paths if fused else [])
        net = _net("strided", task_norm)
        for name, value in algorithm.meta_parameters(
            net, net.embedding_dim(), 3
        ).items():
            net.extra[name] = nn.Parameter(
                value.double() + 0.3 * torch.randn_like(value.double())
            )
        net.zero_grad()
        loss, _ = meta_gradient(algorithm, net, batch, n_jobs=1)
        return loss, [p.grad for p in net.parameters() if p.grad is not None]

    loss_fused, fused = gradient(True)
    loss_modules, modules = gradient(False)
    assert loss_fused == pytest.approx(loss_modules, rel=1e-12)
    assert len(fused) == len(modules) > 0
    scale = max(g.abs().max() for g in modules)
    for a, b in zip(fused, modules, strict=True):
        _close(a, b, scale)


@pytest.mark.parametrize("task_norm", [False, True])
def test_query_pass_saves_less_for_backward(task_norm):
    """What the graph keeps for the backward pass, in bytes: the fused batch
    norm keeps its input and (with the ReLU) its output, where a task batch
    norm's four elementwise ops keep an activation each. (Plain batch norm
    keeps as much as torch's; its saving is in the backward's buffers, which
    the benchmark measures.)"""
    net = _net("strided", task_norm)
    weights = {
        f"backbone.{name}": p.detach().clone().requires_grad_()
        for name, p in net.backbone.named_parameters()
    }
    x = torch.randn(20, torch.Size(SHAPE).numel(), dtype=torch.float64)
    stats = None
    if task_norm:
        with norm_statistics() as captured:
            functional_call(net, weights, (x[:5],), strict=False)
        stats = [
            (m.detach().requires_grad_(), v.detach().requires_grad_())
            for m, v in captured
        ]

    def saved_bytes(run):
        seen = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run()
        return sum(seen.values())

    def modules():
        with norm_statistics(stats):
            return functional_call(net, weights, (x,), strict=False)

    fused = saved_bytes(lambda: first_order_embed(net, weights, x, stats))
    plain = saved_bytes(modules)
    assert fused < plain if task_norm else fused == plain


@pytest.mark.parametrize("downsample", ["strided", "maxpool"])
def test_gradient_of_the_embedding_is_left_alone(downsample):
    """The gradient reaching the embedding belongs to the caller: it may be a
    broadcast view (of a sum) or shared with another branch (of an addition)."""
    net = _net(downsample, task_norm=False)
    weights = {
        f"backbone.{name}": p.detach().clone().requires_grad_()
        for name, p in net.backbone.named_parameters()
    }
    x = torch.randn(8, torch.Size(SHAPE).numel(), dtype=torch.float64)
    want = torch.autograd.grad(
        functional_call(net, weights, (x,), strict=False).sum(), list(weights.values())
    )
    got = torch.autograd.grad(
        first_order_embed(net, weights, x).sum(), list(weights.values())
    )
    for w, a in zip(want, got, strict=True):
        _close(a, w, max(g.abs().max() for g in want))
    other = torch.zeros(8, net.embedding_dim(), dtype=torch.float64, requires_grad=True)
    (first_order_embed(net, weights, x) + other).sum().backward()
    assert torch.equal(other.grad, torch.ones_like(other))


def test_shared_parameters_reach_the_fused_node_as_views(monkeypatch):
    """`Function.apply` locks each leaf it gets while holding the GIL; torch's
    ops lock it without the GIL and may then wait for the GIL. Worker threads
    sharing a parameter (ANIL's body, a shared last layer) could deadlock, so
    the fused node gets views of leaves, never the leaves."""
    from skmeta.meta.accel import first_order

    seen = []
    apply = first_order._NormReLU.apply

    def spy(*args):
        seen.extend(a for a in args if isinstance(a, torch.Tensor))
        return apply(*args)

    monkeypatch.setattr(first_order._NormReLU, "apply", spy)
    net = _net("strided", task_norm=False)
    x = torch.randn(6, torch.Size(SHAPE).numel(), dtype=torch.float64)
    first_order_embed(net, {}, x).sum().backward()  # the network's own parameters
    assert seen and all(t.grad_fn is not None for t in seen if t.requires_grad)
    assert all(
        p.grad is not None for n, p in net.backbone.named_parameters() if "1." in n
    )


class _CudaRuleAten:
    """torch.ops.aten whose batch-norm backward refuses, as CUDA's kernel
    does (``save_mean should always be defined``), missing saved statistics
    when the input gradient is not asked for."""

    def __getattr__(self, name):
        op = getattr(torch.ops.aten, name)
        if name != "native_batch_norm_backward":
            return op

        def checked(grad, x, weight, r_mean, r_var, s_mean, s_invstd, *rest):
            if not rest[-1][0] and (s_mean is None or s_invstd is None):
                raise RuntimeError("save_mean should always be defined (CUDA)")
            return op(grad, x, weight, r_mean, r_var, s_mean, s_invstd, *rest)

        return checked


def test_task_batch_norm_backward_passes_cudas_kernel_rule(monkeypatch):
    """The eval-mode branch (task statistics, every MAML-family method on
    Conv4) gave no saved statistics, which CPU's kernel ignores and CUDA's
    asserts: MAML on a GPU crashed at its first iteration (a reviewer's
    reading of Normalization.cu; no GPU here)."""
    import numpy as np

    from skmeta.meta import train
    from skmeta.meta.accel import first_order

    monkeypatch.setattr(first_order, "_aten", _CudaRuleAten())
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (60, 2 * 16 * 16)).astype(np.uint8)
    settings = train.TrainSettings(
        n_way=3, k_shot=1, n_query=2, input_shape=SHAPE, method="maml",
        method_params={"inner_steps": 1}, backbone="conv4", max_iter=2,
    )  # fmt: skip
    model = train.meta_train(X, np.repeat(np.arange(6), 10), settings)
    assert model.config["training"]["n_iter"] == 2
