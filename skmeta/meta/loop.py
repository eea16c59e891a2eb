"""The meta-training loop: a batch, its meta-gradient, an update, and hooks.

:class:`MetaTrainer` runs the iterations; everything around them (history,
clipping, validation, early stopping, progress) is a callback
(:mod:`.callbacks`). :func:`meta_gradient` takes one batch's meta-gradient by
the method's speed path or its reference. What to train on and with which
network is assembled in :mod:`.train`.
"""

from __future__ import annotations

import contextlib
import math
import signal
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch

from . import accel
from .algorithms import Algorithm, InnerLoopMethod
from .algorithms.divergence import settings_text
from .callbacks import Callback
from .caller import user_stacklevel
from .net import MetaNet
from .optim import CosineAdam
from .precision import Precision
from .termination import TERMINATING, TerminationGuard, outer_guard_active
from .thread_counts import thread_counts

if TYPE_CHECKING:  # .train imports this module
    from .distributed import Ranks
    from .train import TrainSettings

__all__ = ["MetaTrainer", "meta_gradient"]

#: The keys that carry the signals a process noted (Ctrl-C, SIGTERM, ...)
#: through the all-reduce of a distributed run's metrics, so that every
#: process stops at one iteration.
_SIGNALS = {
    signum: f"__signal_{int(signum)}__" for signum in (signal.SIGINT, *TERMINATING)
}


def meta_gradient(
    algorithm: Algorithm, net: MetaNet, batch, n_jobs=None, precision=None
):
    """Add the meta-gradient of `batch` to the ``.grad`` of `net`'s parameters.

    The speed path registered for the method (``skmeta.meta.accel``), or the
    reference: ``algorithm.loss(net, batch).backward()``, which mixed
    precision always takes (:mod:`.precision`).

    Returns
    -------
    loss : float
    metrics : dict
        ``{algorithm.metric: value}``.
    """
    mixed = precision is not None and precision.mixed
    path = None if mixed else accel.find("meta_gradient", algorithm)
    if path is not None:
        return path(algorithm, net, batch, n_jobs)
    with precision.autocast() if mixed else contextlib.nullcontext():
        loss, metrics = algorithm.loss(net, batch)
    loss = loss.float()
    if torch.isfinite(loss):  # the loop reports a non-finite loss
        if mixed:
            precision.backward(loss)
        else:
            loss.backward()
    return loss.item(), metrics


class MetaTrainer:
    """The loop: for each iteration, a batch, its meta-gradient, an update.

    Parameters
    ----------
    net : MetaNet
        Trained in place.
    algorithm : Algorithm
    optimizer : CosineAdam
    batches : iterator
        Endless :class:`~skmeta.meta.algorithms.TaskBatch` or
        :class:`~skmeta.meta.algorithms.LabelledBatch` objects.
    settings : TrainSettings
    callbacks : sequence of Callback
        Run in this order at each hook.
    ranks : Ranks, optional
        The processes of a distributed run (:mod:`.distributed`): `batches`
        are this process's shares of the meta-batches, and each meta-gradient
        is all-reduced into the whole meta-batch's before anything else sees
        it (loss scaling, the finite-loss check, ``on_gradient``).

    Attributes
    ----------
    n_iter : int
        Iterations done.
    history : list of dict
        The records callbacks filled.
    best_iter : int
        The iteration whose weights were kept (an early-stopping callback sets
        it; otherwise the last).
    stop : bool
        Set by a callback to end after the current iteration.
    interrupted : bool
        Whether Ctrl-C or a terminating signal ended the run (see :meth:`run`).
    interrupted_by : {"KeyboardInterrupt", "SIGTERM", "SIGHUP", "SIGUSR1", \
"SIGUSR2"} or None
        Which (``"KeyboardInterrupt"`` for Ctrl-C, first or second).
    terminating : bool
        Set at the end of the iteration a signal (Ctrl-C, SIGTERM ...)
        arrived in: the loop ends after it. Unlike `stop`, a checkpoint does
        not save it.
    precision : Precision
        Autocast and loss scaling (``settings.precision``).
    thread_counts : dict
        torch's threads and the tasks' worker threads the run computes with
        (:func:`.thread_counts.thread_counts`), set when :meth:`run` starts.
    """

    def __init__(
        self,
        net: MetaNet,
        algorithm: Algorithm,
        optimizer: CosineAdam,
        batches: Iterator,
        settings: TrainSettings,
        callbacks: Sequence[Callback] = (),
        ranks: Ranks | None = None,
    ) -> None:
        self.net, self.algorithm, self.optimizer = net, algorithm, optimizer
        self.ranks = ranks
        self.batches, self.settings = batches, settings
        self.callbacks = list(callbacks)
        self.n_iter, self.history, self.stop = 0, [], False
        self.best_iter, self.interrupted, self.interrupted_by = 0, False, None
        self.terminating = False  # a signal: ending after this iteration
        self._guard = TerminationGuard(enabled=False)
        self._updated = 0  # iterations whose update was made
        self.precision = Precision(settings.precision, settings.device)
        self.thread_counts: dict[str, int] = {}

    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def run(self) -> MetaTrainer:
        """Meta-train for ``settings.max_iter`` iterations or until stopped.

        Ctrl-C ends meta-training as if stopped (``on_train_end`` runs:
        early stopping's best weights are kept), with a warning, and `run`
        returns. Where SIGINT has Python's own handler (in the main thread),
        the first Ctrl-C is noted and the loop ends after the iteration it
        arrived in (a checkpoint is written, as after the last iteration); a
        second one, or a ``KeyboardInterrupt`` raised otherwise, ends it at
        once, and `n_iter` then counts the iterations whose update was made.

        SIGTERM (and SIGHUP, SIGUSR1, SIGUSR2 where their handler is the
        default), when a callback saves the run's state (a checkpoint) or an
        outer :class:`~.termination.TerminationGuard` is active, ends
        meta-training after the iteration it arrived in, as if stopped (the
        checkpoint is written), with a warning; the signal is then passed
        on: by default ``SystemExit(128 + signum)`` (status 143 for SIGTERM)
        is raised. Every process of a distributed run stops after the same
        iteration, for Ctrl-C too.
        """
        saves_state = any(c.saves_state for c in self.callbacks)
        enabled = saves_state or outer_guard_active()
        guard = TerminationGuard(enabled=enabled, interrupt=True)
        failing = True
        try:
            with guard:
                self._guard = guard
                self._run(saves_state)
            failing = False
        finally:  # a signal noted anywhere, even in a hook; an error wins
            self._guard = TerminationGuard(enabled=False)
            guard.pass_on(failing)
        return self

    def _run(self, saves_state: bool) -> None:
        """:meth:`run`'s body, within its termination guard."""
        settings = self.settings
        self.net.train()  # as the iterations run it (dropout: one worker)
        self.thread_counts = thread_counts(self)
        self._call("on_train_begin")  # a checkpoint may restore n_iter here
        self._updated = self.n_iter
        try:
            while not (
                self.n_iter >= settings.max_iter or self.stop or self.terminating
            ):
                self._iteration()
                self._call("on_iteration_end")
        except KeyboardInterrupt:  # at once: this iteration is not saved
            self.n_iter, self.interrupted = self._updated, True
            self.interrupted_by, self.terminating = "KeyboardInterrupt", False
            self._guard.consume_interrupt()  # acted on: fit returns
        self.best_iter = self.n_iter
        self._call("on_train_end")
        if self.interrupted:
            by, written = self.interrupted_by, saves_state and self.terminating
            warnings.warn(
                f"Meta-training interrupted ({by}) after "
                f"{self.n_iter} of {settings.max_iter} iterations; keeping "
                f"the model so far (the weights of iteration {self.best_iter})"
                + (
                    f"; {by} is passed on"
                    + (" now that the checkpoint is written." if saves_state else ".")
                    if by != "KeyboardInterrupt"
                    else "; the checkpoint is written."
                    if written
                    else "."
                ),
                UserWarning,
                stacklevel=user_stacklevel(),  # the user's call to fit
            )

    def _iteration(self) -> None:
        """Iteration ``n_iter + 1``: a batch, its meta-gradient, the update,
        the hooks, and a record every ``eval_interval`` iterations."""
        settings = self.settings
        self.n_iter += 1
        self.net.train()
        self.optimizer.zero_grad()
        batch = next(self.batches)
        loss, metrics = meta_gradient(
            self.algorithm, self.net, batch, settings.n_jobs, self.precision
        )
        if self.ranks is not None:  # every process stops if one was signalled
            noted = self._guard.noted()
            flags = {key: float(s in noted) for s, key in _SIGNALS.items()}
            loss, metrics = self.ranks.reduce_meta_gradient(
                self.optimizer.params, batch, loss, {**metrics, **flags}
            )
            noted = {s for s, key in _SIGNALS.items() if metrics.pop(key) > 0}
        if not math.isfinite(loss):
            raise FloatingPointError(self._diverged(f"the loss became {loss}"))
        self.precision.unscale(self.optimizer)
        # With float16 loss scaling an overflowing gradient is expected: the
        # scaler skips that step. Otherwise it would put NaN into the weights.
        if self.precision.scaler is None and not _all_finite(
            [p.grad for p in self.optimizer.params if p.grad is not None]
        ):
            raise FloatingPointError(
                self._diverged(f"the meta-gradient is not finite (loss {loss:.4g})")
            )
        self._call("on_gradient")
        self.precision.step(self.optimizer)
        if not _all_finite(self.optimizer.params):
            raise FloatingPointError(
                self._diverged("the update made the weights non-finite")
            )
        self._updated = self.n_iter  # the weights are this iteration's
        self._call("on_step_end", loss, metrics)
        if self.n_iter % settings.eval_interval == 0 or (
            self.n_iter == settings.max_iter
        ):
            record = {"iter": self.n_iter}
            self._call("on_record", record)
            self.history.append(record)
        if self.ranks is None:  # a signal during this iteration counts
            noted = self._guard.noted()
        else:  # signalled on another rank: this one ends alike, and passes a
            # terminating signal on too, so the script's save after fit never
            # runs on a cut-short model (rank 0 saved one: a reviewer)
            self._guard.absorb(noted)
        if noted:
            self._end_for(noted)

    def _end_for(self, noted: set) -> None:
        """End after this iteration for the signals `noted` (every process
        of a distributed run the same): the terminating one first, else
        Ctrl-C, which ends here (nothing to pass on). After the last
        iteration the run is done, not interrupted (a terminating signal is
        still passed on). The end is not recorded as `stop`, which a
        checkpoint saves: the resumed run goes on."""
        terminating = sorted(noted - {signal.SIGINT})
        if not terminating:
            self._guard.consume_interrupt()
        if self.n_iter < self.settings.max_iter:
            self.terminating = self.interrupted = True
            self.interrupted_by = (
                signal.Signals(terminating[0]).name
                if terminating
                else "KeyboardInterrupt"
            )

    def _diverged(self, what: str) -> str:
        """The error message of a meta-training that diverged at this
        iteration: `what` happened, the settings to change, and what the
        checkpoint (if any) still holds."""
        settings, algorithm = self.settings, self.algorithm
        rates = f"learning_rate={settings.learning_rate}"
        if isinstance(algorithm, InnerLoopMethod):  # the MAML family, Reptile
            advice = f"{rates}, {settings_text(algorithm)}, or lower learning_rate"
        else:
            advice = f"{rates}); lower learning_rate"
        message = (
            f"Meta-training diverged at iteration {self.n_iter} of "
            f"{settings.max_iter}: {what} ({advice}."
        )
        if algorithm.regression and not settings.normalize_y:
            message += (  # Reptile diverged on targets of deviation 42
                " Regression targets far from mean 0 and deviation 1 diverge "
                "too: set normalize_y=True."
            )
        return message + self._checkpoint_text()

    def _checkpoint_text(self) -> str:
        """What ``settings.checkpoint`` holds after a divergence ("" without
        one): the last state written before, whose weights were finite."""
        path = self.settings.checkpoint
        if path is None:
            return ""
        every = self.settings.checkpoint_every or self.settings.eval_interval
        written = ((self.n_iter - 1) // every) * every
        for callback in self.callbacks:
            written = max(written, getattr(callback, "resumed_from", None) or 0)
        if written == 0:
            return f" No checkpoint was written yet to checkpoint={path!r}."
        return (
            f" checkpoint={path!r} keeps the state of iteration {written}, the last "
            "written before this, with finite weights; it resumes only with these "
            "settings (give another checkpoint path to change them)."
        )


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every value in `tensors` is finite: one fused norm, and the
    element-wise test only when the norm is not finite (it may overflow for
    large finite values)."""
    if not tensors:
        return True
    norms = torch._foreach_norm([t.detach() for t in tensors])
    if bool(torch.isfinite(torch.stack([n.float() for n in norms])).all()):
        return True
    return all(bool(torch.isfinite(t).all()) for t in tensors)
