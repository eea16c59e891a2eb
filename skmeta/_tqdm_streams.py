"""Progress bars that suit where they are written: tqdm's carriage-return
updates on a terminal or in a notebook, few lines in a log file (a batch
job's stderr), where every update is kept and one bar grows by about a
kilobyte a second. Torch-free: the datasets' image decoding uses it too."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["LOG_INTERVAL", "interactive", "tqdm_options"]

#: Seconds between two updates of a bar written to a log file.
LOG_INTERVAL = 60.0


def interactive(stream) -> bool:
    """Whether `stream` shows a bar: a terminal, or tqdm's notebook widget.

    Parameters
    ----------
    stream : file-like or None

    Returns
    -------
    bool
        True for a terminal and a Jupyter kernel's output (with or without
        ipywidgets); False for a file, a pipe, a closed stream or None.
    """
    if any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__):
        return True
    if type(stream).__module__.startswith("ipykernel"):  # a notebook's
        return True  # output without ipywidgets (or qtconsole): isatty() False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # none, or closed
        return False


def tqdm_options() -> dict:
    """Keywords for a ``tqdm`` bar on ``sys.stderr``: none on a terminal or
    in a notebook; elsewhere an update at most every `LOG_INTERVAL` seconds.

    Returns
    -------
    dict
        ``{}`` or ``{"mininterval": LOG_INTERVAL}``.
    """
    return {} if interactive(sys.stderr) else {"mininterval": LOG_INTERVAL}
