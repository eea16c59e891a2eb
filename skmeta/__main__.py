"""``python -m skmeta``: the ``skmeta`` command."""

import sys

from .cli import main

sys.exit(main())
