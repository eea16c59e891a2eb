"""Warnings that point at the user's line, however deep in skmeta they start."""

from __future__ import annotations

import os
import sys

__all__ = ["user_stacklevel"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning, raised by the function that
    calls this, point at the first caller outside the skmeta package: the
    user's call to ``fit`` (or the line of the library, e.g. scikit-learn's,
    that called skmeta); the outermost frame if all are skmeta's.

    Returns
    -------
    int
    """
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and os.path.abspath(
        frame.f_code.co_filename
    ).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
