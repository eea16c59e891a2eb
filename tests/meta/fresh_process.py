"""Run a snippet in a fresh Python process: for what a test process has already
changed for good (imported modules, started threads)."""

import subprocess
import sys


def python_stdout(code: str) -> str:
    """Standard output of ``python -c code``; raises if it fails."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
