"""Imports of optional dependencies, with errors that say what to install."""

from __future__ import annotations

import importlib

__all__ = ["import_skimage_skeletonize", "import_torchvision"]

TORCH_INSTALL = "https://pytorch.org/get-started/locally/"


def import_torchvision(feature: str):
    """Import torchvision for `feature`, or raise an ImportError that says how to
    get a build matching the installed torch.

    Parameters
    ----------
    feature : str
        What needs it, for the message (e.g. ``"backbone='torchvision:resnet18'"``).

    Returns
    -------
    module
        The ``torchvision`` package.
    """
    import torch

    advice = (
        f"Install the torchvision build that matches torch {torch.__version__} "
        f"(pip install 'skmeta[vision]', or the command for your machine at "
        f"{TORCH_INSTALL})."
    )
    try:
        return importlib.import_module("torchvision")
    except ImportError as exc:
        raise ImportError(f"{feature} needs torchvision. {advice}") from exc
    except RuntimeError as exc:  # e.g. a CUDA build next to a CPU torch
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = f"torchvision {version('torchvision')}"
        except PackageNotFoundError:
            installed = "torchvision"
        raise ImportError(
            f"{feature} needs torchvision; {installed} is installed but does "
            f"not load with torch {torch.__version__} "
            f"({str(exc).splitlines()[0]}): their builds differ (CPU against "
            "CUDA, or another release). Uninstall it (pip uninstall "
            "torchvision) and install the build made for this torch, with the "
            f"command for your machine at {TORCH_INSTALL} (for a CPU torch: pip "
            "install torchvision --index-url "
            "https://download.pytorch.org/whl/cpu)."
        ) from exc


def import_skimage_skeletonize(feature: str):
    """scikit-image's ``skeletonize`` for `feature`, or an ImportError that
    says how to install it.

    Parameters
    ----------
    feature : str
        What needs it, for the message (e.g. ``"ink_box(stroke_width=...)"``).

    Returns
    -------
    callable
        ``skimage.morphology.skeletonize``.
    """
    try:
        return importlib.import_module("skimage.morphology").skeletonize
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs scikit-image: pip install 'skmeta[strokes]' "
            "(or pip install scikit-image)."
        ) from exc
