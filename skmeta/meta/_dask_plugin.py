"""The worker plugin of :mod:`.shipping`'s ``"dask"`` store (imports
distributed, so :mod:`.shipping` imports it only when that store is used)."""

from __future__ import annotations

from . import shipping

try:
    from distributed import WorkerPlugin
except ImportError:  # only `--doctest-modules` imports this module without dask:
    WorkerPlugin = object  # the dask store needs a distributed client to start


class ModelPlugin(WorkerPlugin):
    """Puts one pickled model into each worker process, once.

    Parameters
    ----------
    name : str
        The plugin's name, unique per shipment and model.
    payload : bytes
        The model's whole pickle.
    """

    def __init__(self, name: str, payload: bytes) -> None:
        self.name = name
        self.payload = payload

    def setup(self, worker) -> None:
        shipping.receive(self.name, self.payload)

    def teardown(self, worker) -> None:
        shipping.release(self.name)
