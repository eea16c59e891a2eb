"""Names in the annotations of the public signatures.

The modules that use them have ``from __future__ import annotations``, so
annotations are never evaluated at run time: ``Self`` needs no
typing_extensions on Python 3.10, only type checkers read it (their own copy).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from numpy.typing import ArrayLike

if sys.version_info >= (3, 11):
    from typing import Self
elif TYPE_CHECKING:
    from typing_extensions import Self
else:  # Python 3.10 at run time: a name for the unevaluated annotations
    Self = object

__all__ = ["ArrayLike", "Self"]
