"""Networks that draw random numbers in training mode run their tasks in the
calling thread (skmeta.meta.accel.random_modules, .threads.n_workers)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skmeta import MetaFeatureExtractor
from skmeta.meta.accel.random_modules import random_module
from skmeta.meta.accel.threads import n_workers


class DropMLP(nn.Module):
    """Two linear layers with dropout between them (a reviewer's backbone)."""

    def __init__(self, in_features=10):
        super().__init__()
        self.first = nn.Linear(in_features, 32)
        self.drop = nn.Dropout(0.3)
        self.second = nn.Linear(32, 16)

    def forward(self, x):
        return self.second(self.drop(torch.relu(self.first(x))))


class StochasticDepth(nn.Module):  # torchvision's, known by its name
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return x


@pytest.mark.parametrize(
    ("module", "found"),
    [
        (nn.Dropout(0.3), "Dropout"),
        (nn.Dropout2d(0.1), "Dropout2d"),
        (nn.AlphaDropout(0.2), "AlphaDropout"),
        (nn.Dropout(0.0), None),
        (nn.RReLU(), "RReLU"),
        (StochasticDepth(0.2), "StochasticDepth"),
        (StochasticDepth(0.0), None),
        (nn.ReLU(), None),
        (nn.BatchNorm1d(4), None),  # batch statistics, but no random numbers
    ],
)
def test_the_modules_that_draw_random_numbers(module, found):
    assert random_module(nn.Sequential(nn.Linear(4, 4), module)) == found


def test_a_module_in_eval_mode_draws_nothing():
    net = DropMLP()
    assert random_module(net) == "Dropout"
    net.drop.eval()
    assert random_module(net) is None


def test_a_drawing_network_gets_one_worker_and_an_explicit_n_jobs_warns_once():
    net = DropMLP()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert n_workers(None, 8, "cpu", net) == 1  # the default: silently
        assert n_workers(1, 8, "cpu", net) == 1
    with pytest.warns(UserWarning, match=r"n_jobs=2 .*Dropout.* would not repeat"):
        assert n_workers(2, 8, "cpu", net) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per network: the next batches
        assert n_workers(2, 8, "cpu", net) == 1
    assert n_workers(2, 8, "cpu", nn.Linear(4, 4)) == 2  # no dropout


def test_a_dropout_backbone_repeats_with_worker_threads():
    """fomaml with dropout in a custom backbone gave weights 8e-3 apart on
    two fits with random_state=0 and n_jobs=None or 2: its tasks ran in
    worker threads, drawing their dropout masks from torch's one default
    generator in the order the threads ran (a reviewer)."""
    rng = np.random.RandomState(0)
    X = rng.randn(200, 10).astype(np.float32)
    y = np.repeat(np.arange(10), 20)

    def fit(n_jobs):
        return MetaFeatureExtractor(
            method="fomaml",
            backbone=DropMLP,
            n_way=5,
            k_shot=1,
            n_query=5,
            meta_batch_size=8,
            max_iter=4,
            n_jobs=n_jobs,
            random_state=0,
        ).fit(X, y)

    with pytest.warns(UserWarning, match="Dropout") as record:
        first, second = fit(2), fit(2)
    assert sum("n_jobs=2 is overruled" in str(w.message) for w in record) == 2
    one = fit(1)  # the calling thread, as the fits above now run
    for name, value in first.meta_model_.state.items():
        assert torch.equal(second.meta_model_.state[name], value), name
        assert torch.equal(one.meta_model_.state[name], value), name
