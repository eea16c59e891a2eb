"""The batch streams (skmeta.meta.batches): endless, and resumable anywhere."""

import numpy as np
import pytest
import torch

from skmeta.meta.batches import BatchStream, labelled_batches, task_batches
from skmeta.meta.episodes import ClassIndex
from skmeta.meta.rows import Rows
from skmeta.meta.train import TrainSettings


def _streams(kind, seed):
    X = np.arange(300 * 4, dtype=np.float32).reshape(300, 4)
    y = np.repeat(np.arange(30), 10)
    rows, rng = Rows(X, (4,), torch.device("cpu")), np.random.default_rng(seed)
    if kind == "tasks":
        settings = TrainSettings(n_way=3, k_shot=2, n_query=2, input_shape=(4,))
        index = ClassIndex.from_labels(y)
        return task_batches(rows, index, settings, rng, 3, 2, n_tasks=2)
    return labelled_batches(rows, np.arange(300), y, 32, rng)  # 9 a pass


def _rows(batch):
    return batch.support_x if hasattr(batch, "support_x") else batch.x


@pytest.mark.parametrize("kind", ["tasks", "labelled"])
@pytest.mark.parametrize("taken", [0, 1, 9, 64, 70])
def test_a_stream_resumed_from_its_state_yields_the_same_batches(kind, taken):
    stream = _streams(kind, 0)
    assert isinstance(stream, BatchStream)
    for _ in range(taken):
        next(stream)
    state = stream.state_dict()
    expected = [_rows(next(stream)) for _ in range(80)]
    resumed = _streams(kind, 1)  # another generator: the state replaces it
    next(resumed)
    resumed.load_state_dict(state)
    for want in expected:
        assert torch.equal(_rows(next(resumed)), want)
