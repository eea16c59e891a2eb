"""MetaModels pickled as handles inside a shipment, resolved by the stores."""

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

from skmeta.meta import shipping


@pytest.fixture
def empty_caches(monkeypatch):
    """This process's received models, emptied for the test."""
    monkeypatch.setattr(shipping, "_from_files", OrderedDict())
    monkeypatch.setattr(shipping, "_from_plugins", {})


def _rows():
    return np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)


def test_inside_a_shipment_a_model_pickles_as_a_small_handle(blob_model):
    whole = pickle.dumps(blob_model)
    with shipping.Shipment([blob_model, blob_model], "file") as shipment:
        handle = pickle.dumps(blob_model)
        assert pickle.loads(handle) is blob_model  # the sender's own object
        directory = shipment._directory
        assert len(os.listdir(directory)) == 1  # duplicates shipped once
    assert len(handle) < 300 < len(whole)
    assert list(shipment.payload_bytes.values()) == [len(whole)]
    assert not os.path.exists(directory)
    assert len(pickle.dumps(blob_model)) == len(whole)  # whole again


def test_a_handle_outside_its_shipment_raises(blob_model, empty_caches):
    with shipping.Shipment([blob_model], "file"):
        handle = pickle.dumps(blob_model)
    with pytest.raises(ValueError, match="ship_once"):
        pickle.loads(handle)


def test_a_worker_reads_the_file_once_and_keeps_the_model(blob_model, empty_caches):
    with shipping.Shipment([blob_model], "file"):
        token, plugin, path = shipping.handle_of(blob_model)
        # As in a worker process: the token is not one of its own shipments.
        first = shipping.resolve("elsewhere" + token, plugin, path)
        assert shipping.resolve("elsewhere" + token, plugin, path) is first
    assert first is not blob_model
    np.testing.assert_array_equal(
        first.transform(_rows()), blob_model.transform(_rows())
    )
    assert shipping.resolve("elsewhere" + token, None, None) is first  # cached


def test_the_file_cache_keeps_the_last_few_models(blob_model, empty_caches):
    with shipping.Shipment([blob_model], "file"):
        token, _, path = shipping.handle_of(blob_model)
        for n in range(shipping.FILE_CACHE_SIZE + 1):
            shipping.resolve(f"{n}-{token}", None, path)
    assert list(shipping._from_files) == [
        f"{n}-{token}" for n in range(1, shipping.FILE_CACHE_SIZE + 1)
    ]


def test_a_plugin_puts_the_model_into_its_process_until_teardown(
    blob_model, empty_caches
):
    shipping.receive("plugin-1", pickle.dumps(blob_model))
    received = shipping.resolve("token", "plugin-1", None)
    np.testing.assert_array_equal(
        received.transform(_rows()), blob_model.transform(_rows())
    )
    shipping.release("plugin-1")
    with pytest.raises(ValueError, match="not available here"):
        shipping.resolve("token", "plugin-1", None)


def test_no_store_changes_nothing_and_bad_stores_raise(blob_model):
    with shipping.Shipment([blob_model], None) as shipment:
        assert shipping.handle_of(blob_model) is None
    assert shipment.payload_bytes == {}
    with pytest.raises(ValueError, match="store must be"):
        shipping.Shipment([blob_model], "s3")
    with pytest.raises(ValueError, match="needs the distributed client"):
        shipping.Shipment([blob_model], "dask")
