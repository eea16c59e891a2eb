"""MetaModels sent to worker processes once, not once per task.

A joblib task that fits an estimator carries the estimator, and with it the
``pretrained`` :class:`~skmeta.meta.model.MetaModel`: pickled whole, once per
task batch. Inside a :class:`Shipment` (opened by
:func:`skmeta.model_selection.ship_once` and by ``episodic_score``), the
models it was given pickle instead as a *handle*, about 150 bytes, and
their weights reach each worker process once, by one of two stores:

- ``"dask"``: a ``distributed.WorkerPlugin`` holding the model's pickle,
  registered on the cluster (every worker now and any that joins later runs
  its ``setup`` once) and unregistered when the shipment closes;
- ``"file"``: the model's pickle written once to a temporary file, read by a
  worker process the first time it meets the handle (loky and
  multiprocessing workers share the machine's file system), removed when the
  shipment closes.

A worker keeps what it received (plugins: by plugin name, until teardown;
files: by content hash, the last :data:`FILE_CACHE_SIZE` models), so every task
after the first gets the same live ``MetaModel``, networks already built. In
the process that opened the shipment, a handle resolves to the original
object. This module imports neither joblib nor dask; the store's client is
given by the caller.

Only pickles this process made are unpickled: the ``"file"`` store's folder
is ``tempfile.mkdtemp``'s, which only its user may open (``0o700``), and a
handle, which names the file, is itself part of a pickle the worker was
sent (joblib's, or Dask's, whose cluster is trusted as the user's own).
Model files (:mod:`.io`) are what to share with others.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import threading
import uuid
from collections import OrderedDict

__all__ = ["FILE_CACHE_SIZE", "Shipment", "handle_of", "resolve"]

FILE_CACHE_SIZE = 4

_lock = threading.Lock()
# Sender side: the open shipments, innermost last.
_open: list[Shipment] = []
# Receiver side: models from plugins (by plugin name), and from files (by
# content hash, least recently used first).
_from_plugins: dict = {}
_from_files: OrderedDict = OrderedDict()


class Shipment:
    """Context manager: `models` pickle as handles while it is open.

    Parameters
    ----------
    models : sequence of MetaModel
        Models to ship once (duplicates are shipped once).
    store : {"dask", "file", None}
        ``"dask"`` with `client`, ``"file"``, or None: nothing changes (models
        pickle whole, as outside a shipment).
    client : distributed.Client, optional
        The cluster's client, for ``store="dask"``.

    Attributes
    ----------
    payload_bytes : dict of str to int
        Size of each shipped model's pickle, by content hash: what each worker
        receives once.
    """

    def __init__(self, models, store, client=None) -> None:
        if store not in ("dask", "file", None):
            raise ValueError(f"store must be 'dask', 'file' or None, got {store!r}.")
        if store == "dask" and client is None:
            raise ValueError("store='dask' needs the distributed client.")
        unique = {id(model): model for model in models}
        self.models = list(unique.values()) if store is not None else []
        self.store = store
        self.client = client
        self.payload_bytes: dict[str, int] = {}
        self._handles: dict[int, tuple] = {}
        self._by_token: dict[str, object] = {}
        self._plugins: list[str] = []
        self._directory: str | None = None

    def __enter__(self) -> Shipment:
        try:
            for model in self.models:
                self._ship(model)
        except BaseException:
            self._close()
            raise
        with _lock:
            _open.append(self)
        return self

    def __exit__(self, *exc_info) -> None:
        with _lock:
            _open.remove(self)
        self._close()

    def _ship(self, model) -> None:
        payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)  # whole
        token = hashlib.sha256(payload).hexdigest()[:32]
        self.payload_bytes[token] = len(payload)
        plugin = path = None
        if self.store == "dask":
            plugin = f"skmeta-model-{token}-{uuid.uuid4().hex[:8]}"
            from ._dask_plugin import ModelPlugin

            self.client.register_plugin(ModelPlugin(plugin, payload), name=plugin)
            self._plugins.append(plugin)
        else:
            if self._directory is None:
                self._directory = tempfile.mkdtemp(prefix="skmeta-models-")
            path = os.path.join(self._directory, f"{token}.pkl")
            with open(path, "wb") as file:
                file.write(payload)
        self._handles[id(model)] = (token, plugin, path)
        self._by_token[token] = model

    def _close(self) -> None:
        for plugin in self._plugins:
            self.client.unregister_worker_plugin(plugin)
        self._plugins.clear()
        if self._directory is not None:
            for name in os.listdir(self._directory):
                os.remove(os.path.join(self._directory, name))
            os.rmdir(self._directory)
            self._directory = None


def receive(name: str, payload: bytes) -> None:
    """Unpickle a shipped model into this process (a plugin's ``setup``)."""
    model = pickle.loads(payload)
    with _lock:
        _from_plugins[name] = model


def release(name: str) -> None:
    """Forget a model :func:`receive` got (a plugin's ``teardown``)."""
    with _lock:
        _from_plugins.pop(name, None)


def handle_of(model) -> tuple | None:
    """The handle `model` pickles as, or None outside a shipment of it."""
    with _lock:
        for shipment in reversed(_open):
            handle = shipment._handles.get(id(model))
            if handle is not None:
                return handle
    return None


def resolve(token: str, plugin: str | None, path: str | None):
    """The model a handle names, in whichever process unpickles it.

    Parameters
    ----------
    token : str
        The model's content hash (the first 32 hex digits of the SHA-256 of
        its whole pickle).
    plugin : str or None
        Name of the Dask worker plugin that put the model into this process.
    path : str or None
        File holding the model's whole pickle (the file store).

    Returns
    -------
    MetaModel
        The sender's own object in the process that opened the shipment, else
        the one this process received (unpickled once, then kept).

    Raises
    ------
    ValueError
        If this process cannot reach the model's weights: the handle was
        unpickled outside the workers of the shipment that made it, or after
        it closed.
    """
    with _lock:
        for shipment in reversed(_open):
            if token in shipment._by_token:
                return shipment._by_token[token]
        if plugin is not None and plugin in _from_plugins:
            return _from_plugins[plugin]
        if token in _from_files:
            _from_files.move_to_end(token)
            return _from_files[token]
    if path is not None and os.path.exists(path):
        with open(path, "rb") as file:
            model = pickle.load(file)
        with _lock:
            _from_files[token] = model
            while len(_from_files) > FILE_CACHE_SIZE:
                _from_files.popitem(last=False)
        return model
    raise ValueError(
        "This MetaModel was pickled as a handle inside "
        "skmeta.model_selection.ship_once(), and its weights are not available "
        "here: such a pickle is only valid on that block's workers while the "
        "block runs. Pickle the model outside the block to keep it."
    )
