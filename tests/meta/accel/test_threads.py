"""Worker threads (skmeta.meta.accel.threads): gradients summed unit by unit."""

import sys

import pytest
import torch
from fresh_process import python_stdout
from torch import nn

from skmeta.meta.accel.threads import accumulate_gradients, n_workers


def _sum_of(objectives):
    """unit_gradients for accumulate_gradients from per-unit objectives."""

    def unit(params, objective, extra):
        return torch.autograd.grad(objective, params, allow_unused=True), extra

    return unit


def test_gradients_add_to_existing_grad_and_extras_keep_unit_order():
    weight = nn.Parameter(torch.tensor([1.0, 2.0]))
    weight.grad = torch.tensor([10.0, 10.0])

    def unit(i):
        grads = torch.autograd.grad((weight * (i + 1)).sum(), [weight])
        return grads, f"unit {i}"

    extras = accumulate_gradients([weight], 4, unit, n_workers=2)
    assert extras == [f"unit {i}" for i in range(4)]
    torch.testing.assert_close(weight.grad, torch.tensor([20.0, 20.0]))  # 10+1+2+3+4


@pytest.mark.parametrize("workers", [1, 2])
def test_a_parameter_no_unit_reaches_keeps_no_grad(workers):
    # as backward leaves it, so that the optimiser skips it (Adam would
    # otherwise move it with its old moments)
    used = nn.Parameter(torch.tensor([1.0, 2.0]))
    unused = nn.Parameter(torch.tensor([3.0]))

    def unit(i):
        grads = torch.autograd.grad(used.sum() * i, [used, unused], allow_unused=True)
        return grads, None

    accumulate_gradients([used, unused], 3, unit, n_workers=workers)
    torch.testing.assert_close(used.grad, torch.tensor([3.0, 3.0]))  # 0+1+2
    assert unused.grad is None


def test_worker_errors_reach_the_caller():
    weight = nn.Parameter(torch.ones(2))

    def unit(i):
        if i == 3:
            raise RuntimeError("unit 3 failed")
        return torch.autograd.grad(weight.sum(), [weight]), None

    with pytest.raises(RuntimeError, match="unit 3 failed"):
        accumulate_gradients([weight], 4, unit, n_workers=2)


def test_workers_run_one_openmp_thread_and_change_nothing_process_wide():
    seen = []
    weight = nn.Parameter(torch.ones(2))
    before = torch.get_num_threads()

    def unit(i):
        seen.append(torch.get_num_threads())
        return torch.autograd.grad(weight.sum(), [weight]), None

    accumulate_gradients([weight], 4, unit, n_workers=2)
    assert seen == [1, 1, 1, 1]
    assert torch.get_num_threads() == before


_OPENMP_SCRIPT = """
import os, threading, torch
from torch import nn
from skmeta.meta.accel.threads import accumulate_gradients

def native_threads():  # OS threads that are not Python threads (OpenMP's)
    return len(os.listdir("/proc/self/task")) - threading.active_count()

torch.set_num_threads(2)
net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.LazyLinear(1))
x = torch.rand(4, 1, 12, 12)
net(x).sum().backward()  # the main thread's own OpenMP team
params = list(net.parameters())
before = native_threads()
accumulate_gradients(
    params, 4, lambda i: (torch.autograd.grad(net(x).sum(), params), None), 2
)
extra = native_threads() - before
seen = []
t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
t.start(); t.join()
print(extra, torch.get_num_threads(), seen[0])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_start_no_openmp_teams_and_new_threads_keep_the_default():
    # A worker whose first op is a oneDNN convolution used to open an OpenMP
    # team of torch's default size, leaving an idle OpenMP thread per worker;
    # with more OpenMP threads than cores, libgomp stops spinning at barriers
    # for the rest of the process. torch.set_num_threads in a worker would
    # also change the count every new thread starts with (the last number).
    assert python_stdout(_OPENMP_SCRIPT).split() == ["0", "2", "2"]


def test_worker_count_follows_n_jobs_and_torch_threads_on_cpu():
    assert n_workers(None, 1, "cpu") == 1
    assert n_workers(None, 64, "cpu") in (1, torch.get_num_threads())
    assert n_workers(-1, 64, "cpu") == torch.get_num_threads()
    assert n_workers(3, 64, "cpu") == 3
    assert n_workers(3, 2, "cpu") == 2  # no more workers than units
    assert n_workers(4, 64, "meta") == 1  # not a CPU: one worker


def test_negative_n_jobs_count_as_joblib_does():
    """-2 was refused, though joblib and scikit-learn read it as all but one
    (a reviewer)."""
    threads = torch.get_num_threads()
    assert n_workers(-1, 64, "cpu") == threads
    assert n_workers(-2, 64, "cpu") == max(1, threads - 1)
    assert n_workers(-1000, 64, "cpu") == 1
    assert n_workers(-1, 64, "meta") == 1  # an accelerator: one worker
