"""SIGTERM during meta-training: end after the current iteration, then die.

Batch schedulers stop a job with SIGTERM, then SIGKILL after a grace period
(SLURM's ``KillWait``, 30 s by default; Kubernetes' 30 s; torchrun's agent
forwards it to every worker). By default SIGTERM kills the process at once,
losing the iterations since the last checkpoint. While a
:class:`TerminationGuard` is active the signal is only noted; the loop ends
after the iteration it interrupted, as if stopped (so its checkpoint is
written), and the guard then hands the signal on to whatever would have
received it: Python's default kills the process (exit status 143), a
handler of the user's runs, an outer guard (the ``skmeta train`` command's)
takes the request over.

Guards act only in the main thread, where Python runs signal handlers, and
never where SIGTERM is ignored.
"""

from __future__ import annotations

import signal
import threading

__all__ = ["TerminationGuard", "outer_guard_active"]


class TerminationGuard:
    """Note SIGTERM while active, instead of dying at once.

    Use it as a context manager. Guards nest: an inner guard takes over a
    request the outer one noted before it started, and :meth:`pass_on`
    hands its own request back to the outer guard instead of raising the
    signal again.

    Parameters
    ----------
    enabled : bool, default=True
        False makes the guard do nothing (no handler is installed).

    Attributes
    ----------
    requested : bool
        Whether SIGTERM arrived while the guard was active (or before, at an
        outer guard).
    active : bool
        Whether the guard's handler is installed (main thread, SIGTERM not
        ignored, `enabled`).

    Examples
    --------
    >>> import os, signal
    >>> with TerminationGuard() as outer:
    ...     with TerminationGuard() as inner:
    ...         os.kill(os.getpid(), signal.SIGTERM)  # noted, not fatal
    ...     inner.requested
    ...     inner.pass_on()                           # to the outer guard
    True
    >>> outer.requested
    True
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.requested = False
        self.active = False
        self._previous = None

    def __enter__(self) -> TerminationGuard:
        main = threading.current_thread() is threading.main_thread()
        if not (self.enabled and main):
            return self
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None or previous == signal.SIG_IGN:
            return self  # installed outside Python, or ignored: left alone
        self._previous = previous
        if isinstance(previous, TerminationGuard):
            self.requested = previous.requested
        signal.signal(signal.SIGTERM, self)
        self.active = True
        return self

    def __call__(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self.active:
            signal.signal(signal.SIGTERM, self._previous)
            self.active = False

    def pass_on(self) -> None:
        """Deliver a noted SIGTERM to its receiver, once the guard has exited:
        an outer guard notes it; anything else gets the signal raised again
        (Python's default then ends the process, status 143)."""
        if not self.requested or self.active or self._previous is None:
            return
        if isinstance(self._previous, TerminationGuard):
            self._previous.requested = True
        else:
            signal.raise_signal(signal.SIGTERM)


def outer_guard_active() -> bool:
    """Whether a :class:`TerminationGuard` handles SIGTERM in this thread now
    (always False outside the main thread, where no guard acts)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return isinstance(signal.getsignal(signal.SIGTERM), TerminationGuard)
