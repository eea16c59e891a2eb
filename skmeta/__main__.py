"""``python -m skmeta``: the ``skmeta`` command."""

import sys

from .cli import console

sys.exit(console())
