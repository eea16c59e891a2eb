"""``skmeta.show_versions()`` and ``skmeta info`` without a model: what skmeta
runs on, for bug reports. Run in a fresh process: it imports torchvision,
whose failed import (a build for another torch) is reported, not raised."""

import subprocess
import sys

import numpy as np
import sklearn
import torch

import skmeta

NAMES = ("skmeta", "python", "torch", "torchvision", "numpy", "scipy")
NAMES += ("scikit-learn", "safetensors", "pandas", "matplotlib")
NAMES += ("threads", "cuda", "mps", "methods", "plugins")


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_show_versions_names_what_skmeta_runs_on():
    out = _python("import skmeta; skmeta.show_versions()")
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert tuple(fields) == NAMES
    assert fields["skmeta"].strip() == skmeta.__version__
    assert fields["torch"].strip() == torch.__version__
    assert fields["numpy"].strip() == np.__version__
    assert fields["scikit-learn"].strip() == sklearn.__version__
    assert fields["threads"].strip().endswith("torch thread(s)")
    assert "protonet" in fields["methods"]
    assert out == _python("from skmeta.cli import main; main(['info'])")


def test_a_library_that_fails_to_import_is_reported():
    code = (
        "import sys; sys.modules['pandas'] = None; sys.modules['scipy'] = None\n"
        "import skmeta._show_versions as v; print(v._version('pandas'));"
        "print(v._version('no_such_module_skmeta'))"
    )
    # None in sys.modules: ImportError, reported as not installed
    assert _python(code).splitlines() == ["not installed", "not installed"]
    broken = (
        "import sys, types\n"
        "class Broken(types.ModuleType):\n"
        "    def __getattr__(self, name): raise RuntimeError('operator missing')\n"
        "sys.modules['fake_lib'] = Broken('fake_lib')\n"
        "import skmeta._show_versions as v; print(v._version('fake_lib'))"
    )
    out = _python(broken).strip()
    assert out == "fails to import (RuntimeError: operator missing)"
