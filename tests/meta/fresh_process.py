"""Run a snippet in a fresh Python process: for what a test process has already
changed for good (imported modules, started threads)."""

import subprocess
import sys


def python_stdout(code: str) -> str:
    """Standard output of ``python -c code``; raises with its stderr if it fails."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise AssertionError(f"python -c failed ({done.returncode}):\n{done.stderr}")
    return done.stdout
