"""Signals during meta-training: end after the current iteration, then act.

Batch schedulers stop a job with SIGTERM, then SIGKILL after a grace period
(SLURM's ``KillWait``, 30 s by default; Kubernetes' 30 s; torchrun's agent
forwards it to every worker), and warn of it earlier with SIGUSR1, SIGUSR2
or SIGHUP if asked (SLURM's ``--signal=USR1@120``). By default each of these
kills the process at once, losing the iterations since the last checkpoint.
While a :class:`TerminationGuard` is active such a signal is only noted; the
loop ends after the iteration it interrupted, as if stopped (so its
checkpoint is written), and the guard then hands the signal on to whatever
would have received it: where that is Python's default (death), the process
ends by ``SystemExit(128 + signum)`` (status 143 for SIGTERM), so that
``finally`` blocks and ``atexit`` handlers run; a SIGTERM handler of the
user's runs; an outer guard (the ``skmeta train`` command's) takes the
request over.

Ctrl-C (SIGINT, where Python's own handler raises ``KeyboardInterrupt``)
is noted the same way, once: the loop ends after the iteration, and ``fit``
returns the model so far. A second Ctrl-C raises ``KeyboardInterrupt`` at
once.

Guards act only in the main thread, where Python runs signal handlers, and
never where a signal is ignored or (SIGINT, SIGUSR1, SIGUSR2, SIGHUP) has a
handler of the user's.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterable

__all__ = ["TERMINATING", "TerminationGuard", "outer_guard_active"]

#: The signals that end a process by default, and that a guard defers to an
#: iteration's end (those the platform has: Windows lacks all but SIGTERM).
TERMINATING = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


class TerminationGuard:
    """Note terminating signals (and, if asked, Ctrl-C) while active.

    Use it as a context manager. Guards nest: an inner guard takes over a
    request the outer one noted before it started, and :meth:`pass_on`
    hands its own request back to the outer guard instead of ending the
    process.

    Parameters
    ----------
    enabled : bool, default=True
        Take over the terminating signals (:data:`TERMINATING`): SIGTERM
        unless ignored, the others where their handler is the default.
        False installs no handler for them.
    interrupt : bool, default=False
        Also take over SIGINT where its handler is Python's own
        (``signal.default_int_handler``): the first Ctrl-C is noted, a
        second one raises ``KeyboardInterrupt`` at once.

    Attributes
    ----------
    requested : bool
        Whether a terminating signal arrived while the guard was active (or
        before, at an outer guard; or at another process of a distributed
        run: :meth:`absorb`).
    signum : int or None
        That signal (the first, if several).
    interrupted : bool
        Whether Ctrl-C arrived and was not yet consumed (:meth:`consume_interrupt`).
    active : bool
        Whether the guard's handler is installed for some signal (main
        thread, a signal it may take over).

    Examples
    --------
    >>> import os, signal
    >>> with TerminationGuard() as outer:
    ...     with TerminationGuard() as inner:
    ...         os.kill(os.getpid(), signal.SIGTERM)  # noted, not fatal
    ...     inner.requested
    ...     inner.pass_on()                           # to the outer guard
    True
    >>> outer.requested, outer.signum == signal.SIGTERM
    (True, True)
    """

    def __init__(self, enabled: bool = True, interrupt: bool = False) -> None:
        self.enabled, self.interrupt = enabled, interrupt
        self.requested, self.signum, self.interrupted = False, None, False
        self.active = False
        self._previous: dict = {}  # signum -> the handler the guard replaced
        self._ctrl_c = 0  # SIGINTs this guard received

    def __enter__(self) -> TerminationGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        wanted = (TERMINATING if self.enabled else ()) + (
            (signal.SIGINT,) if self.interrupt else ()
        )
        for signum in wanted:
            previous = signal.getsignal(signum)
            if not _may_take(signum, previous):
                continue
            if isinstance(previous, TerminationGuard):
                if previous.requested and not self.requested:
                    self.note(previous.signum)
                self.interrupted |= signum == signal.SIGINT and previous.interrupted
            self._previous[signum] = previous
            signal.signal(signum, self)
        self.active = bool(self._previous)
        return self

    def __call__(self, signum, frame) -> None:
        if signum != signal.SIGINT:
            self.note(signum)
            return
        self._ctrl_c += 1
        if self._ctrl_c > 1:  # the second Ctrl-C: at once
            raise KeyboardInterrupt
        self.interrupted = True

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self.active = False

    def note(self, signum: int) -> None:
        """Note terminating signal `signum` (the first noted is kept)."""
        if not self.requested:
            self.requested, self.signum = True, signum

    def absorb(self, signums: Iterable[int]) -> None:
        """Note the signals another process of a distributed run received,
        so that this one ends alike: a terminating signal (the lowest, where
        this process noted none of its own) or Ctrl-C."""
        signums = set(signums)
        terminating = sorted(signums & set(TERMINATING))
        if terminating:
            self.note(terminating[0])
        self.interrupted |= signal.SIGINT in signums

    def noted(self) -> set[int]:
        """The signals noted and not yet consumed."""
        noted = {self.signum} if self.requested else set()
        return noted | {signal.SIGINT} if self.interrupted else noted

    def consume_interrupt(self) -> None:
        """Ctrl-C was acted on (meta-training ended): nothing to pass on."""
        self.interrupted = False

    def pass_on(self, failing: bool = False) -> None:
        """Deliver a noted signal to its receiver, once the guard has exited.

        A terminating signal: an outer guard notes it; a handler of the
        user's runs (the signal is raised again); otherwise ``SystemExit(128
        + signum)`` is raised. An unconsumed Ctrl-C: an outer guard notes it,
        else ``KeyboardInterrupt`` is raised. With `failing` (an exception is
        on its way out) only an outer guard is told: the error propagates.
        """
        if self.active:
            return
        if self.requested:
            signum, previous = self.signum, self._previous.get(self.signum)
            if isinstance(previous, TerminationGuard):
                previous.note(signum)
            elif failing:
                return
            elif callable(previous):
                signal.raise_signal(signum)  # the user's SIGTERM handler
            else:  # the default: the process ends, as the signal would
                raise SystemExit(128 + signum)
        elif self.interrupted:
            previous = self._previous.get(signal.SIGINT)
            if isinstance(previous, TerminationGuard):
                previous.interrupted = True
            elif not failing:
                raise KeyboardInterrupt


def _may_take(signum: int, previous) -> bool:
    """Whether a guard takes `signum` over from handler `previous`: from an
    outer guard always; SIGTERM from any but ``SIG_IGN`` or one installed
    outside Python; SIGINT from Python's own; the others from the default.
    A default that is Python's only (``faulthandler.register``'s C-level
    handler reads as ``SIG_DFL``) is the user's: taking it over would lose
    it for the rest of the process."""
    if isinstance(previous, TerminationGuard):
        return True
    if signum == signal.SIGINT:
        return previous is signal.default_int_handler
    if previous == signal.SIG_DFL and not _default_in_c(signum):
        return False
    if signum == signal.SIGTERM:
        return previous is not None and previous != signal.SIG_IGN
    return previous == signal.SIG_DFL


def _default_in_c(signum: int) -> bool:
    """Whether the C-level handler of `signum` is the default (``SIG_DFL``),
    as ``sigaction`` reads it: a handler installed outside Python's
    ``signal`` module (faulthandler's) is not. True where it cannot be read
    (no libc ``sigaction``: Windows)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        action = ctypes.create_string_buffer(512)  # above any struct sigaction
        if libc.sigaction(signum, None, action) != 0:
            return True
    except (OSError, AttributeError, TypeError):
        return True
    # the handler (a union with sa_sigaction) is the struct's first member
    # on Linux and macOS; SIG_DFL is 0
    return not any(action.raw[: ctypes.sizeof(ctypes.c_void_p)])


def outer_guard_active() -> bool:
    """Whether a :class:`TerminationGuard` handles SIGTERM in this thread now
    (always False outside the main thread, where no guard acts)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return isinstance(signal.getsignal(signal.SIGTERM), TerminationGuard)
