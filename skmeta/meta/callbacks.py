"""Hooks of the meta-training loop, as skorch's callbacks.

The loop (:class:`skmeta.meta.train.MetaTrainer`) only draws batches, takes
meta-gradients and steps the optimiser; everything else is a
:class:`Callback`: the history, gradient clipping, validation with early
stopping, the progress bar (:mod:`.progress`). A new cross-cutting feature
(checkpoints, distributed all-reduce, online meta-learning) is a new callback,
not an edit of the loop. A callback that keeps state across iterations gives it in
:meth:`Callback.state_dict`, so that a checkpoint (:mod:`.checkpoint`) saves
and restores it.
"""

from __future__ import annotations

import math
import time

import torch

from .net import widest_activations

__all__ = [
    "Callback",
    "EarlyStopping",
    "GradientClipping",
    "History",
    "validation_metrics",
    "validation_sums",
]


class Callback:
    """Base class: every hook does nothing.

    Each hook receives the running :class:`~skmeta.meta.train.MetaTrainer`
    (``loop``): its ``net``, ``algorithm``, ``optimizer``, ``settings``,
    ``n_iter`` (iterations done) and ``history``; setting ``loop.stop = True``
    ends meta-training after the current iteration.

    Attributes
    ----------
    saves_state : bool
        True for a callback that writes the run's state (a checkpoint): the
        loop then ends at an iteration's end on SIGTERM, SIGHUP, SIGUSR1,
        SIGUSR2 or a first Ctrl-C, letting it write, rather than dying
        mid-iteration (:mod:`.termination`).
    """

    saves_state = False

    def on_train_begin(self, loop) -> None:
        """Before the first iteration."""

    def on_gradient(self, loop) -> None:
        """The meta-gradient is in ``.grad``; the optimiser has not stepped."""

    def on_step_end(self, loop, loss: float, metrics: dict) -> None:
        """After the update of iteration ``loop.n_iter``, with its loss and
        metrics."""

    def on_record(self, loop, record: dict) -> None:
        """Every ``settings.eval_interval`` iterations and at the last: add
        entries to `record`, which then joins ``loop.history``."""

    def on_iteration_end(self, loop) -> None:
        """Iteration ``loop.n_iter`` is complete, its record (if any) in
        ``loop.history``: the state a checkpoint saves."""

    def on_train_end(self, loop) -> None:
        """After the last iteration (also when stopped early or interrupted)."""

    def state_dict(self) -> dict:
        """What this callback carries from one iteration to the next, for a
        checkpoint: numbers, strings, lists, dicts and tensors (nothing else).
        Empty (the default) for a callback without such state."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`, after :meth:`on_train_begin`."""


class History(Callback):
    """Mean loss and metric since the previous record, the learning rate of
    the next step, and the time elapsed (``"elapsed"``, seconds: since the
    run's start, over every session of a run resumed from a checkpoint,
    which saves it; the time between sessions, and that of iterations lost
    after the last checkpoint, are not counted)."""

    def on_train_begin(self, loop):
        self.start = time.perf_counter()
        self._reset()

    def _reset(self):
        self.loss, self.score, self.n = 0.0, 0.0, 0

    def on_step_end(self, loop, loss, metrics):
        self.loss += loss
        self.score += metrics[loop.algorithm.metric]
        self.n += 1

    def on_record(self, loop, record):
        record["loss"] = self.loss / self.n
        record[loop.algorithm.metric] = self.score / self.n
        record["learning_rate"] = loop.optimizer.lr
        record["elapsed"] = time.perf_counter() - self.start
        self._reset()

    def state_dict(self):
        return {
            "loss": self.loss,
            "score": self.score,
            "n": self.n,
            "elapsed": time.perf_counter() - self.start,
        }

    def load_state_dict(self, state):
        self.loss, self.score, self.n = state["loss"], state["score"], state["n"]
        self.start = time.perf_counter() - state["elapsed"]


class GradientClipping(Callback):
    """Clip the meta-gradient to a total norm (``clip_grad_norm_``); records
    the mean norm before clipping as ``grad_norm``.

    Parameters
    ----------
    max_norm : float
    """

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm
        self.total, self.n = 0.0, 0

    def on_gradient(self, loop):
        norm = float(
            torch.nn.utils.clip_grad_norm_(loop.net.parameters(), self.max_norm)
        )
        skipped = loop.precision.scaler is not None and not math.isfinite(norm)
        if not skipped:  # float16's skipped steps (inf) are not counted
            self.total += norm
            self.n += 1

    def on_record(self, loop, record):
        # nan when every step was skipped; a diverging float32 run shows inf
        record["grad_norm"] = self.total / self.n if self.n else float("nan")
        self.total, self.n = 0.0, 0

    def state_dict(self):
        return {"total": self.total, "n": self.n}

    def load_state_dict(self, state):
        self.total, self.n = state["total"], state["n"]


# Floats in the widest activation of one validation pass (128 MB): a task of
# 84x84 images through Conv4 at a time, a few of 28x28.
_VALIDATION_FLOATS = 1 << 25


def validation_sums(algorithm, net, episodes) -> tuple[float, float, int]:
    """Summed loss and metric of `algorithm` over the tasks of `episodes`, and
    their number, taken a few tasks at a time: as many as keep the network's
    widest activation within 128 MB."""
    loss = score = 0.0
    n_tasks = 0
    max_rows = max(1, _VALIDATION_FLOATS // widest_activations(net)[0])
    for batch in episodes.batches(max_rows):
        chunk_loss, chunk_score = algorithm.episode_metrics(net, batch)
        loss += chunk_loss * batch.n_tasks
        score += chunk_score * batch.n_tasks
        n_tasks += batch.n_tasks
    return loss, score, n_tasks


def validation_metrics(algorithm, net, episodes) -> tuple[float, float]:
    """Mean loss and metric of `algorithm` over the tasks of `episodes`
    (:func:`validation_sums`)."""
    loss, score, n_tasks = validation_sums(algorithm, net, episodes)
    return loss / n_tasks, score / n_tasks


class EarlyStopping(Callback):
    """Validate on held-out episodes at every record; stop after `patience`
    records without improvement of the validation loss, and keep the best
    weights.

    Parameters
    ----------
    episodes : ValidationEpisodes
        Validation episodes, drawn once from held-out classes
        (:class:`~skmeta.meta.batches.ValidationEpisodes`), or any object
        whose ``batches()`` yields :class:`TaskBatch` objects.
    patience : int
        Records without an improvement of more than `tol` before stopping.
    tol : float, default=1e-4
    reduce : callable, optional
        In a distributed run, `episodes` are this process's share, and
        ``reduce([loss_sum, metric_sum, n_tasks])`` returns their sums over
        all processes (:meth:`~skmeta.meta.distributed.Ranks.sum`), the same
        on every one: so are the records and the decision to stop.
    """

    def __init__(self, episodes, patience: int, tol: float = 1e-4, reduce=None) -> None:
        self.episodes, self.patience, self.tol = episodes, patience, tol
        self.reduce = reduce
        self.best_loss, self.best_iter, self.best_state, self.stale = (
            math.inf,
            0,
            None,
            0,
        )

    def on_record(self, loop, record):
        metric = loop.algorithm.metric
        loop.net.eval()
        sums = validation_sums(loop.algorithm, loop.net, self.episodes)
        if self.reduce is not None:
            sums = self.reduce(sums)
        loss, score, n_tasks = sums
        record["val_loss"], record[f"val_{metric}"] = loss / n_tasks, score / n_tasks
        if record["val_loss"] < self.best_loss - self.tol:
            self.best_loss, self.best_iter, self.stale = (
                record["val_loss"],
                loop.n_iter,
                0,
            )
            self.best_state = {k: v.clone() for k, v in loop.net.state_dict().items()}
        else:
            self.stale += 1
            if self.stale >= self.patience:
                loop.stop = True

    def on_train_end(self, loop):
        if self.best_state is not None:
            loop.net.load_state_dict(self.best_state)
            loop.best_iter = self.best_iter

    def state_dict(self):
        return {
            "best_loss": self.best_loss,
            "best_iter": self.best_iter,
            "best_state": self.best_state,
            "stale": self.stale,
        }

    def load_state_dict(self, state):
        self.best_loss, self.best_iter = state["best_loss"], state["best_iter"]
        self.best_state, self.stale = state["best_state"], state["stale"]
