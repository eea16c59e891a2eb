"""What the checkpoint tests read from a checkpoint file and compare."""

import json

import torch
from safetensors import safe_open

from skmeta.meta.callbacks import Callback
from skmeta.meta.train import TrainSettings


def saved_iteration(path) -> int:
    """The iteration a checkpoint file holds the state after."""
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["skmeta_checkpoint"])["state"]["n_iter"]


def assert_same_weights(a, b) -> None:
    """Two models' weights, equal to the bit."""
    assert a.state.keys() == b.state.keys()
    for name in a.state:
        assert torch.equal(a.state[name], b.state[name]), name


def small_settings(path, **changes):
    """Settings of a short ProtoNet run on 10-feature rows, checkpointed at
    `path`."""
    base = dict(n_way=5, k_shot=2, n_query=3, input_shape=(10,), max_iter=8, seed=3)
    return TrainSettings(**{**base, "checkpoint": str(path), **changes})


class Steps(Callback):
    """A callback counting the iterations it saw (those of this session)."""

    def __init__(self):
        self.n = 0

    def on_step_end(self, loop, loss, metrics):
        self.n += 1


class Interrupt(Callback):
    """Ctrl-C as raised at once (a ``KeyboardInterrupt``) at iteration `at`."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == self.at:
            raise KeyboardInterrupt
