import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from skmeta.meta.norm import TaskBatchNorm, norm_statistics, use_task_norm


def test_task_norm_uses_support_statistics():
    norm = use_task_norm(nn.Sequential(nn.BatchNorm2d(3)))[0]
    assert isinstance(norm, TaskBatchNorm)
    support, query = torch.randn(5, 3, 4, 4), torch.randn(7, 3, 4, 4)
    reference = nn.BatchNorm2d(3).train()
    with norm_statistics() as stats:
        out = norm(support)
    torch.testing.assert_close(out, reference(support))
    with norm_statistics(stats):
        one_by_one = torch.cat([norm(q[None]) for q in query])
        together = norm(query)
    torch.testing.assert_close(one_by_one, together)


def test_task_norm_holds_no_state_and_uses_batch_statistics_outside_a_pass():
    norm = TaskBatchNorm(3)
    x = torch.randn(6, 3, 2, 2)
    with norm_statistics() as stats:
        norm(x)
    assert set(vars(norm)) == set(vars(TaskBatchNorm(3)))  # nothing recorded
    torch.testing.assert_close(norm(x), nn.BatchNorm2d(3).train()(x))
    assert len(stats) == 1


def test_statistics_are_private_to_each_thread():
    norm = TaskBatchNorm(2)
    support = [torch.randn(5, 2) * (i + 1) + i for i in range(4)]
    expected = []
    for x in support:
        with norm_statistics() as stats:
            norm(x)
        expected.append(stats)
    barrier = threading.Barrier(4)

    def run(i):
        with norm_statistics() as stats:
            barrier.wait()
            for _ in range(50):
                stats.clear()
                norm(support[i])
        return stats

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, range(4)))
    for want, have in zip(expected, got, strict=True):
        torch.testing.assert_close(have, want)
