"""What skmeta runs on, for bug reports: :func:`show_versions` (as
scikit-learn's ``sklearn.show_versions()``) and ``skmeta info`` without a
model print :func:`environment`."""

from __future__ import annotations

import importlib
import platform

__all__ = ["environment", "show_versions"]

#: The libraries whose versions are shown beside skmeta's, in this order.
_LIBRARIES = (
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("scikit-learn", "sklearn"),
    ("safetensors", "safetensors"),
    ("pandas", "pandas"),
    ("matplotlib", "matplotlib"),
)


def _version(module: str) -> str:
    """The module's ``__version__``, or why there is none."""
    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:
        return "not installed"
    except Exception as exc:  # a broken build (torchvision for another torch)
        return f"fails to import ({type(exc).__name__}: {exc})"


def _devices() -> list[str]:
    """The torch threads and accelerators: CUDA (its devices) and MPS."""
    import torch

    cuda = "no"
    if torch.cuda.is_available():
        names = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
        cuda = f"{torch.version.cuda}: {', '.join(names)}"
    elif torch.version.cuda:
        cuda = f"built for {torch.version.cuda}, no device found"
    mps = getattr(torch.backends, "mps", None)
    return [
        f"threads:      {torch.get_num_threads()} torch thread(s)",
        f"cuda:         {cuda}",
        f"mps:          {'yes' if mps is not None and mps.is_available() else 'no'}",
    ]


def environment() -> str:
    """The versions of skmeta and what it runs on, one ``name: value`` line
    each: Python and the platform, torch and the other libraries it uses
    (``not installed``, or why one fails to import), torch's threads and
    accelerators, the methods registered, and those loaded from plugins (the
    ``skmeta.methods`` entry points) with their distributions.

    Returns
    -------
    str
    """
    from ._version import __version__
    from .meta.algorithms import ALGORITHMS
    from .meta.algorithms.plugins import GROUP, PLUGINS, SWITCH, enabled

    lines = [
        f"skmeta:       {__version__}",
        f"python:       {platform.python_version()} ({platform.platform()})",
        *(f"{(name + ':'):<14}{_version(module)}" for name, module in _LIBRARIES),
        *_devices(),
        f"methods:      {', '.join(ALGORITHMS)}",
    ]
    if not enabled():
        lines.append(f"plugins:      not loaded ({SWITCH}=0)")
    elif not PLUGINS:
        lines.append(f"plugins:      none (entry point group {GROUP!r})")
    for name, plugin in PLUGINS.items():
        lines.append(
            f"plugin:       {name} from {plugin.distribution} {plugin.version} "
            f"({plugin.target})"
        )
    return "\n".join(lines)


def show_versions() -> None:
    """Print the versions of skmeta and what it runs on, for bug reports.

    The same text as ``skmeta info`` without a model: Python and the
    platform, torch, torchvision, NumPy, SciPy, scikit-learn, safetensors,
    pandas and matplotlib (or why one is missing), torch's threads, CUDA and
    MPS, the methods registered and the plugins loaded.

    Examples
    --------
    >>> import skmeta
    >>> skmeta.show_versions()  # doctest: +ELLIPSIS
    skmeta: ...
    """
    print(environment())
