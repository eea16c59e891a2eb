"""skmeta's MAML-family meta-training step as cases of the peers harness.

    PY=/tmp/skmeta-peers/venv/bin/python
    $PY /work/shared/peers/bench_peers.py --plugin benchmarks/peers_maml_plugin.py \
        --cases maml_so_l2l,maml_so_skmeta --rounds 3 --no-check
    $PY benchmarks/peers_maml_plugin.py --check    # gradients against a plain loop

The computation is the harness's own (``common.maml_model``, ``common.maml_batches``):
the MAML paper's Omniglot Conv4 (4 x [conv3x3-64 stride 2, batch norm with the
batch's statistics, ReLU], flatten to 256, a 5-way linear head), 5-way 1-shot
15-query tasks, meta-batch 32, 1 inner SGD step with lr 0.4, Adam(1e-3). skmeta
runs it as its training loop does: ``MAML.meta_gradient`` on a ``TaskBatch``,
then a step of its meta-optimiser ``CosineAdam`` (torch's functional Adam, the
update ``torch.optim.Adam`` makes, to the bit; its cosine schedule set so long
that the learning rate stays 1e-3), inside ``training_malloc``. Unlike
``torch.optim.Adam``, it does not import ``torch._dynamo`` (about 70 MiB of the
peers' peak memory). The network is a ``MetaNet``
around skmeta's ``Conv4(downsample="strided")`` with its batch norms set to use
batch statistics only (as the harness's ``track_running_stats=False``) and the
harness's linear head as a fixed-way head (``extra["head_weight"]`` of shape
(5, 256)); the same seed gives the same initial weights (``--check`` verifies
it, and that the meta-gradients match the harness's plain ``torch.func`` loop).

Cases:
  maml_{so,fo}_skmeta          skmeta MAML / first-order MAML
  maml_so_skmeta_x_sequential  the same with the tasks in one thread (ablation)
  maml_so_skmeta_x_group{1,2,3,8}  the same with groups of 1 / 2 / 3 / 8 tasks
                               adapted together (ablation; the default is
                               ``MAML.group_size``)
  anil_{so,fo}_l2l             ANIL with learn2learn: the Conv4 body embeds the
                               support and query sets, ``l2l.algorithms.MAML`` wraps
                               the head (the recipe of learn2learn's ANIL examples)
  anil_{so,fo}_skmeta          skmeta ANIL on the same network
"""

from __future__ import annotations

import os
import sys

_HELD = []  # training_malloc contexts held for the life of the worker process


def skmeta_maml_net(args, common):
    """MetaNet with the harness's initial weights (same seed, same order)."""
    import torch

    from skmeta.meta.backbones import Conv4
    from skmeta.meta.net import MetaNet

    torch.manual_seed(args.seed)
    backbone = Conv4(1, downsample="strided")
    for module in backbone.modules():  # batch statistics only, as the harness's
        if isinstance(module, torch.nn.BatchNorm2d):
            module.track_running_stats = False
            module.running_mean = module.running_var = None
            module.num_batches_tracked = None
    head = torch.nn.Linear(256, args.maml_ways)  # drawn next, as in common.conv4
    net = MetaNet(backbone, (1, 28, 28), per_feature_scaling=False)
    net.extra["head_weight"] = torch.nn.Parameter(head.weight.detach().clone())
    net.extra["head_bias"] = torch.nn.Parameter(head.bias.detach().clone())
    return net


def task_batches(args, common, batches=None):
    """The harness's meta-batches as skmeta TaskBatches (flat rows)."""
    from skmeta.meta.algorithms import TaskBatch

    out = []
    for XS, YS, XQ, YQ in batches or common.maml_batches(args):
        T = XS.shape[0]
        out.append(
            TaskBatch(
                support_x=XS.reshape(T, XS.shape[1], -1),
                support_y=YS[0],  # the same ways in every task
                query_x=XQ.reshape(T, XQ.shape[1], -1),
                query_y=YQ[0],
                n_way=args.maml_ways,
            )
        )
    return out


def make_algorithm(args, method, fo):
    from skmeta.meta.algorithms import ANIL, MAML

    cls = {"maml": MAML, "anil": ANIL}[method]
    return cls(
        inner_lr=args.maml_inner_lr,
        inner_steps=args.maml_inner_steps,
        first_order=fo,
    )


def build_skmeta(common, method, fo, sequential=False, group_size=None):
    def builder(args):

        from skmeta.meta._malloc import training_malloc
        from skmeta.meta.optim import CosineAdam

        _HELD.append(training_malloc())  # as skmeta.meta.train does around its loop
        _HELD[-1].__enter__()
        if sequential:
            import skmeta.meta.algorithms.maml as maml_module

            maml_module.n_task_workers = lambda n_tasks, device: 1
        if group_size is not None:
            from skmeta.meta.algorithms.maml import MAML

            MAML.group_size = group_size
        net = skmeta_maml_net(args, common).train()
        algorithm = make_algorithm(args, method, fo)
        # as skmeta.meta.train; a schedule of 10**12 steps keeps lr = meta_lr
        opt = CosineAdam(net.parameters(), args.meta_lr, total_steps=10**12)
        data = common.cycle(task_batches(args, common))

        def step():  # skmeta.meta.train._meta_train, one iteration
            opt.zero_grad()
            algorithm.meta_gradient(net, next(data))
            opt.step()

        return step

    return builder


def anil_l2l_meta_grad(model, args, fo):
    """learn2learn's ANIL recipe: the body embeds, l2l MAML adapts the head."""
    import learn2learn as l2l
    import torch.nn.functional as F

    body, head = model[0], model[1]
    head = l2l.algorithms.MAML(head, lr=args.maml_inner_lr, first_order=fo)

    def meta_grad(batch):
        XS, YS, XQ, YQ = batch
        T = XS.shape[0]
        for t in range(T):
            learner = head.clone()
            support, query = body(XS[t]), body(XQ[t])
            for _ in range(args.maml_inner_steps):
                learner.adapt(F.cross_entropy(learner(support), YS[t]))
            (F.cross_entropy(learner(query), YQ[t]) / T).backward()

    return meta_grad


def build_anil_l2l(common, fo):
    def builder(args):
        import torch

        model = common.maml_model(args)
        model = torch.nn.Sequential(model[:-1], model[-1])  # (body, head)
        meta_grad = anil_l2l_meta_grad(model, args, fo)
        opt = torch.optim.Adam(model.parameters(), lr=args.meta_lr)
        data = common.cycle(common.maml_batches(args))

        def step():
            opt.zero_grad(set_to_none=True)
            meta_grad(next(data))
            opt.step()

        return step

    return builder


def register(add_case, common):
    d = common.DEFAULTS
    N, K, Q, T = (
        d[k] for k in ("maml_ways", "maml_shots", "maml_queries", "maml_meta_batch")
    )

    def setting(method, order):
        return f"{method} {N}w{K}s{Q}q mb{T} {order.upper()}"

    for order in ("so", "fo"):
        fo = order == "fo"
        add_case(
            f"maml_{order}_skmeta",
            "maml",
            "skmeta MAML.meta_gradient",
            setting("MAML", order),
            build_skmeta(common, "maml", fo),
            "tasks/s",
            T,
        )
        add_case(
            f"anil_{order}_l2l",
            "maml",
            "learn2learn MAML on the head (ANIL)",
            setting("ANIL", order),
            build_anil_l2l(common, fo),
            "tasks/s",
            T,
            needs_tv_shim=True,
        )
        add_case(
            f"anil_{order}_skmeta",
            "maml",
            "skmeta ANIL.meta_gradient",
            setting("ANIL", order),
            build_skmeta(common, "anil", fo),
            "tasks/s",
            T,
        )
    for size in (1, 2, 3, 8):
        add_case(
            f"maml_so_skmeta_x_group{size}",
            "maml",
            f"skmeta MAML, groups of {size} task(s)",
            setting("MAML", "so"),
            build_skmeta(common, "maml", False, group_size=size),
            "tasks/s",
            T,
        )
    add_case(
        "maml_so_skmeta_x_sequential",
        "maml",
        "skmeta MAML, tasks in one thread",
        setting("MAML", "so"),
        build_skmeta(common, "maml", False, sequential=True),
        "tasks/s",
        T,
    )


def _check(double: bool) -> int:
    """Initial weights and meta-gradients against the harness's plain loops."""
    import argparse

    import torch

    peers = os.environ.get("SKMETA_PEERS_DIR", "/work/shared/peers")
    sys.path.insert(0, peers)
    import bench_peers as common

    args = argparse.Namespace(**common.DEFAULTS)
    args.maml_meta_batch = 4
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if double else torch.float32
    ref_model = common.maml_model(args)
    net = skmeta_maml_net(args, common)
    ref = [p.detach() for p in ref_model.parameters()]
    mine = [p.detach() for p in net.backbone.parameters()] + [
        net.extra["head_weight"].detach(),
        net.extra["head_bias"].detach(),
    ]
    same = len(ref) == len(mine) and all(
        torch.equal(a, b) for a, b in zip(ref, mine, strict=True)
    )
    print(f"initial weights identical to common.maml_model: {same}")
    batch = [
        tuple(x.to(dtype) if x.is_floating_point() else x for x in b)
        for b in common.maml_batches(args, n=1)
    ]
    worst = 0.0
    for method in ("maml", "anil"):
        for fo in (False, True):
            model = common.maml_model(args).to(dtype)
            if method == "maml":
                common.make_maml_func_loop(model, args, fo)(batch[0])
                expected = [p.grad for p in model.parameters()]
            else:
                model = torch.nn.Sequential(model[:-1], model[-1])
                anil_l2l_meta_grad(model, args, fo)(batch[0])
                expected = [p.grad for p in model.parameters()]
            net = skmeta_maml_net(args, common).to(dtype).train()
            algorithm = make_algorithm(args, method, fo)
            algorithm.meta_gradient(net, task_batches(args, common, batch)[0])
            got = [p.grad for p in net.backbone.parameters()] + [
                net.extra["head_weight"].grad,
                net.extra["head_bias"].grad,
            ]
            exp = torch.cat([g.flatten() for g in expected])
            out = torch.cat([g.flatten() for g in got])
            rel = ((out - exp).norm() / exp.norm()).item()
            worst = max(worst, rel)
            reference = "torch.func loop" if method == "maml" else "learn2learn"
            print(
                f"{method} {'FO' if fo else 'SO'} meta-gradient vs the {reference}: "
                f"relative difference {rel:.1e} ({dtype})"
            )
    limit = 1e-10 if double else 1e-3
    ok = same and worst < limit
    print("check", "passed" if ok else f"FAILED (limit {limit:.0e})")
    return 0 if ok else 1


if __name__ == "__main__":
    if "--check" not in sys.argv:
        sys.exit(__doc__)
    peers = os.environ.get("SKMETA_PEERS_DIR", "/work/shared/peers")
    sys.path.insert(0, os.path.join(peers, "shims"))
    import tv_cpu_shim  # noqa: F401  (learn2learn imports torchvision)

    status = _check(double=True) or _check(double=False)
    sys.exit(status)
