"""Imports of optional dependencies, with errors that say what to install."""

from __future__ import annotations

import importlib
import re

__all__ = [
    "import_skimage_skeletonize",
    "import_torchvision",
    "torchvision_command",
]

TORCH_INSTALL = "https://pytorch.org/get-started/locally/"


def torchvision_command(torch_version: str) -> str:
    """The pip command that installs the torchvision release made for
    `torch_version`, from the index of its build (``+cpu``, ``+cu128``, ...)
    where the version names one: an unpinned ``pip install torchvision`` (or
    ``skmeta[vision]``) installs the newest, which replaces torch with its
    own release and, from PyPI on Linux, a CUDA build of several GB.

    Parameters
    ----------
    torch_version : str
        ``torch.__version__``, e.g. ``"2.13.0+cpu"``.

    Returns
    -------
    str
        E.g. ``"pip install 'torchvision==0.28.*' --index-url
        https://download.pytorch.org/whl/cpu"``; without the pin for a torch
        whose torchvision release cannot be told (torch 2.x pairs with
        torchvision 0.(x + 15)).

    Examples
    --------
    >>> torchvision_command("2.13.0+cpu")
    "pip install 'torchvision==0.28.*' --index-url https://download.pytorch.org/whl/cpu"
    >>> torchvision_command("2.5.1")
    "pip install 'torchvision==0.20.*'"
    """
    release, _, build = torch_version.partition("+")
    match = re.match(r"2\.(\d+)\.", release)
    pin = f"'torchvision==0.{int(match.group(1)) + 15}.*'" if match else "torchvision"
    command = f"pip install {pin}"
    if re.fullmatch(r"cpu|cu\d+|rocm[\d.]+|xpu", build):
        command += f" --index-url https://download.pytorch.org/whl/{build}"
    return command


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
        f"Install the torchvision build that matches torch {torch.__version__}: "
        f"{torchvision_command(torch.__version__)} (or the command for your "
        f"machine at {TORCH_INSTALL})."
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
            "torchvision) and install the build made for this torch: "
            f"{torchvision_command(torch.__version__)} (or the command for your "
            f"machine at {TORCH_INSTALL})."
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
