"""The speed paths' tests share tests/meta's helpers (maml_helpers, fresh_process)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
