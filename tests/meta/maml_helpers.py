"""Small float64 networks and task batches for the gradient-method tests."""

import torch
from torch import nn

from skmeta.meta.algorithms import TaskBatch
from skmeta.meta.net import MetaNet
from skmeta.meta.norm import use_task_norm

GRADIENT_METHODS = ["maml", "fomaml", "metasgd", "anil", "protomaml", "reptile"]


def _tiny_net(algorithm, seed=0):
    """float64 MLP with a batch norm, so second-order terms through the task
    statistics are exercised."""
    torch.manual_seed(seed)
    backbone = nn.Sequential(
        nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)
    )
    use_task_norm(backbone)
    net = MetaNet(backbone, (4,), per_feature_scaling=True)
    for name, value in algorithm.meta_parameters(net, 3, 5).items():
        net.extra[name] = nn.Parameter(value + 0.3 * torch.randn_like(value))
    return net.double()


def _batch(seed=0, n_tasks=2):
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(
        support_x=torch.randn(n_tasks, 6, 4, generator=g, dtype=torch.float64),
        support_y=torch.tensor([0, 0, 1, 1, 2, 2]),
        query_x=torch.randn(n_tasks, 9, 4, generator=g, dtype=torch.float64),
        query_y=torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]),
        n_way=3,
    )


def classification_batch(n_tasks, width, seed=1):
    """float64 3-way tasks of `width`-feature rows: 2 support and 3 query rows
    per class, the same ways in every task."""
    g = torch.Generator().manual_seed(seed)

    def rows(n):
        return torch.randn(n_tasks, n, width, generator=g, dtype=torch.float64)

    return TaskBatch(
        rows(6),
        torch.tensor([0, 0, 1, 1, 2, 2]),
        rows(9),
        torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]),
        n_way=3,
    )
