"""Data sets for few-shot learning.

- :func:`make_glyphs` -- an Omniglot-like data set rendered from the fonts that ship
  with matplotlib: thousands of classes, generated in seconds, no download.
- :func:`load_omniglot` -- the real Omniglot data (NumPy copy or the official zips).
- :func:`make_sinusoid_tasks` -- sine-wave regression tasks (MAML's benchmark).
"""

from ._glyphs import make_glyphs
from ._omniglot import load_omniglot
from ._sinusoid import make_sinusoid_tasks

__all__ = ["load_omniglot", "make_glyphs", "make_sinusoid_tasks"]
