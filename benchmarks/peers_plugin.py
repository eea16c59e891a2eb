"""skmeta's ProtoNet training step as a case of the peers harness (bench_peers.py).

    PY=/tmp/skmeta-peers/venv/bin/python
    $PY /work/shared/peers/bench_peers.py --plugin benchmarks/peers_plugin.py \
        --cases proto_easyfsl,proto_torch,proto_skmeta --rounds 3 --no-check

Case ``proto_skmeta`` is the same setting as the harness's ``proto_easyfsl`` and
``proto_torch``: 20-way 5-shot 5-query training episodes of the harness's seeded
1x28x28 images (``common.proto_episodes``), the max-pool Conv4 (64-d embedding,
111,936 parameters), Adam(lr=1e-3), 200 images through the network per step.
The harness's network (``common.proto_backbone``) is the textbook 4 x [conv3x3-64,
batchnorm, ReLU, maxpool 2] in NCHW; skmeta's ``Conv4`` is 4 x [conv3x3-64,
batchnorm, maxpool 2, ReLU (in place)] with channels-last activations. That is
the same function (ReLU is monotone, so relu(maxpool(x)) == maxpool(relu(x)),
gradients included), and the same parameters in the same order (pool and ReLU
have none), so the same seed gives the same weights: ``--check`` verifies the
weights, the embeddings and the weight gradients in float64.  One step is what
``skmeta.meta.train._meta_train`` does per iteration: ``ProtoNet().loss`` on a
``TaskBatch`` (a backbone pass on the support, one on the query, as easyfsl
does), finite-loss check,
``zero_grad(set_to_none=True)``, ``backward``, ``Adam.step``, ``loss.item()``.
Its LR schedule is left out (cost ~µs; the peers use a constant 1e-3).
``MetaNet``'s input scaling keeps its identity statistics (mean 0, scale 1), so
the numbers equal a two-pass ``proto_torch``'s.

Cases ``proto_skmeta_x_<idea>`` vary that step (same weights, episode and
optimizer); see ``IDEAS``. ``proto_skmeta_x_textbook`` runs skmeta's step on the
harness's own textbook-order NCHW network: what skmeta's Conv4 layout gains.
``proto_easyfsl_x_nommap`` and ``proto_torch_x_nommap`` give the peers the same
run-time malloc setting. ``proto_skmeta`` runs as skmeta's training loop does
by default, with glibc left alone; ``proto_skmeta_x_malloc`` with skmeta's
opt-in allocator setting (``skmeta.meta.accel.malloc``, ``SKMETA_MALLOC=1``).

    $PY benchmarks/peers_plugin.py --check [STEPS]   # same function; loss falls
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


def skmeta_net(args, common, textbook=False):
    """MetaNet around skmeta's Conv4, or (`textbook`) around the harness's own
    network; either way with the weights of ``common.proto_backbone``."""
    import torch

    from skmeta.meta.backbones import Conv4
    from skmeta.meta.net import MetaNet

    if textbook:
        backbone = common.proto_backbone(args)  # seeds itself
    else:
        torch.manual_seed(args.seed)  # same init as common.proto_backbone(args)
        backbone = Conv4(1)
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
    textbook=False,
    on_loss=None,
    skmeta_malloc=False,
):
    import torch

    from skmeta.meta.algorithms import ProtoNet

    if malloc:
        mallopt(**malloc)
    if skmeta_malloc:  # skmeta's opt-in allocator setting, held for the process
        from skmeta.meta.accel.malloc import malloc_tuning, set_malloc_tuning

        set_malloc_tuning(True)
        _HELD.append(malloc_tuning())
        _HELD[-1].__enter__()
    net = skmeta_net(args, common, textbook)
    if channels_last:  # conv weights NHWC too (Conv4's activations already are)
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
    "fusedadam": dict(fused_adam=True),
    "compile": dict(compile=True),
    "compile_cl": dict(compile=True, channels_last=True),
    "textbook": dict(textbook=True),
    "malloc": dict(skmeta_malloc=True),
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


def _check(n_steps: int) -> int:
    """skmeta's Conv4 against the harness's network: the same weights, the same
    function (embeddings and weight gradients in float64), and the loss falls."""
    import argparse
    import time

    import torch

    peers = os.environ.get("SKMETA_PEERS_DIR", "/work/shared/peers")
    sys.path.insert(0, peers)
    import bench_peers as common

    from skmeta.meta.algorithms import ProtoNet, TaskBatch

    n_steps = max(n_steps, 2)  # one untimed warm-up step
    args = argparse.Namespace(**common.DEFAULTS)
    torch.set_num_threads(args.threads)
    ref = common.proto_backbone(args)
    net = skmeta_net(args, common)
    print("harness:", " -> ".join(type(m).__name__ for m in list(ref)[:4]), "(x 4)")
    print(
        "skmeta: ",
        " -> ".join(type(m).__name__ for m in list(net.backbone.features)[:4]),
        "(x 4, channels-last)",
    )
    a = list(ref.state_dict().values())
    b = list(net.backbone.state_dict().values())
    same = len(a) == len(b) and all(
        x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=True)
    )
    n_params = sum(p.numel() for p in net.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    print(
        f"weights identical to common.proto_backbone: {same} "
        f"({n_params} parameters, {n_ref} in harness)"
    )

    S, SY, Q, QY = common.proto_episodes(args)[0]
    N, K = args.proto_ways, args.proto_shots
    b32 = task_batches(args, common)[0]

    def harness_loss(model, dtype):
        """ProtoNet's loss on the first episode, support and query in two passes
        as easyfsl runs them (``build_proto_torch`` makes one pass on both)."""
        z = torch.cat([model(S.to(dtype)), model(Q.to(dtype))])
        protos = z[: N * K].view(N, K, -1).mean(1)
        logits = -(z[N * K :].unsqueeze(1) - protos.unsqueeze(0)).pow(2).sum(-1)
        return torch.nn.functional.cross_entropy(logits, QY), z

    def gradients(which, dtype):
        """Embeddings of the episode and all parameter gradients of its loss."""
        if which == "harness":
            model = common.proto_backbone(args).to(dtype).train()
            loss, z = harness_loss(model, dtype)
            params = list(model.parameters())
        else:
            model = skmeta_net(args, common, textbook=which == "textbook")
            model = model.to(dtype).train()
            batch = TaskBatch(
                b32.support_x.to(dtype),
                b32.support_y,
                b32.query_x.to(dtype),
                b32.query_y,
                b32.n_way,
            )
            loss = ProtoNet().loss(model, batch)[0]
            z = torch.cat([model(batch.support_x[0]), model(batch.query_x[0])])
            params = list(model.backbone.parameters())
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in params]).double()
        return loss.item(), z.detach().double(), grads

    def rel(x, y):
        return ((x - y).norm() / y.norm()).item()

    loss64, z64, g64 = gradients("harness", torch.float64)
    sk_loss64, sk_z64, sk_g64 = gradients("skmeta", torch.float64)
    z_err, g_err = rel(sk_z64, z64), rel(sk_g64, g64)
    print(
        f"float64, skmeta vs harness: first loss {sk_loss64:.12f} / {loss64:.12f}, "
        f"embeddings {z_err:.1e}, gradients {g_err:.1e} (relative)"
    )
    # float32: each implementation's error against the float64 result.
    errors = {
        which: rel(gradients(which, torch.float32)[2], g64)
        for which in ("harness", "skmeta", "textbook")
    }
    print(
        "float32 gradients, relative error against float64: harness "
        f"{errors['harness']:.1e}, skmeta {errors['skmeta']:.1e}, skmeta on the "
        f"harness's network {errors['textbook']:.1e}"
    )
    for name, kw in [("skmeta", {}), ("textbook", IDEAS["textbook"])]:
        losses = []
        step = make_skmeta_step(args, common, on_loss=losses.append, **kw)
        step()  # warm-up, untimed
        t = time.perf_counter()
        for _ in range(n_steps - 1):
            step()
        dt = time.perf_counter() - t
        k = max(1, n_steps // 10)
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        print(
            f"{name:<10} mean loss of the first {k} steps {first:.4f} -> of the last "
            f"{k} {last:.4f}  ({n_steps} steps, {(n_steps - 1) / dt:.1f} steps/s)"
        )
    limit = 1e-10
    ok = same and max(z_err, g_err) < limit
    print("check", "passed" if ok else f"FAILED (float64 limit {limit:.0e})")
    return 0 if ok else 1


if __name__ == "__main__":
    if "--check" not in sys.argv:
        sys.exit(__doc__)
    steps = int(sys.argv[sys.argv.index("--check") + 1]) if len(sys.argv) > 2 else 300
    sys.exit(_check(steps))
