"""Lets the tests import torchvision where only a mismatched build installs.

The CI machine has a CPU build of torch, and PyPI's torchvision 0.28 is a CUDA
build: its C extension (``torchvision/_C.so``) needs ``libtorch_cuda.so`` and does
not load, and ``import torchvision`` then fails while registering fake kernels
for ``torchvision::nms`` and ``qnms``. skmeta uses only torchvision's Python
parts (models, transforms v2), so declaring those two operator schemas is enough.
On a machine with a matching build the extension loads and nothing is changed.
This is test set-up for that machine, not library code: skmeta itself raises an
ImportError with install advice (``skmeta._optional``).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys

import torch

_LIBRARY = []


def allow_torchvision_import() -> str:
    """Make ``import torchvision`` work here; returns what was done."""
    if "torchvision" in sys.modules:
        return "already imported"
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.origin:
        return "not installed"
    extensions = glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so"))
    try:
        torch.ops.load_library(extensions[0])
        return "extension loads"
    except (IndexError, OSError, RuntimeError):
        pass
    library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in (
        "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    ):
        library.define(schema)
    _LIBRARY.append(library)  # the schemas live as long as the library object
    return "operator schemas declared (extension does not load)"


def refuse_torchvision(monkeypatch) -> None:
    """Make ``importlib.import_module("torchvision...")`` fail for the test,
    as on a machine without torchvision (skmeta imports it that way)."""
    real = importlib.import_module

    def import_module(name, *args, **kwargs):
        if name.split(".")[0] == "torchvision":
            raise ImportError("No module named 'torchvision'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", import_module)
