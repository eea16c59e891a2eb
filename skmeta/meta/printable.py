"""Text from a file made safe to print: its control characters escaped.

A model file's strings (versions, class and feature names, a plugin's
distribution) reach the terminal through ``skmeta info``, error messages and
the model card. Written as they are, an escape sequence in one could move the
cursor, recolour or retitle the terminal, or hide or rewrite the lines around
it, and a right-to-left override could reorder what is shown; so they are
shown escaped, as Python writes them (``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 (but the line breaks the text is made of), DEL, C1, and Unicode's
# directional marks, embeddings, overrides and isolates
_CONTROL = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str) -> str:
    """`text` with each control character but ``\\n`` escaped.

    Parameters
    ----------
    text : str

    Returns
    -------
    str

    Examples
    --------
    >>> printable("skmeta \\x1b[2J0.1")
    'skmeta \\\\x1b[2J0.1'
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
