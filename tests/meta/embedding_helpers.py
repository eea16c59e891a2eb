"""A tiny network for the tests of the methods that classify embeddings
(Matching Networks, Relation Networks, FEAT)."""

import torch
from torch import nn

from skmeta.meta.net import MetaNet


def linear_net(algorithm, dim=4, seed=0, n_classes=3):
    """A linear backbone of width `dim` and `algorithm`'s meta-parameters
    (for `n_classes` base classes), seeded."""
    torch.manual_seed(seed)
    net = MetaNet(nn.Linear(dim, dim), (dim,), per_feature_scaling=False)
    for name, value in algorithm.meta_parameters(net, dim, n_classes).items():
        net.extra[name] = nn.Parameter(value.clone())
    return net


def deployed_loss(algorithm, net, batch, criterion) -> float:
    """The mean over `batch`'s tasks of `criterion(outputs, query labels)`,
    the outputs those of the deployed ``adapt`` then ``predict``."""
    losses = [
        criterion(
            algorithm.predict(
                net,
                algorithm.adapt(net, batch.support_x[t], batch.support_y, batch.n_way),
                batch.query_x[t],
            ),
            batch.query_y,
        )
        for t in range(batch.n_tasks)
    ]
    return torch.stack(losses).mean().item()
