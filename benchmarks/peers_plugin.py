"""skmeta's ProtoNet training step as a case of the peers harness (bench_peers.py).

    PY=/tmp/skmeta-peers/venv/bin/python
    $PY /work/shared/peers/bench_peers.py --plugin benchmarks/peers_plugin.py \
        --cases proto_easyfsl,proto_torch,proto_skmeta --rounds 3 --no-check

Case ``proto_skmeta`` is the same setting as the harness's ``proto_easyfsl`` and
``proto_torch``: 20-way 5-shot 5-query training episodes of the harness's seeded
1x28x28 images (``common.proto_episodes``), the max-pool Conv4 (4 x [conv3x3-64,
batchnorm, ReLU, maxpool 2], 64-d embedding, 111,936 parameters) initialised from
the same seed (weights identical to ``common.proto_backbone``'s, checked by
``--check``), Adam(lr=1e-3), 200 images through the network per step.  One step
is what ``skmeta.meta.train._meta_train`` does per iteration: ``ProtoNet().loss``
on a ``TaskBatch`` (one backbone pass on cat(support, query)), finite-loss check,
``zero_grad(set_to_none=True)``, ``backward``, ``Adam.step``, ``loss.item()``.
Its LR schedule is left out (cost ~µs; the peers use a constant 1e-3).
``MetaNet``'s input scaling keeps its identity statistics (mean 0, scale 1), so
the numbers equal ``proto_torch``'s.

Cases ``proto_skmeta_x_<idea>`` prototype speed-ups of that step (same network,
episode and optimizer); see ``IDEAS``.  ``proto_easyfsl_x_nommap`` and
``proto_torch_x_nommap`` give the peers the same run-time malloc setting.  If
skmeta has ``skmeta.meta._malloc.training_malloc`` (the context manager proposed
for ``_meta_train``), ``proto_skmeta`` enters it too, as the training loop would.

    $PY benchmarks/peers_plugin.py --check      # weights, loss equality, training
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4


def mallopt(**settings) -> dict:
    """glibc mallopt at run time; returns {name: ok}."""
    codes = {
        "trim": M_TRIM_THRESHOLD,
        "top_pad": M_TOP_PAD,
        "mmap_threshold": M_MMAP_THRESHOLD,
        "mmap_max": M_MMAP_MAX,
    }
    libc = ctypes.CDLL("libc.so.6")
    return {k: bool(libc.mallopt(codes[k], int(v))) for k, v in settings.items()}


# The glibc settings bench_peers.py --malloc tuned puts in the environment ...
MALLOC_ENV_LIKE = dict(mmap_threshold=32 * 2**20, trim=2**30)
# ... and no mmap at all: the 40 MB layer-1 activations (200x64x28x28 float32) are
# above glibc's 32 MiB ceiling for M_MMAP_THRESHOLD, so they are still mmap()ed,
# page-faulted and zeroed every step with the setting above.
MALLOC_NO_MMAP = dict(mmap_max=0, trim=2**31 - 1)  # mallopt takes a C int


def proposed_conv4_class():
    """The Conv4 change proposed for skmeta/meta/backbones.py, measured as is:
    max-pool before an in-place ReLU (identical values and gradients: ReLU is
    monotone, so relu(maxpool(x)) == maxpool(relu(x))), and channels-last
    activations (parameters stay contiguous NCHW; same state_dict keys)."""
    import torch
    from torch import nn

    from skmeta.meta.backbones import Conv4

    class ProposedConv4(Conv4):
        def __init__(self, in_channels, hidden_channels=64, downsample="maxpool"):
            super().__init__(in_channels, hidden_channels, downsample)
            f = self.features  # [conv, bn, relu, (pool)] x 4
            step = 4 if downsample == "maxpool" else 3
            for i in range(2, len(f), step):
                if downsample == "maxpool":  # -> [conv, bn, pool, relu]
                    f[i], f[i + 1] = f[i + 1], nn.ReLU(inplace=True)
                else:
                    f[i] = nn.ReLU(inplace=True)

        def forward(self, x):
            # .to, not .contiguous: a 1-channel NCHW tensor already counts as
            # channels-last contiguous, and .contiguous would leave its strides
            x = x.to(memory_format=torch.channels_last)
            return self.features(x).flatten(1)

    return ProposedConv4


def skmeta_net(
    args, common, relu_inplace=False, pool_before_relu=False, proposed=False
):
    import torch

    from skmeta.meta.backbones import Conv4
    from skmeta.meta.net import MetaNet

    torch.manual_seed(args.seed)  # same init as common.proto_backbone(args)
    backbone = proposed_conv4_class()(1) if proposed else Conv4(1)
    if relu_inplace or pool_before_relu:
        f = backbone.features  # [conv, bn, relu, pool] x 4
        for i in range(2, len(f), 4):
            f[i] = torch.nn.ReLU(inplace=relu_inplace)
            if pool_before_relu:  # relu(maxpool(x)) == maxpool(relu(x)), grads too
                f[i], f[i + 1] = f[i + 1], f[i]
    return MetaNet(backbone, (1, 28, 28), per_feature_scaling=False)


def task_batches(args, common):
    """The harness's episodes as skmeta TaskBatches (pre-built, like the peers')."""
    from skmeta.meta.algorithms import TaskBatch

    out = []
    for S, SY, Q, QY in common.proto_episodes(args):
        out.append(
            TaskBatch(
                support_x=S.reshape(1, S.shape[0], -1),  # (tasks, rows, 784)
                support_y=SY,  # class-major: arange(N).repeat_interleave(K)
                query_x=Q.reshape(1, Q.shape[0], -1),
                query_y=QY,
                n_way=args.proto_ways,
            )
        )
    return out


_HELD = []


def make_skmeta_step(
    args,
    common,
    channels_last=False,
    malloc=None,
    compile=False,
    fused_adam=False,
    relu_inplace=False,
    pool_before_relu=False,
    proposed=False,
    on_loss=None,
):
    import torch

    from skmeta.meta.algorithms import ProtoNet

    if malloc:
        mallopt(**malloc)
    # _meta_train's allocator setting around its loop, once skmeta has one
    # (proposed: skmeta.meta._malloc.training_malloc); held for the process.
    try:
        from skmeta.meta._malloc import training_malloc
    except ImportError:
        training_malloc = None
    if training_malloc is not None:
        _HELD.append(training_malloc())
        _HELD[-1].__enter__()
    net = skmeta_net(args, common, relu_inplace, pool_before_relu, proposed)
    if channels_last:  # conv weights NHWC: mkldnn then keeps activations NHWC
        net.backbone.to(memory_format=torch.channels_last)
    net.train()
    algo = ProtoNet()
    opt = torch.optim.Adam(
        net.parameters(), lr=args.meta_lr, **({"fused": True} if fused_adam else {})
    )
    model = torch.compile(net) if compile else net
    data = common.cycle(task_batches(args, common))

    def step():  # skmeta.meta.train._meta_train, one iteration
        model.train()
        loss, metrics = algo.loss(model, next(data))
        if not torch.isfinite(loss):
            raise FloatingPointError(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if on_loss is not None:
            on_loss(value)

    step.net = net
    return step


IDEAS = {
    "mallopt": dict(malloc=MALLOC_ENV_LIKE),
    "nommap": dict(malloc=MALLOC_NO_MMAP),
    "cl": dict(channels_last=True),
    "inplace": dict(relu_inplace=True),
    "poolrelu": dict(pool_before_relu=True),
    "poolrelu_inplace": dict(pool_before_relu=True, relu_inplace=True),
    "fusedadam": dict(fused_adam=True),
    "compile": dict(compile=True),
    "cl_poolrelu_inplace": dict(
        channels_last=True, pool_before_relu=True, relu_inplace=True
    ),
    "compile_cl": dict(compile=True, channels_last=True),
    "proposed": dict(proposed=True),
    "proposed_nommap": dict(proposed=True, malloc=MALLOC_NO_MMAP),
    "best": dict(
        malloc=MALLOC_NO_MMAP,
        channels_last=True,
        pool_before_relu=True,
        relu_inplace=True,
    ),
}


def register(add_case, common):
    d = common.DEFAULTS
    setting = (
        f"ProtoNet {d['proto_ways']}w{d['proto_shots']}s{d['proto_queries']}q train"
    )

    def builder(**kw):
        return lambda args: make_skmeta_step(args, common, **kw)

    add_case(
        "proto_skmeta",
        "proto",
        "skmeta ProtoNet.loss + Adam",
        setting,
        builder(),
        "tasks/s",
        1,
    )
    for name, kw in IDEAS.items():
        add_case(
            "proto_skmeta_x_" + name,
            "proto",
            "skmeta + " + name,
            setting,
            builder(**kw),
            "tasks/s",
            1,
        )

    def with_malloc(build, settings):
        def b(args):
            mallopt(**settings)
            return build(args)

        return b

    add_case(
        "proto_easyfsl_x_nommap",
        "proto",
        "easyfsl + nommap",
        setting,
        with_malloc(common.build_proto_easyfsl, MALLOC_NO_MMAP),
        "tasks/s",
        1,
        needs_tv_shim=True,
    )
    add_case(
        "proto_torch_x_nommap",
        "proto",
        "plain torch + nommap",
        setting,
        with_malloc(common.build_proto_torch, MALLOC_NO_MMAP),
        "tasks/s",
        1,
    )


def _check(n_steps: int) -> None:
    """Same weights as the harness's backbone, same first loss, and the loss falls."""
    import argparse
    import time

    import torch

    peers = os.environ.get("SKMETA_PEERS_DIR", "/work/shared/peers")
    sys.path.insert(0, peers)
    import bench_peers as common

    args = argparse.Namespace(**common.DEFAULTS)
    torch.set_num_threads(args.threads)
    ref = common.proto_backbone(args)
    net = skmeta_net(args, common)
    a = [p for p in ref.state_dict().values()]
    b = [p for p in net.backbone.state_dict().values()]
    same = len(a) == len(b) and all(
        x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=True)
    )
    n_params = sum(p.numel() for p in net.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    print(
        f"weights identical to common.proto_backbone: {same} "
        f"({n_params} parameters, {n_ref} in harness)"
    )
    # first-step loss: skmeta vs the harness's plain-torch formula
    from skmeta.meta.algorithms import ProtoNet

    S, SY, Q, QY = common.proto_episodes(args)[0]
    N, K = args.proto_ways, args.proto_shots
    z = ref.train()(torch.cat([S, Q], 0))
    protos = z[: N * K].view(N, K, -1).mean(1)
    ref_loss = torch.nn.functional.cross_entropy(
        -(z[N * K :].unsqueeze(1) - protos.unsqueeze(0)).pow(2).sum(-1), QY
    ).item()
    sk_loss = ProtoNet().loss(net.train(), task_batches(args, common)[0])[0].item()
    print(f"first loss: skmeta {sk_loss:.6f}, plain torch {ref_loss:.6f}")
    # The proposed Conv4 computes the same function: weight gradients of one
    # episode against skmeta's Conv4 in float64, and both float32 versions' error.
    # (Conv biases are left out: before a train-mode batchnorm their true gradient
    # is exactly 0, so what float32 gives there is round-off.)
    from skmeta.meta.algorithms import TaskBatch

    b32 = task_batches(args, common)[0]
    b64 = TaskBatch(
        b32.support_x.double(),
        b32.support_y,
        b32.query_x.double(),
        b32.query_y,
        b32.n_way,
    )

    def weight_grads(proposed, batch, double):
        n = skmeta_net(args, common, proposed=proposed).train()
        n = n.double() if double else n
        ProtoNet().loss(n, batch)[0].backward()
        return [p.grad.double() for k, p in n.named_parameters() if "weight" in k]

    def rel(a, b):
        pairs = zip(a, b, strict=True)
        return max(((x - y).norm() / x.norm()).item() for x, y in pairs)

    ref = weight_grads(False, b64, True)
    e64 = rel(ref, weight_grads(True, b64, True))
    e32 = rel(ref, weight_grads(False, b32, False))
    e32p = rel(ref, weight_grads(True, b32, False))
    print(
        "weight gradients, max relative difference to skmeta's Conv4 in float64: "
        f"proposed Conv4 float64 {e64:.0e}; float32: skmeta's Conv4 {e32:.1e}, "
        f"proposed {e32p:.1e}"
    )
    for name, kw in [("skmeta", {}), ("proposed", IDEAS["proposed"])]:
        losses = []
        step = make_skmeta_step(args, common, on_loss=losses.append, **kw)
        t = time.perf_counter()
        for _ in range(n_steps):
            step()
        dt = time.perf_counter() - t
        k = max(1, n_steps // 10)
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        print(
            f"{name:<18} mean loss of the first {k} steps {first:.4f} -> of the last "
            f"{k} {last:.4f}  ({n_steps} steps, {n_steps / dt:.1f} steps/s)"
        )


if __name__ == "__main__":
    if "--check" not in sys.argv:
        sys.exit(__doc__)
    _check(int(sys.argv[sys.argv.index("--check") + 1]) if len(sys.argv) > 2 else 300)
