"""Checkpoints of meta-training, resumed to the same bits; warm starts.

:class:`Checkpoint` is a callback (:mod:`.callbacks`). Every `every`
iterations, and after the last, it writes the whole state of the loop: the
network's weights and buffers, :class:`~.optim.CosineAdam`'s moments and
position in its schedule, the loss scaler (:mod:`.precision`), the episode
stream's position (:class:`~.batches.BatchStream`: the numpy generator's state
at the start of its current block and the batches taken from it), torch's CPU
random state (and the GPU's when training on one), the history, ``n_iter``,
``stop``, and each callback's :meth:`~.callbacks.Callback.state_dict` (the
history's running means, early stopping's best loss, best weights and stale
count). Everything else a run holds (class split, validation episodes, input
statistics, initial weights) follows from its seed and data, so a run built
again from the same settings and restored from the file continues exactly as
the uninterrupted run would: the final weights are equal to the bit.

The file (:func:`.io.save_checkpoint`) is written atomically (a temporary
file in the same folder, synced, then ``os.replace``), so a run killed at any
moment leaves the previous checkpoint or the new one, never a torn file. Its
format is safetensors: the tensors, and JSON metadata (the loop's state with
references to the tensors, and the run's fingerprint: settings and a
description of the data, :func:`run_fingerprint`). Loading it executes no
code. A checkpoint of other settings or other data is refused with a
``ValueError``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .augment import describe_augmentation
from .callbacks import Callback
from .io import checkpoint_metadata, load_checkpoint, save_checkpoint

__all__ = ["Checkpoint", "recorded_seed", "run_fingerprint", "start_from"]

# Settings that change how fast a run goes or where it is saved, not what it
# computes (n_jobs: gradients are summed in a fixed order), or that a resumed
# run may change (device: a run killed on one machine resumes on another).
_FREE_SETTINGS = ("verbose", "n_jobs", "device", "checkpoint", "checkpoint_every")


class Checkpoint(Callback):
    """Write the loop's state to `path` now and then; resume from it.

    Put it last among the callbacks: it saves the state of those before it
    (:meth:`~.callbacks.Callback.state_dict`), and restores them in its
    ``on_train_begin``, after theirs ran. The loop's batches must give their
    position (:class:`~.batches.BatchStream`).

    Parameters
    ----------
    path : str or Path
        The checkpoint file. When it exists at the start, the run resumes from
        it (after checking its fingerprint); it stays after the run, holding
        the state after the last iteration.
    every : int, optional
        Iterations between two checkpoints; default the history's
        ``settings.eval_interval``. One is also written after the last
        iteration (not after a ``KeyboardInterrupt``: the iteration it
        interrupted may be half done).
    fingerprint : mapping, optional
        What the run is (:func:`run_fingerprint`): a checkpoint whose
        fingerprint differs is refused.
    writes : bool, default=True
        False on the processes other than rank 0 of a distributed run
        (:mod:`.distributed`): they resume from the file (which must then be
        on a file system they share) but leave writing it to rank 0.

    Attributes
    ----------
    resumed_from : int or None
        The iteration the run resumed after, None for a fresh run.
    """

    def __init__(
        self, path, every: int | None = None, fingerprint=None, writes: bool = True
    ) -> None:
        self.path, self.every, self.writes = Path(path), every, writes
        self.fingerprint = _jsonable(dict(fingerprint or {}))
        self.resumed_from = None

    def on_train_begin(self, loop):
        if self.path.is_dir() or not self.path.parent.is_dir():
            raise ValueError(
                f"checkpoint={str(self.path)!r} must be a file in an existing folder."
            )
        if self.path.exists():
            state = _read(self.path, self.fingerprint)
            try:
                _check_statistics(loop.net, state["net"])
                _restore(loop, state)
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
                raise ValueError(
                    f"Cannot resume from checkpoint={str(self.path)!r}: {exc} "
                    "Delete it (or give another path) to meta-train afresh."
                ) from None
            self.resumed_from = loop.n_iter

    def on_iteration_end(self, loop):
        every = self.every or loop.settings.eval_interval
        last = loop.stop or loop.n_iter >= loop.settings.max_iter
        if self.writes and (last or loop.n_iter % every == 0):
            self.save(loop)

    def save(self, loop) -> None:
        """Write the loop's state now (atomically, :func:`.io.save_checkpoint`)."""
        save_checkpoint(
            self.path, {"fingerprint": self.fingerprint, "state": _capture(loop)}
        )


def _capture(loop) -> dict:
    """Everything a resumed loop needs (JSON values and tensors)."""
    device = torch.device(loop.settings.device)
    state = {
        "n_iter": loop.n_iter,
        "stop": loop.stop,
        "history": loop.history,
        "net": loop.net.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "precision": loop.precision.state_dict(),
        "batches": loop.batches.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "callbacks": {
            key: callback.state_dict()
            for key, callback in _keyed(loop.callbacks)
            if not isinstance(callback, Checkpoint)
        },
    }
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _restore(loop, state: dict) -> None:
    loop.net.load_state_dict(state["net"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.precision.load_state_dict(state["precision"])
    loop.batches.load_state_dict(state["batches"])
    saved = state["callbacks"]
    for key, callback in _keyed(loop.callbacks):
        if isinstance(callback, Checkpoint):
            continue
        if key in saved:
            callback.load_state_dict(saved[key])
        elif callback.state_dict():
            raise ValueError(f"it holds no state of the callback {key}.")
    torch.set_rng_state(state["torch_rng"])
    device = torch.device(loop.settings.device)
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    loop.n_iter, loop.stop = int(state["n_iter"]), bool(state["stop"])
    loop.history = [dict(record) for record in state["history"]]


def _keyed(callbacks):
    """(key, callback): the class name, numbered from the second of a class."""
    seen: Counter = Counter()
    for callback in callbacks:
        name = type(callback).__name__
        seen[name] += 1
        yield (name if seen[name] == 1 else f"{name}#{seen[name]}"), callback


def _check_statistics(net, saved: Mapping) -> None:
    """The input scaling computed from this run's data must be the
    checkpoint's (to float rounding: another thread count may sum in
    another order)."""
    for name in ("input_mean", "input_scale"):
        own = getattr(net, name).detach().cpu()
        if name in saved and not torch.allclose(
            own, saved[name].to(own.dtype), rtol=1e-4, atol=1e-6
        ):
            raise ValueError(
                "the data differ from the checkpointed run's (their "
                f"statistics, {name}, do not match)."
            )


# -- the fingerprint: what a run is ----------------------------------------------


def _name(obj) -> str:
    """A stable description of a non-JSON value (no memory addresses)."""
    qualname = getattr(obj, "__qualname__", None)
    if qualname is None:
        qualname = type(obj).__qualname__
    return f"{getattr(obj, '__module__', None) or type(obj).__module__}.{qualname}"


def _jsonable(value):
    return json.loads(json.dumps(value, default=_name))


def _digest(*arrays) -> str:
    sha = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        sha.update(f"{array.dtype.str}{array.shape}".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def run_fingerprint(settings, X, y, targets=None, init=None, groups=None) -> dict:
    """What makes a run the run it is, JSON: its settings (all but those of
    speed, place and logging), the data's shape and dtype, a digest of the
    class codes (and targets, and the groups when episodes are drawn within
    them), and the model it started from.

    Parameters
    ----------
    settings : TrainSettings
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    targets : ndarray of shape (n_samples,), optional
    init : MetaModel, optional
        The model a warm start continues (:func:`start_from`).
    groups : ndarray of shape (n_samples,), int, optional
        The rows' groups; part of the run with ``within_group_episodes``.

    Returns
    -------
    dict
    """
    fields = {k: v for k, v in asdict(settings).items() if k not in _FREE_SETTINGS}
    if not isinstance(settings.backbone, str):
        fields["backbone"] = _name(settings.backbone)
    fields["augmentation"] = describe_augmentation(settings.augmentation)
    data = {
        "shape": list(X.shape),
        "dtype": str(X.dtype),
        "labels": _digest(np.asarray(y, dtype=np.int64)),
        "targets": None if targets is None else _digest(np.asarray(targets)),
    }
    if groups is not None and settings.within_group_episodes:
        data["groups"] = _digest(np.asarray(groups, dtype=np.int64))
    start = None
    if init is not None:
        start = {
            "n_iter": _iterations(init),
            "weights": _digest(
                *(
                    t.reshape(-1).view(torch.uint8).numpy()  # any dtype, as bytes
                    for _, t in sorted(init.state.items())
                )
            ),
        }
    return _jsonable({"settings": fields, "data": data, "warm_start": start})


def _differences(recorded: Mapping, current: Mapping) -> list[str]:
    found = []
    for name, value in current.get("settings", {}).items():
        before = recorded.get("settings", {}).get(name)
        if before != value:
            source = " (from random_state)" if name == "seed" else ""
            found.append(f"{name}={before!r} there, {value!r} here{source}")
    if recorded.get("data") != current.get("data"):
        found.append(
            "other data (shape, dtype, labels or groups: "
            f"{recorded.get('data', {}).get('shape')} there, "
            f"{current.get('data', {}).get('shape')} here)"
        )
    if recorded.get("warm_start") != current.get("warm_start"):
        found.append("another starting model (warm_start)")
    return found


def _read(path: Path, fingerprint: Mapping) -> dict:
    """The loop's state in the checkpoint at `path`, after checking that it
    is of the run `fingerprint` describes."""
    differences = _differences(
        checkpoint_metadata(path).get("fingerprint", {}), fingerprint
    )
    if differences:
        raise ValueError(
            f"checkpoint={str(path)!r} is of another meta-training run: "
            f"{'; '.join(differences)}. Resume with that run's settings and data, "
            "or give another checkpoint path (or delete the file) to meta-train "
            "afresh."
        )
    return load_checkpoint(path)["state"]


def recorded_seed(path) -> int | None:
    """The seed of the run checkpointed at `path`, or None without a file
    (a resumed run takes it when the user gave none)."""
    path = Path(path)
    if not path.is_file():
        return None
    seed = checkpoint_metadata(path).get("fingerprint", {}).get("settings", {})
    seed = seed.get("seed")
    return None if seed is None else int(seed)


# -- warm start ----------------------------------------------------------------


def _iterations(model) -> int:
    """Meta-training iterations behind `model` (0 for a wrapped module)."""
    return int(model.config.get("training", {}).get("n_iter", 0))


def start_from(net, model, settings) -> int:
    """Load the weights of a meta-trained `model` into `net` (a warm start).

    Parameters
    ----------
    net : MetaNet
        Built from `settings`; its weights and input scaling are replaced.
    model : MetaModel
    settings : TrainSettings

    Returns
    -------
    int
        The iterations behind `model`, which the warm start counts on from.

    Raises
    ------
    ValueError
        If `model` is of another method or its network is not the one
        `settings` build (backbone, its parameters, the method's
        meta-parameters, input shape).
    """
    advice = "keep the fitted model's settings, or set warm_start=False"
    if model.method != settings.method:
        raise ValueError(
            f"warm_start=True continues the fitted model, meta-trained with "
            f"method={model.method!r}, not {settings.method!r}; {advice}."
        )
    own, theirs = net.state_dict(), model.state
    shapes = {k: tuple(v.shape) for k, v in own.items()}
    if shapes != {k: tuple(v.shape) for k, v in theirs.items()}:
        raise ValueError(
            "warm_start=True continues the fitted model, whose network differs "
            f"from the one these settings build (backbone={settings.backbone!r}, "
            f"backbone_params={settings.backbone_params!r}, input_shape="
            f"{settings.input_shape}, the method's settings); {advice}."
        )
    net.load_state_dict(dict(theirs))
    return _iterations(model)
