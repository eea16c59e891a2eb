"""Methods from other distributions: the ``skmeta.methods`` entry points.

A distribution adds a method by declaring, in its ``pyproject.toml``::

    [project.entry-points."skmeta.methods"]
    shifted_cosine = "mypackage.methods:ShiftedCosine"

:mod:`skmeta.meta.algorithms` loads these at the end of its import, after the
built-in methods are registered, so every process that uses the registry sees
them: joblib's worker processes, the ``skmeta`` command and ``MetaModel.load``
included. The object must be a subclass of
:class:`~skmeta.meta.algorithms.Algorithm` whose ``name`` is the entry point's
name. An entry point that fails to import, names anything else, or would
replace a method already registered (a built-in one, or another
distribution's) is skipped with one :class:`PluginWarning` that names it, its
distribution and the reason. ``SKMETA_PLUGINS=0`` in the environment loads
none (to debug a broken environment).

A plugin's module imports skmeta itself; when it is the module being imported
first (``import mypackage.methods`` before skmeta), its class does not exist
yet when the registry loads the entry points: it is registered when it is
defined (:func:`class_defined`, called by ``Algorithm.__init_subclass__``).
An entry point whose module finished importing without defining a class of
that name (an alias such as ``Alias = Real``, or a misspelt name) is settled
the next time the registry is read for the methods (:func:`settle_pending`):
registered if the module's attribute is a valid method, skipped with a
:class:`PluginWarning` otherwise.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from ..printable import printable

__all__ = [
    "GROUP",
    "PLUGINS",
    "Plugin",
    "PluginWarning",
    "load_plugins",
    "settle_pending",
]

#: The entry point group of method plugins.
GROUP = "skmeta.methods"
#: The environment variable that turns plugin loading off (``0``).
SWITCH = "SKMETA_PLUGINS"


class PluginWarning(UserWarning):
    """A method plugin was skipped: it failed to import or is not valid."""


@dataclass(frozen=True)
class Plugin:
    """Where a method loaded from an entry point comes from.

    Parameters
    ----------
    method : str
        The method's name (the entry point's).
    target : str
        The entry point's value, ``"module:Class"``.
    distribution : str
        The installed distribution that declares the entry point.
    version : str
        Its version.
    """

    method: str
    target: str
    distribution: str
    version: str

    def record(self) -> dict:
        """The JSON-ready record a model file keeps in its provenance."""
        return {
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": f"{GROUP}: {self.method} = {self.target}",
        }


#: The methods loaded from plugins in this process, by name.
PLUGINS: dict[str, Plugin] = {}
# Entry points whose module was mid-import when the registry loaded them, by
# (module, qualified name), with the registry to add the class to when defined.
_PENDING: dict[tuple[str, str], tuple[Plugin, dict, type]] = {}


def enabled() -> bool:
    """False when ``SKMETA_PLUGINS`` is ``0`` (or ``false``, ``no``, ``off``)."""
    value = os.environ.get(SWITCH, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def load_plugins(registry: dict, base: type) -> None:
    """Add the methods of the ``skmeta.methods`` entry points to `registry`.

    Parameters
    ----------
    registry : dict of str to type
        The methods registered so far (``ALGORITHMS``), by name; changed in
        place.
    base : type
        The class each method must subclass (``Algorithm``).

    Warns
    -----
    PluginWarning
        For each entry point skipped, naming it, its distribution and why.
    """
    if not enabled():
        return
    for point in entry_points(group=GROUP):
        plugin = _plugin(point)
        if point.name in registry:
            _skip(plugin, _taken(point.name, registry))
            continue
        module = sys.modules.get(point.module)
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            # the module importing skmeta now: its class is not defined yet
            _PENDING[(point.module, point.attr)] = (plugin, registry, base)
            continue
        try:
            cls = point.load()
        except Exception as exc:  # anything a third-party import may raise
            _skip(plugin, f"it failed to import: {type(exc).__name__}: {exc}")
            continue
        _register(plugin, cls, registry, base)


def class_defined(cls: type) -> None:
    """Register `cls` if an entry point named it while its module was
    mid-import (see the module's docstring)."""
    key = (cls.__module__, cls.__qualname__)
    if key in _PENDING:
        plugin, registry, base = _PENDING.pop(key)
        if plugin.method in registry:
            _skip(plugin, _taken(plugin.method, registry))
        else:
            _register(plugin, cls, registry, base)


def settle_pending() -> None:
    """Settle the entry points left pending whose module has finished importing.

    :func:`class_defined` registers a pending class as it is defined, under
    the entry point's ``module:Class``. An entry point that names an alias of
    a class (``Alias = Real``: ``Real`` is what is defined) or a name its
    module never defines stays pending; once the module has finished
    importing, its attribute is registered if it is a valid method, and the
    entry point is skipped with a :class:`PluginWarning` otherwise (the
    module failed to import, or defines no such name). Called wherever the
    registry is read for the available methods.

    Warns
    -----
    PluginWarning
        For each entry point skipped, naming it, its distribution and why.
    """
    for key in list(_PENDING):
        module_name, attr = key
        module = sys.modules.get(module_name)
        if getattr(getattr(module, "__spec__", None), "_initializing", False):
            continue  # still importing
        plugin, registry, base = _PENDING.pop(key)
        if module is None:  # its import raised: Python removed it
            _skip(plugin, f"its module {module_name} failed to import")
            continue
        target = module
        for part in attr.split("."):
            target = getattr(target, part, None)
        if target is None:
            _skip(plugin, f"its module {module_name} defines no {attr!r}")
        elif registry.get(plugin.method) is target:
            PLUGINS.setdefault(plugin.method, plugin)
        elif plugin.method in registry:
            _skip(plugin, _taken(plugin.method, registry))
        else:
            _register(plugin, target, registry, base)


def _register(plugin: Plugin, cls, registry: dict, base: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        _skip(plugin, f"{cls!r} is not a subclass of {base.__name__}")
    elif cls.name != plugin.method:
        _skip(
            plugin,
            f"its class's name is {cls.name!r}, not the entry point's name "
            f"{plugin.method!r}",
        )
    else:
        registry[plugin.method] = cls
        PLUGINS[plugin.method] = plugin


def _plugin(point: EntryPoint) -> Plugin:
    dist = getattr(point, "dist", None)
    return Plugin(
        method=point.name,
        target=point.value,
        distribution=str(dist.metadata["Name"]) if dist is not None else "unknown",
        version=str(dist.version) if dist is not None else "unknown",
    )


def _taken(name: str, registry: dict) -> str:
    if name in PLUGINS:
        return (
            f"the method {name!r} is already provided by distribution "
            f"{PLUGINS[name].distribution} {PLUGINS[name].version}"
        )
    module = getattr(registry[name], "__module__", "")
    if module.startswith("skmeta."):
        return f"a plugin may not replace the built-in method {name!r}"
    return f"the method {name!r} is already registered (by {module})"


def _skip(plugin: Plugin, reason: str) -> None:
    warnings.warn(
        f"skmeta skipped the method plugin {plugin.method!r} (entry point "
        f"'{plugin.method} = {plugin.target}' in group {GROUP!r}) of distribution "
        f"{plugin.distribution} {plugin.version}: {reason}. Fix or uninstall it "
        f"(pip uninstall {plugin.distribution}); {SWITCH}=0 loads no plugins.",
        PluginWarning,
        stacklevel=1,
    )


def missing_method(method: str, made: dict | None) -> str:
    """Why a model file's `method` is not registered here, and what to do.

    Parameters
    ----------
    method : str
        The model's method.
    made : dict or None
        The model's provenance record (``config["provenance"]``); its
        ``method_plugin`` names the distribution that provided the method at
        meta-training.

    Returns
    -------
    str
    """
    text = (
        f"it needs the method {method!r}, which is neither built into skmeta nor "
        f"provided by an installed plugin (entry point group {GROUP!r})"
    )
    record = (made or {}).get("method_plugin") if isinstance(made, dict) else None
    if isinstance(record, dict):
        text += (
            f". It was meta-trained with the method of distribution "
            f"{record.get('distribution')} {record.get('version')} "
            f"({record.get('entry_point')}), the file says: install that "
            "distribution if you trust its source (installing runs its code)"
        )
    else:
        text += (
            "; it may come from a plugin distribution that is not installed "
            "here: install the one that provides it"
        )
    if not enabled():
        text += f" ({SWITCH}=0 in the environment: no plugins were loaded)"
    return printable(text + ".")  # the file's names, escaped
