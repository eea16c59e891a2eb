"""Sending the ``pretrained`` models of a parallel search or evaluation to
each worker process once (:func:`ship_once`, public in
:mod:`skmeta.model_selection`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from joblib.parallel import get_active_backend
from sklearn.base import clone

from .meta.model import MetaModel
from .meta.shipping import Shipment

__all__ = ["ship_once"]


@contextmanager
def ship_once(*objects, client=None) -> Iterator[Shipment]:
    """Send the MetaModels in `objects` to each worker process once.

    A parallel ``cross_val_score``, ``GridSearchCV`` or :func:`episodic_score`
    pickles a clone of the estimator, ``pretrained`` model included, into
    every task batch. Inside this block those models pickle as a handle of
    about 150 bytes, and their weights reach each worker process once:
    through a ``distributed.WorkerPlugin`` under Dask's joblib backend, through
    one temporary file under loky or multiprocessing. Workers keep the live
    model, so its networks are built once per process, not once per task.
    Other backends (threading, sequential, Ray) get the models whole, as
    outside the block. :func:`episodic_score` opens this block itself.

    .. versionadded:: 0.1

    Parameters
    ----------
    *objects : MetaModel, estimator, or containers of them
        Where to find the models: estimators are searched through
        ``get_params(deep=True)`` (a ``GridSearchCV``'s ``param_grid``
        included), lists, tuples and dicts item by item.
    client : distributed.Client, optional
        Ship through this Dask client. Default: the client of joblib's active
        Dask backend, if that is the backend.

    Yields
    ------
    Shipment
        Its ``payload_bytes`` maps each model's content hash to the size of
        the pickle each worker receives once.

    Notes
    -----
    A pickle of the block's models made inside the block, by any thread of
    this process, holds only the handle, valid on the block's workers while
    it runs: save models with ``MetaModel.save`` or pickle them outside the
    block. :func:`episodic_score` ships private aliases of the estimator's
    ``pretrained`` models (:meth:`MetaModel.alias`), so its block leaves the
    caller's objects alone (models inside lists or dicts, e.g. a grid's
    candidates, are shipped as they are).

    Examples
    --------
    >>> import joblib
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skmeta import EpisodicSplit, FewShotClassifier
    >>> from skmeta.model_selection import ship_once
    >>> def search(model, X, y):  # doctest: +SKIP
    ...     grid = GridSearchCV(FewShotClassifier(pretrained=model),
    ...                         {"inner_steps": [1, 5]}, cv=EpisodicSplit())
    ...     with joblib.parallel_config(backend="dask"), ship_once(grid):
    ...         return grid.fit(X, y)
    """
    models = _models_in(objects)
    store = None
    if models:
        backend, _ = get_active_backend()
        if client is not None:
            store = "dask"
        elif type(backend).__name__ == "DaskDistributedBackend":
            store, client = "dask", backend.client
        elif _is_local(backend):
            store = "file"
    with Shipment(models, store, client) as shipment:
        yield shipment


def with_private_models(estimator):
    """A clone of `estimator` whose MetaModels are private aliases
    (:meth:`MetaModel.alias`), for a shipment its caller did not open: inside
    it the aliases pickle as handles, while the caller's own model objects,
    which another thread may pickle meanwhile, still pickle whole."""
    estimator = clone(estimator)
    aliases = {}
    private = {
        name: aliases.setdefault(id(value), value.alias())
        for name, value in estimator.get_params(deep=True).items()
        if isinstance(value, MetaModel)
    }
    return estimator.set_params(**private) if private else estimator


def _is_local(backend) -> bool:
    """Whether a joblib backend runs its workers on this machine (loky,
    multiprocessing) rather than in threads or on a cluster."""
    return type(backend).__name__ in ("LokyBackend", "MultiprocessingBackend")


def _models_in(objects, depth: int = 0) -> list:
    """The MetaModels found in `objects` (estimators' deep parameters,
    lists, tuples, dicts), each once."""
    found = {}
    for item in objects:
        if isinstance(item, MetaModel):
            found[id(item)] = item
        elif depth < 8:
            if hasattr(item, "get_params") and not isinstance(item, type):
                inner = list(item.get_params(deep=True).values())
            elif isinstance(item, Mapping):
                inner = list(item.values())
            elif isinstance(item, (list, tuple)):
                inner = list(item)
            else:
                continue
            for model in _models_in(inner, depth + 1):
                found[id(model)] = model
    return list(found.values())
