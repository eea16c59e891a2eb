"""What the checkpoint tests read from a checkpoint file and compare."""

import json

import torch
from safetensors import safe_open


def saved_iteration(path) -> int:
    """The iteration a checkpoint file holds the state after."""
    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["skmeta_checkpoint"])["state"]["n_iter"]


def assert_same_weights(a, b) -> None:
    """Two models' weights, equal to the bit."""
    assert a.state.keys() == b.state.keys()
    for name in a.state:
        assert torch.equal(a.state[name], b.state[name]), name
