"""Seeded runs on torch's process-wide default generator, one thread at a time.

Weight initialisation, dropout and torchvision's random transforms draw from
torch's default generator, of which a process has one for all its threads. A
seeded run forks it (:func:`torch.random.fork_rng`), seeds it, and restores it
when done. Two such runs in threads at once (``GridSearchCV`` under joblib's
threading backend) would draw from each other's stream and restore each
other's state, so that neither result repeated; here they take turns. Every
meta-training run is one (``random_state=None`` draws a seed first), so
meta-training runs in threads of one process run one at a time. A network
whose weights are then loaded (a model read from a file, unpickled, or first
used on a device) is built on the ``meta`` device, drawing nothing
(:mod:`.model_network`); one that cannot be is built in a block that undoes
its draws (:func:`default_generator_untouched`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence

import torch

#: Held while a seeded run owns the default generator; re-entrant, so that a
#: seeded run may start another in the same thread.
_DEFAULT_GENERATOR_TURN = threading.RLock()


def _fresh_turn() -> None:
    """A forked child's own lock: the parent's may be held by a thread the
    child does not have, and would never be released there."""
    global _DEFAULT_GENERATOR_TURN
    _DEFAULT_GENERATOR_TURN = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_fresh_turn)


@contextlib.contextmanager
def seeded_default_generator(seed: int, devices: Sequence[int] = ()) -> Iterator[None]:
    """Seed torch's default generator for the block, then restore it.

    Parameters
    ----------
    seed : int
        The seed of the block's draws, in ``[0, 2**63)``.
    devices : sequence of int, default=()
        The CUDA devices whose generators are forked too.

    Notes
    -----
    Blocks in other threads wait for this one to end. Code of the caller's own
    that draws from torch's default generator in another thread meanwhile
    (outside such a block) still shares the stream, as torch's generator is
    process-wide.
    """
    with _DEFAULT_GENERATOR_TURN, torch.random.fork_rng(devices=list(devices)):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def default_generator_untouched() -> Iterator[None]:
    """Undo the block's draws from torch's default CPU generator.

    For work whose random draws are thrown away, such as the initialisation
    of a network whose weights are then loaded: the caller's generator state
    is as before, and a seeded run in another thread (which holds the turn
    meanwhile) neither loses draws to the block nor has its own undone.
    """
    with _DEFAULT_GENERATOR_TURN, torch.random.fork_rng(devices=[]):
        yield
