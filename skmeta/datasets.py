"""Data sets for few-shot learning.

- :func:`make_glyphs` -- an Omniglot-like data set rendered from the fonts that ship
  with matplotlib: thousands of classes, generated in seconds, no download.
- :func:`load_omniglot` -- the real Omniglot data (NumPy copy or the official zips).
"""

from ._glyphs import make_glyphs
from ._omniglot import load_omniglot

__all__ = ["make_glyphs", "load_omniglot"]
