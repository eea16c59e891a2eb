"""Opt-in: keep glibc from unmapping and re-faulting big buffers in meta-training.

torch's CPU allocator does not cache: every step frees its activations and
allocates them again. glibc serves buffers above its mmap threshold (at most
32 MiB, whatever is asked) with fresh ``mmap`` calls, which the kernel faults
in and zeroes page by page on every step -- for Conv4 on a 200-image episode
that is about 56,000 page faults per step. Serving them from the heap instead
made ProtoNet meta-training up to 1.55x faster in an early measurement, but
0.82x in the current ``benchmarks/results/protonet_speed.md`` (2026-12-06):
measure on your machine before turning it on.

The setting is process-wide, so it is off unless asked for:
``SKMETA_MALLOC=1`` in the environment, or :func:`set_malloc_tuning`. glibc
has no call that reads these settings back, so on exit the values in force
before are taken from where glibc reads them at start-up (``GLIBC_TUNABLES``'
``glibc.malloc.mmap_max`` and ``glibc.malloc.trim_threshold``, then
``MALLOC_MMAP_MAX_`` and ``MALLOC_TRIM_THRESHOLD_``), or glibc's defaults. One
side effect remains: after any ``mallopt`` call glibc stops adapting its mmap
threshold by itself for the rest of the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

__all__ = ["malloc_tuning", "set_malloc_tuning"]

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_GLIBC_DEFAULTS = {_M_MMAP_MAX: 65536, _M_TRIM_THRESHOLD: 128 * 1024}
_STATE = {"on": os.environ.get("SKMETA_MALLOC") == "1"}


def set_malloc_tuning(flag: bool) -> bool:
    """Turn the malloc tuning of meta-training on or off; returns the previous
    value. Off by default (``SKMETA_MALLOC=1`` turns it on)."""
    previous = _STATE["on"]
    _STATE["on"] = bool(flag)
    return previous


def _real_glibc():
    """The C library when it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
        return libc
    except (OSError, AttributeError):
        return None


def _glibc():
    """The C library when it is glibc, else None (a seam for tests)."""
    return _real_glibc()


def _start_up_values(environ=os.environ) -> dict[int, int]:
    """The mmap and trim settings glibc took at start-up."""
    values = dict(_GLIBC_DEFAULTS)
    names = {
        _M_MMAP_MAX: "MALLOC_MMAP_MAX_",
        _M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_",
    }
    for param, name in names.items():
        if environ.get(name, "").isdigit():
            values[param] = int(environ[name])
    tunables = dict(
        item.split("=", 1)
        for item in environ.get("GLIBC_TUNABLES", "").split(":")
        if "=" in item
    )
    for param, name in {
        _M_MMAP_MAX: "glibc.malloc.mmap_max",
        _M_TRIM_THRESHOLD: "glibc.malloc.trim_threshold",
    }.items():
        if tunables.get(name, "").isdigit():
            values[param] = int(tunables[name])
    return values


@contextlib.contextmanager
def malloc_tuning():
    """Serve large buffers from the heap while the block runs, when turned on.

    Does nothing unless :func:`set_malloc_tuning` (or ``SKMETA_MALLOC=1``)
    asked for it, or where the C library is not glibc. On exit the previous
    settings are restored and freed memory returned to the system
    (``malloc_trim``).
    """
    libc = _glibc() if _STATE["on"] else None
    if libc is None:
        yield
        return
    previous = _start_up_values()
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # a C int
    try:
        yield
    finally:
        for param, value in previous.items():
            libc.mallopt(param, value)
        libc.malloc_trim(0)
