"""Modules that draw random numbers in training mode, which worker threads
must not run.

Dropout and its kin draw from torch's default generator, of which a process
has one for all its threads. Tasks run in worker threads (:mod:`.threads`)
would draw from it in the order the threads happen to run, so a network with
such a module would not train to the same weights twice; its tasks run in the
calling thread instead, one after the other, in a fixed order.

The rule: a module in training mode draws random numbers when it is

- a dropout of torch (``torch.nn.modules.dropout._DropoutNd``: ``Dropout``,
  ``Dropout1d`` to ``Dropout3d``, ``AlphaDropout``, ``FeatureAlphaDropout``)
  with ``p > 0``;
- a ``torch.nn.RReLU`` (its slopes are drawn);
- of a class named (or derived from one named) ``StochasticDepth``
  (torchvision), ``DropPath`` or ``DropBlock2d`` (timm), with a drop
  probability (``p``, ``drop_prob`` or ``drop_rate``) above 0, or none found.

Anything else is taken to be deterministic. Random numbers a custom module
draws in its own ``forward`` (``F.dropout``, ``torch.rand``) cannot be seen
from the module tree: give such a network ``n_jobs=1``.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.dropout import _DropoutNd

__all__ = ["random_module"]

#: Classes known by name only (their packages are not imported here).
_BY_NAME = frozenset({"StochasticDepth", "DropPath", "DropBlock2d"})
_PROBABILITIES = ("p", "drop_prob", "drop_rate")


def _draws(module: nn.Module) -> bool:
    """Whether `module` draws random numbers in training mode (the rule above)."""
    if isinstance(module, _DropoutNd):
        return module.p > 0
    if isinstance(module, nn.RReLU):
        return True
    if any(cls.__name__ in _BY_NAME for cls in type(module).__mro__):
        for name in _PROBABILITIES:
            p = getattr(module, name, None)
            if isinstance(p, int | float):
                return p > 0
        return True
    return False


def random_module(net: nn.Module) -> str | None:
    """The class name of the first module of `net` that draws random numbers
    as it is now (in training mode), or None.

    Parameters
    ----------
    net : torch.nn.Module

    Returns
    -------
    str or None
        e.g. ``"Dropout"``; None when no module draws (modules in eval mode
        never do).
    """
    for module in net.modules():
        if module.training and _draws(module):
            return type(module).__name__
    return None
