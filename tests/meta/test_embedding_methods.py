"""Behaviours shared by the methods that classify embeddings with weights of
their own (Matching Networks with full-context embeddings, Relation Networks,
FEAT, FRN)."""

import pytest
import torch
from embedding_helpers import linear_net

from skmeta.meta.algorithms import make_algorithm

METHODS = [
    ("matching", {"full_context": True}),
    ("relation", {"hidden": 16}),
    ("relation", {"loss": "cross_entropy"}),
    ("feat", {}),
    ("frn", {"channels": 2}),  # 2 locations of the 4 features
]


@pytest.mark.parametrize("method, settings", METHODS)
def test_query_batching_does_not_change_predictions(method, settings):
    algorithm = make_algorithm(method, **settings)
    net = linear_net(algorithm)
    with torch.no_grad():  # every weight away from its initial value
        for value in net.extra.values():
            value.add_(0.1 * torch.randn_like(value))
    state = algorithm.adapt(net, torch.randn(6, 4), torch.tensor([0, 1, 2] * 2), 3)
    queries = torch.randn(11, 4)
    whole = algorithm.predict(net, state, queries, batch_size=100)
    chunked = algorithm.predict(net, state, queries, batch_size=3)
    assert whole.shape == (11, 3) and whole.dtype == torch.float64
    # float32 embeddings of batches of 3 and of 11 may round apart (the CPU's
    # kernels differ by batch size): float32's tolerance on the float64 scores
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-6)
