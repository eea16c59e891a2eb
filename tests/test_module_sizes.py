"""The house rule of docs/design.md: small modules, each under 400 lines."""

from pathlib import Path

import skmeta

MAX_LINES = 400


def test_every_module_is_under_400_lines():
    root = Path(skmeta.__file__).parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for path in root.rglob("*.py")
    }
    assert sizes, "no modules found"
    too_long = {name: n for name, n in sizes.items() if n >= MAX_LINES}
    assert not too_long, f"split these modules (lines): {too_long}"
