"""The network as a function (skmeta.meta.functional)."""

import threading

import torch
from torch import nn

from skmeta.meta import accel
from skmeta.meta.functional import embed, embed_once, embed_tasks, thread_replica
from skmeta.meta.net import MetaNet
from skmeta.meta.norm import use_task_norm


def _net():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU())
    return MetaNet(use_task_norm(backbone), (4,), per_feature_scaling=True)


def test_embed_with_other_weights_leaves_the_network_alone():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    weights = {"backbone.0.weight": torch.randn(6, 4)}
    x = torch.randn(5, 4)
    out, stats = embed(net, weights, x)
    other = _net()
    with torch.no_grad():
        other.backbone[0].weight.copy_(weights["backbone.0.weight"])
    torch.testing.assert_close(out, other(x))
    assert len(stats) == 1
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_given_statistics_make_rows_independent_of_their_batch():
    net = _net()
    _, stats = embed(net, {}, torch.randn(8, 4))
    x = torch.randn(6, 4)
    together, used = embed(net, {}, x, stats)
    alone = torch.cat([embed(net, {}, row[None], stats)[0] for row in x])
    torch.testing.assert_close(together, alone)
    assert used == stats


def test_tasks_and_once_differentiated_passes_equal_the_reference():
    net = _net()
    weights = {"backbone.0.weight": torch.randn(3, 6, 4)}
    x = torch.randn(3, 5, 4)
    emb, stats = embed_tasks(net, weights, x)
    with accel.disabled():
        ref, ref_stats = embed_tasks(net, weights, x)
    torch.testing.assert_close(emb, ref)
    for task in range(3):
        single = {k: w[task] for k, w in weights.items()}
        task_stats = [(m[task], v[task]) for m, v in stats]
        torch.testing.assert_close(
            embed_once(net, single, x[task], task_stats),
            embed(net, single, x[task], task_stats)[0],
        )


def test_each_thread_gets_its_own_replica_sharing_the_tensors():
    net = _net()
    replicas = [thread_replica(net)]
    worker = threading.Thread(target=lambda: replicas.append(thread_replica(net)))
    worker.start()
    worker.join()
    assert replicas[0] is thread_replica(net)  # cached per thread
    assert replicas[0] is not replicas[1] and replicas[0] is not net
    for replica in replicas:
        for a, b in zip(net.parameters(), replica.parameters(), strict=True):
            assert a is b


def test_the_replica_follows_the_networks_training_mode():
    net = _net().train()
    assert thread_replica(net).training
    net.eval()
    assert not thread_replica(net).training
    assert not any(m.training for m in thread_replica(net).modules())
