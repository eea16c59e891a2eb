"""Speed paths, apart from the methods and behind one switch.

Each path computes what a reference computation of the torch layer computes,
faster or in less memory, for the networks or methods it knows; each is tested
equal to its reference. They are found by kind, for the object at hand:

==================  =====================================  ======================
kind                reference                              path (module)
==================  =====================================  ======================
``embed_tasks``     ``functional.embed`` task by task      tasks as channel groups
                                                           of one network pass
                                                           (:mod:`.grouped`: Conv4,
                                                           MLP)
``embed_once``      ``functional.embed``                   batch norm + ReLU fused,
                                                           differentiable once
                                                           (:mod:`.first_order`:
                                                           Conv4)
``inference``       the network itself                     batch norms folded,
                                                           ReLUs in place
                                                           (:mod:`.fusion`)
``meta_gradient``   ``algorithm.loss(...).backward()``     tasks (or groups of
                                                           them) one by one, in
                                                           worker threads
                                                           (:mod:`.meta_gradient`:
                                                           inner-loop methods)
``support_``        ``functional.support_statistics``,     layer after layer over
``statistics``      a probe pass per batch norm            all rows, in one pass
                                                           (:mod:`.statistics`:
                                                           Conv4)
``tim_gradient``    autograd of the transductive TIM's     the gradient in closed
                    loss (``TIM.reference_gradient``)      form (:mod:`.tim_gradient`:
                                                           TIM, alpha-TIM)
==================  =====================================  ======================

The methods (``skmeta.meta.algorithms``) never import this package: the
functional forward (``skmeta.meta.functional``), the training loop and the
inference code ask :func:`find` for a path and fall back on the reference.
TIM (``skmeta.meta.transductive.tim``) asks for its gradient the same way.

One switch turns every path off: ``SKMETA_ACCEL=0`` in the environment, or
:func:`set_enabled` / :func:`disabled` in code. Separately, the glibc malloc
tuning of :mod:`.malloc` is off unless asked for (it is process-wide).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from contextvars import ContextVar

__all__ = [
    "disabled",
    "enabled",
    "find",
    "reference_only",
    "register",
    "set_enabled",
]

KINDS = (
    "embed_tasks",
    "embed_once",
    "inference",
    "meta_gradient",
    "support_statistics",
    "tim_gradient",
)

_STATE = {"enabled": os.environ.get("SKMETA_ACCEL", "1") != "0", "loaded": False}
# Set in a thread (a context) that must take the references, whatever the
# process-wide switch says: mixed precision, whose autocast is per thread too.
_REFERENCE_ONLY: ContextVar[bool] = ContextVar("skmeta_reference_only", default=False)
_PATHS: dict[str, list[tuple[Callable[[object], bool], Callable]]] = {
    kind: [] for kind in KINDS
}


def enabled() -> bool:
    """Whether speed paths are used (default: yes, unless ``SKMETA_ACCEL=0``)."""
    return _STATE["enabled"]


def set_enabled(flag: bool) -> bool:
    """Turn every speed path on or off, process-wide; returns the previous value.

    Results are the same either way, to float rounding: each path is tested
    equal to its reference.
    """
    previous = _STATE["enabled"]
    _STATE["enabled"] = bool(flag)
    return previous


@contextlib.contextmanager
def disabled():
    """Run the block with the reference computations only.

    Examples
    --------
    >>> from skmeta.meta import accel
    >>> with accel.disabled():
    ...     accel.enabled()
    False
    """
    previous = set_enabled(False)
    try:
        yield
    finally:
        set_enabled(previous)


@contextlib.contextmanager
def reference_only():
    """Run the block with the reference computations, in this thread only.

    Examples
    --------
    >>> from skmeta.meta import accel
    >>> with accel.reference_only():
    ...     accel.find("inference", object()) is None
    True
    """
    token = _REFERENCE_ONLY.set(True)
    try:
        yield
    finally:
        _REFERENCE_ONLY.reset(token)


def register(kind: str, supports: Callable[[object], bool]):
    """Decorator: register a speed path of `kind` for the objects `supports`
    accepts (a network, or a method for ``meta_gradient``)."""
    if kind not in _PATHS:
        raise ValueError(f"kind={kind!r} is unknown; use one of {KINDS}.")

    def decorate(path: Callable) -> Callable:
        _PATHS[kind].append((supports, path))
        return path

    return decorate


def find(kind: str, obj) -> Callable | None:
    """The speed path of `kind` for `obj`, or None (then use the reference).

    None whenever the paths are switched off.
    """
    if not _STATE["enabled"] or _REFERENCE_ONLY.get():
        return None
    if not _STATE["loaded"]:
        # the built-in paths register themselves on import
        from . import (  # noqa: F401
            first_order,
            fusion,
            grouped,
            meta_gradient,
            statistics,
            tim_gradient,
        )

        _STATE["loaded"] = True
    for supports, path in _PATHS[kind]:
        if supports(obj):
            return path
    return None
