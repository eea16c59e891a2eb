"""skmeta.meta.online: the replay buffer, continuing a model's network, and
ProtoNet's incremental adaptation."""

import numpy as np
import pytest
import torch

from skmeta.meta.algorithms import ProtoNet
from skmeta.meta.online import ReplayBuffer, network_settings
from skmeta.meta.train import TrainSettings, meta_train


def test_buffer_keeps_every_row_without_a_cap():
    buffer = ReplayBuffer(per_class=None, seed=0)
    X = np.arange(20, dtype=np.uint8).reshape(10, 2)
    buffer.add(X[:6], np.array([1, 0, 1, 0, 1, 0]))
    buffer.add(X[6:], np.array([2, 0, 2, 0]))
    rows, labels = buffer.rows()
    assert rows.dtype == np.uint8  # the rows' own dtype
    assert labels.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert rows[labels == 0].tolist() == X[[1, 3, 5, 7, 9]].tolist()  # in order
    X[:] = 0
    assert buffer.rows()[0].any()  # its own copy


def test_buffer_is_bounded_per_class_and_counts_every_row():
    buffer = ReplayBuffer(per_class=3, seed=0)
    for start in range(0, 40, 8):
        labels = np.array(["a", "b"] * 4)
        buffer.add(np.arange(start, start + 8, dtype=float)[:, None], labels)
    _, labels = buffer.rows()
    assert labels.tolist() == ["a"] * 3 + ["b"] * 3
    assert len(buffer) == 6 and buffer.seen("a") == 20


def test_buffer_keeps_a_uniform_sample_of_each_class():
    # reservoir sampling: each of the 12 rows, added in 4 calls, kept with
    # probability 3/12 (2,000 seeds: a frequency within 0.25 +- 0.05)
    kept = np.zeros(12)
    for seed in range(2000):
        buffer = ReplayBuffer(per_class=3, seed=seed)
        for start in range(0, 12, 3):
            buffer.add(np.arange(start, start + 3)[:, None], np.zeros(3, int))
        kept[buffer.rows()[0].ravel()] += 1
    np.testing.assert_allclose(kept / 2000, 0.25, atol=0.05)


def test_a_lower_cap_keeps_a_uniform_sample_of_each_class():
    # 12 rows kept 6 at a time, cut down to 3, then 6 more added: each of the
    # 18 rows kept with probability 3/18 (2,000 seeds)
    kept = np.zeros(18)
    for seed in range(2000):
        buffer = ReplayBuffer(per_class=6, seed=seed)
        buffer.add(np.arange(12)[:, None], np.zeros(12, int))
        assert not buffer.resize(3)
        assert len(buffer) == 3
        buffer.add(np.arange(12, 18)[:, None], np.zeros(6, int))
        kept[buffer.rows()[0].ravel()] += 1
    np.testing.assert_allclose(kept / 2000, 3 / 18, atol=0.04)


def test_a_higher_cap_keeps_the_rows_and_says_whether_some_were_lost():
    buffer = ReplayBuffer(per_class=2, seed=0)
    buffer.add(np.arange(2.0)[:, None], np.array([0, 0]))
    assert not buffer.resize(2)  # unchanged
    assert not buffer.resize(4)  # nothing was dropped yet
    buffer.add(np.arange(2.0, 8.0)[:, None], np.zeros(6, int))
    assert len(buffer) == 4 and buffer.seen(0) == 8
    assert buffer.resize(6)  # rows were dropped: they cannot come back
    assert len(buffer) == 4 and buffer.per_class == 6
    buffer.add(np.arange(8.0, 12.0)[:, None], np.zeros(4, int))
    assert len(buffer) == 6
    assert buffer.resize(None)  # keep every row from now on
    buffer.add(np.arange(12.0, 15.0)[:, None], np.zeros(3, int))
    assert len(buffer) == 9
    assert not buffer.resize(None)
    with pytest.raises(ValueError, match="per_class"):
        buffer.resize(0)


def test_buffer_refuses_another_kind_of_label():
    buffer = ReplayBuffer(per_class=2, seed=0)
    buffer.add(np.zeros((2, 1)), np.array([0, 1]))
    with pytest.raises(ValueError, match="strings"):
        buffer.add(np.zeros((2, 1)), np.array(["a", "b"]))
    with pytest.raises(ValueError, match="per_class"):
        ReplayBuffer(per_class=0, seed=0)


def test_protonet_update_equals_adapt_on_all_rows(blob_model, blobs):
    X, y = blobs
    net, method = blob_model.network(), ProtoNet()
    x = torch.tensor(X[y >= 16])
    codes = torch.tensor(y[y >= 16] - 16)
    # classes 17, 19 and 21 first (codes 0..2), the others inserted later
    early = torch.isin(codes, torch.tensor([1, 3, 5]))
    state = method.adapt(net, x[early], torch.div(codes[early] - 1, 2).long(), 3)
    state = method.update(
        net, state, torch.tensor([1, 3, 5]), x[~early], codes[~early], 8
    )
    whole = method.adapt(net, x, codes, 8)
    for key in ("prototypes", "sums"):
        torch.testing.assert_close(state[key], whole[key], rtol=1e-5, atol=1e-5)
    assert state["counts"].tolist() == torch.bincount(codes).tolist()


def test_adapt_still_gives_the_mean_embedding(blob_model, blobs):
    X, y = blobs
    net = blob_model.network()
    x, codes = torch.tensor(X[y >= 16]), torch.tensor(y[y >= 16] - 16)
    state = ProtoNet().adapt(net, x, codes, 8)
    with torch.no_grad():
        means = torch.stack([net(x[codes == c]).mean(0) for c in range(8)])
    torch.testing.assert_close(state["prototypes"], means, rtol=1e-5, atol=1e-5)


class _Tiny(torch.nn.Module):
    def __init__(self, width=6):
        super().__init__()
        self.layer = torch.nn.Linear(10, width)

    def forward(self, x):
        return self.layer(x)


def test_network_settings_continue_a_custom_backbone(blobs):
    X, y = blobs
    settings = TrainSettings(
        5, 2, 5, (10,), backbone=_Tiny, backbone_params={"width": 4}, max_iter=3
    )
    model = meta_train(X, y, settings)
    again = TrainSettings(4, 1, 3, max_iter=2, **network_settings(model))
    continued = meta_train(X[y < 8], y[y < 8], again, init=model)
    assert continued.embedding_dim == 4
    assert continued.config["training"]["n_iter"] == 5
