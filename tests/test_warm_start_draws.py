"""Warm-started fits and partial_fit calls in a row each draw new episodes,
reproducibly (skmeta.meta.train: the episodes' generator of the seed and the
iterations behind the starting model)."""

import numpy as np
import pytest
import torch

from skmeta import MetaFeatureExtractor
from skmeta.meta import loop as loop_module
from skmeta.meta import train as train_module

# max_iter=5 leaves the loss falling; 2 held-out classes calibrate 2-way
pytestmark = [
    pytest.mark.filterwarnings("ignore:Meta-training reached max_iter"),
    pytest.mark.filterwarnings("ignore:calibrate fits the temperature"),
]


@pytest.fixture
def episodes(monkeypatch):
    """The support rows of each meta-batch meta-trained on, a list per run."""
    runs = []
    taken = loop_module.meta_gradient

    def record(algorithm, net, batch, *args):
        runs[-1].append(batch.support_x.detach().clone())
        return taken(algorithm, net, batch, *args)

    real_meta_train = train_module._seeded_meta_train

    def new_run(*args):
        runs.append([])
        return real_meta_train(*args)

    monkeypatch.setattr(loop_module, "meta_gradient", record)
    monkeypatch.setattr(train_module, "_seeded_meta_train", new_run)
    return runs


def _same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x, z) for x, z in zip(a, b, strict=True)
    )


def _warm_fits(X, y, n_fits, **params):
    ext = MetaFeatureExtractor(
        n_way=5, k_shot=1, n_query=3, max_iter=5, warm_start=True, random_state=0
    ).set_params(**params)
    for _ in range(n_fits):
        ext.fit(X, y)
    return ext


def test_warm_started_fits_in_a_row_draw_new_episodes(blobs, episodes):
    """Each warm-started fit with random_state=0 replayed the first fit's
    episodes, so a loop of them trained on max_iter episodes over and over
    (a reviewer)."""
    X, y = blobs
    ext = _warm_fits(X, y, 3)
    assert ext.n_iter_ == 15
    first, second, third = episodes
    assert not _same(first, second)
    assert not _same(second, third)
    assert not torch.equal(first[0], second[0])
    # the same sequence again: the same episodes and weights
    again = _warm_fits(X, y, 3)
    for before, now in zip(episodes[:3], episodes[3:], strict=True):
        assert _same(before, now)
    for name, value in ext.meta_model_.state.items():
        assert torch.equal(again.meta_model_.state[name], value), name


def test_a_first_fit_draws_what_it_drew_before(blobs, episodes):
    """Without a starting model the seed's generator is unchanged (every
    benchmark's numbers depend on it): a cold refit of a warm-started
    estimator repeats its first fit."""
    X, y = blobs
    _warm_fits(X, y, 2)
    cold = _warm_fits(X, y, 1, warm_start=False)
    assert _same(episodes[0], episodes[2])
    assert cold.n_iter_ == 5


def test_warm_fits_keep_the_seeds_class_split(blobs, monkeypatch):
    """Early stopping's held-out classes stay out of every warm fit: a new
    split would validate on classes the earlier fits trained on."""
    X, y = blobs
    splits = []
    split_classes = train_module.split_classes

    def record(*args, **kwargs):
        splits.append(split_classes(*args, **kwargs))
        return splits[-1]

    monkeypatch.setattr(train_module, "split_classes", record)
    _warm_fits(X, y, 2, early_stopping=True, n_iter_no_change=10)
    (train_a, val_a), (train_b, val_b) = splits
    np.testing.assert_array_equal(val_a, val_b)
    np.testing.assert_array_equal(train_a, train_b)


def test_partial_fit_calls_in_a_row_draw_new_episodes(blobs, monkeypatch):
    """Each call reseeded with random_state=0 and drew the same episode
    indices (into a replay buffer whose rows change, so the rows differed):
    the generator the episodes are drawn from is the one to compare."""
    X, y = blobs
    base = y < 16
    streams = []
    task_batches = train_module.task_batches

    def record(rows, index, settings, rng, *args, **kwargs):
        streams.append(rng.bit_generator.state["state"])
        return task_batches(rows, index, settings, rng, *args, **kwargs)

    monkeypatch.setattr(train_module, "task_batches", record)

    def calls():
        ext = MetaFeatureExtractor(
            n_way=5, k_shot=1, n_query=3, max_iter=5, random_state=0
        )
        for _ in range(3):
            ext.partial_fit(X[base], y[base])
        return ext

    ext = calls()
    assert ext.n_iter_ == 15
    first, second, third = streams
    assert len({str(first), str(second), str(third)}) == 3
    again = calls()
    assert streams[3:] == streams[:3]
    for name, value in ext.meta_model_.state.items():
        assert torch.equal(again.meta_model_.state[name], value), name
