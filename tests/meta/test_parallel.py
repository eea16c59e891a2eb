"""Task-parallel meta-gradients (skmeta.meta.parallel) and the methods using them."""

import sys

import pytest
import torch
from fresh_process import python_stdout
from maml_helpers import GRADIENT_METHODS, _batch, _tiny_net
from torch import nn

from skmeta.meta.algorithms import TaskBatch, make_algorithm
from skmeta.meta.net import MetaNet
from skmeta.meta.parallel import (
    accumulate_task_gradients,
    n_task_workers,
    replicate,
)


def _grads(net):
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


def _reset(net):
    for p in net.parameters():
        p.grad = None


@pytest.mark.parametrize(
    "method, settings",
    [(method, {}) for method in GRADIENT_METHODS]
    + [("protomaml", {"first_order": True}), ("anil", {"first_order": True})],
)
def test_meta_gradient_equals_the_gradient_of_the_loss(method, settings, monkeypatch):
    algorithm = make_algorithm(method, inner_lr=0.3, inner_steps=2, **settings)
    net, batch = _tiny_net(algorithm), _batch(n_tasks=5)
    loss, metrics = algorithm.loss(net, batch)
    loss.backward()
    expected = _grads(net)
    for workers in (1, 2, 3):
        monkeypatch.setattr(
            "skmeta.meta.algorithms.maml.n_task_workers",
            lambda n_tasks, device, workers=workers: workers,
        )
        _reset(net)
        value, got_metrics = algorithm.meta_gradient(net, batch)
        assert value == pytest.approx(loss.item(), rel=1e-12)
        assert got_metrics == pytest.approx(metrics, rel=1e-6)  # float32 accuracy
        for a, b in zip(expected, _grads(net), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_parallel_meta_gradient_is_reproducible():
    algorithm = make_algorithm("maml", inner_lr=0.3, inner_steps=2)
    net, batch = _tiny_net(algorithm), _batch(n_tasks=7)
    runs = []
    for _ in range(3):
        _reset(net)
        accumulate_task_gradients(
            net,
            7,
            lambda module, i: (algorithm._task_objective(module, batch, i)[0], i),
            n_workers=2,
        )
        runs.append(_grads(net))
    for run in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], run, strict=True))


def test_gradients_add_to_existing_grad_and_extras_keep_task_order():
    weight = nn.Parameter(torch.tensor([1.0, 2.0]))
    module = nn.Module()
    module.weight = weight
    weight.grad = torch.tensor([10.0, 10.0])
    extras = accumulate_task_gradients(
        module,
        4,
        lambda m, i: ((m.weight * (i + 1)).sum(), f"task {i}"),
        n_workers=2,
    )
    assert extras == [f"task {i}" for i in range(4)]
    torch.testing.assert_close(weight.grad, torch.tensor([20.0, 20.0]))  # 10+1+2+3+4


@pytest.mark.parametrize("n_workers", [1, 2])
def test_a_parameter_no_task_reaches_keeps_no_grad(n_workers):
    # as backward leaves it, so that the optimiser skips it (Adam would
    # otherwise move it with its old moments)
    module = nn.Module()
    module.used = nn.Parameter(torch.tensor([1.0, 2.0]))
    module.unused = nn.Parameter(torch.tensor([3.0]))
    accumulate_task_gradients(
        module, 3, lambda m, i: (m.used.sum() * i, None), n_workers=n_workers
    )
    torch.testing.assert_close(module.used.grad, torch.tensor([3.0, 3.0]))  # 0+1+2
    assert module.unused.grad is None


def test_worker_errors_reach_the_caller():
    module = nn.Linear(2, 1)

    def objective(m, i):
        if i == 3:
            raise RuntimeError("task 3 failed")
        return m(torch.ones(1, 2)).sum(), None

    with pytest.raises(RuntimeError, match="task 3 failed"):
        accumulate_task_gradients(module, 4, objective, n_workers=2)


def test_workers_run_with_one_intra_op_thread_and_restore_the_setting():
    seen = []
    module = nn.Linear(2, 1)
    before = torch.get_num_threads()

    def objective(m, i):
        seen.append(torch.get_num_threads())
        return m(torch.ones(1, 2)).sum(), None

    accumulate_task_gradients(module, 4, objective, n_workers=2)
    assert seen == [1, 1, 1, 1]
    assert torch.get_num_threads() == before


_OPENMP_TEAMS_SCRIPT = """
import os, threading, torch
from torch import nn
from skmeta.meta.parallel import accumulate_task_gradients

def native_threads():  # OS threads that are not Python threads (OpenMP's)
    return len(os.listdir("/proc/self/task")) - threading.active_count()

torch.set_num_threads(2)
net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.LazyLinear(1))
x = torch.rand(4, 1, 12, 12)
net(x).sum().backward()  # the main thread's own OpenMP team
before = native_threads()
accumulate_task_gradients(net, 4, lambda m, i: (m(x).sum(), None), n_workers=2)
print(native_threads() - before, torch.get_num_threads())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_start_no_openmp_teams_of_their_own():
    # A worker whose first op is a oneDNN convolution used to open an OpenMP
    # team of torch's default size, leaving an idle OpenMP thread per worker;
    # with more OpenMP threads than cores, libgomp stops spinning at barriers
    # for the rest of the process, and the main thread's multi-threaded work
    # (validation, transform) ran up to 2x slower afterwards.
    assert python_stdout(_OPENMP_TEAMS_SCRIPT).split() == ["0", "2"]


def test_replica_shares_tensors_but_not_modules():
    net = MetaNet(
        nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)),
        (3,),
        per_feature_scaling=True,
    )
    copy = replicate(net)
    assert copy is not net and copy.backbone[0] is not net.backbone[0]
    for a, b in zip(net.parameters(), copy.parameters(), strict=True):
        assert a is b
    for a, b in zip(net.buffers(), copy.buffers(), strict=True):
        assert a is b


def test_worker_count_follows_torch_threads_on_cpu():
    assert n_task_workers(1) == 1
    assert n_task_workers(64) == torch.get_num_threads()
    assert n_task_workers(64, "meta") == 1  # not a CPU: one worker


def test_fixed_way_head_adapts_to_its_own_number_of_ways_only():
    algorithm = make_algorithm("maml", inner_lr=0.3, inner_steps=1)
    torch.manual_seed(0)
    net = MetaNet(nn.Linear(4, 6), (4,), per_feature_scaling=True)
    net.extra["head_weight"] = nn.Parameter(torch.randn(3, 6))
    net.extra["head_bias"] = nn.Parameter(torch.zeros(3))
    batch = _batch(n_tasks=2)
    batch = TaskBatch(
        batch.support_x.float(),
        batch.support_y,
        batch.query_x.float(),
        batch.query_y,
        3,
    )
    loss, _ = algorithm.loss(net, batch)
    assert torch.isfinite(loss)
    state = algorithm.adapt(net, batch.support_x[0], batch.support_y, 3)
    assert state["head_weight"].shape == (3, 6)
    with pytest.raises(ValueError, match="3 ways"):
        algorithm.adapt(net, batch.support_x[0][:4], batch.support_y[:4] % 2, 2)


def test_torch_layer_imports_without_scikit_learn():
    code = (
        "import sys, skmeta.meta.train, skmeta.meta.algorithms; "
        "print('sklearn' in sys.modules)"
    )
    assert python_stdout(code).strip() == "False"
