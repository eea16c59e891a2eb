"""Data sets for few-shot learning.

- :func:`make_glyphs` -- an Omniglot-like data set rendered from the fonts that ship
  with matplotlib: thousands of classes, generated in seconds, no download.
- :func:`load_omniglot` -- the real Omniglot data (NumPy copy or the official zips).
- :func:`ink_box` -- handwritten characters scaled to a box and centred on their
  ink, as MNIST's digits are.
- :func:`load_image_folder` -- your own images, one subfolder per class (as
  torchvision's ``ImageFolder``), as uint8 or float rows, optionally memory-mapped.
- :func:`make_sinusoid_tasks` -- sine-wave regression tasks (MAML's benchmark).
"""

from ._glyphs import make_glyphs
from ._image_folder import load_image_folder
from ._ink_box import ink_box
from ._omniglot import load_omniglot
from ._sinusoid import make_sinusoid_tasks

__all__ = [
    "ink_box",
    "load_image_folder",
    "load_omniglot",
    "make_glyphs",
    "make_sinusoid_tasks",
]
