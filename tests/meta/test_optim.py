"""The meta-optimiser (skmeta.meta.optim): torch's Adam without torch.optim."""

import math

import pytest
import torch
from fresh_process import python_stdout
from torch import nn

from skmeta.meta.optim import CosineAdam


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _set_grads(net, step):
    g = torch.Generator().manual_seed(step)
    for i, p in enumerate(net.parameters()):
        # the last layer gets no gradient at the first two steps
        grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        p.grad = None if (i >= 2 and step < 2) else grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_updates_equal_torch_adam_with_a_cosine_lambda_lr_to_the_bit(dtype):
    steps = 100  # long enough for differently rounded schedules to part
    mine, ref = _net().to(dtype), _net().to(dtype)
    opt = CosineAdam(mine.parameters(), lr=0.01, total_steps=steps)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        ref_opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps))
    )
    for step in range(steps):
        assert opt.lr == ref_opt.param_groups[0]["lr"]
        _set_grads(mine, step)
        _set_grads(ref, step)
        opt.step()
        ref_opt.step()
        schedule.step()
        for a, b in zip(mine.parameters(), ref.parameters(), strict=True):
            assert torch.equal(a, b)
    assert opt.lr == pytest.approx(0.0, abs=1e-18)


def test_parameters_without_gradient_are_left_alone():
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    opt = CosineAdam(net.parameters(), lr=0.1, total_steps=3)
    _set_grads(net, 0)  # the last layer has none
    opt.step()
    moved = [
        not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True)
    ]
    assert moved == [True, True, False, False]
    opt.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_float64_parameters_keep_float64():
    net = _net().double()
    opt = CosineAdam(net.parameters(), lr=0.1, total_steps=3)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    assert all(p.dtype == torch.float64 for p in net.parameters())


_NO_DYNAMO_SCRIPT = """
import sys
import numpy as np
import torch
from skmeta.meta.accel import meta_gradient as grouping
from skmeta.meta.train import TrainSettings, meta_train
calls = []
group_gradients = grouping._group_gradients
grouping._group_gradients = lambda *a, **k: calls.append(1) or group_gradients(*a, **k)
# one worker (n_jobs=1): the 4 tasks of a meta-batch form one group
rng = np.random.default_rng(0)
X = rng.normal(size=(120, 6)).astype(np.float32)
y = np.repeat(np.arange(12), 10)
settings = TrainSettings(n_way=3, k_shot=2, n_query=2, input_shape=(6,),
                         method="maml", backbone="mlp", meta_batch_size=4,
                         max_iter=3, max_grad_norm=1.0, n_jobs=1)
meta_train(X, y, settings)
print(len(calls))
print(sorted(m for m in sys.modules if m.startswith(("torch._dynamo", "sympy")))[:3])
"""


def test_meta_training_does_not_import_the_compiler_stack():
    # torch.optim's optimisers import torch._dynamo, and autograd.grad with
    # tensors as grad_outputs imports torch.fx's symbolic shapes: both SymPy
    output = python_stdout(_NO_DYNAMO_SCRIPT).strip().splitlines()
    n_group_calls, compiler_modules = output[-2:]
    assert int(n_group_calls) == 3  # the grouped path ran, once an iteration
    assert compiler_modules == "[]"


def test_state_dict_resumes_to_the_bit():
    """Adam's moments (only of parameters that had gradients) and the
    schedule's position, loaded into a new optimiser over new parameters."""
    whole, first = _net(), _net()
    opt = CosineAdam(whole.parameters(), lr=0.01, total_steps=6)
    half = CosineAdam(first.parameters(), lr=0.01, total_steps=6)
    for step in range(6):
        _set_grads(whole, step)
        opt.step()
        if step < 1:  # the last layer has no state yet
            _set_grads(first, step)
            half.step()
    state = half.state_dict()
    assert sorted(state["params"]) == ["0", "1"] and state["steps_taken"] == 1
    resumed = _net()
    resumed.load_state_dict(first.state_dict())
    again = CosineAdam(resumed.parameters(), lr=0.01, total_steps=6)
    again.load_state_dict(state)
    for step in range(1, 6):
        _set_grads(resumed, step)
        again.step()
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="schedule of 6 steps"):
        CosineAdam(_net().parameters(), lr=0.01, total_steps=7).load_state_dict(state)
