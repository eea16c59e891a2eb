"""Episodic evaluation and search under Dask's (and Ray's) joblib backend.

A ``distributed.LocalCluster`` of two workers (threads of this process; two
worker processes in the slow test): every result equals ``n_jobs=1``, and the
``pretrained`` models reach each worker once while each task batch carries
handles of a few hundred bytes.
"""

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from skmeta import EpisodicSplit, FewShotClassifier, MetaModel, episodic_score
from skmeta.model_selection import ship_once

distributed = pytest.importorskip("distributed")


def _local_cluster(processes):
    quiet = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=":0",
        **({"env": quiet} if processes else {}),
    )


@pytest.fixture(scope="module")
def client():
    with _local_cluster(False) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture
def novel(blobs):
    X, y = blobs
    return X[y >= 16], y[y >= 16]


def _cv():
    return EpisodicSplit(n_way=5, k_shot=1, n_query=5, n_episodes=12, random_state=0)


def _models_on_workers(client):
    def count():
        from skmeta.meta import shipping

        return len(shipping._from_plugins)

    return sorted(client.run(count).values())


def test_episodic_score_on_dask_equals_one_job(client, blob_model, novel):
    estimator = FewShotClassifier(pretrained=blob_model)
    expected = episodic_score(estimator, *novel, cv=_cv(), n_jobs=1)
    with joblib.parallel_config(backend="dask"):
        result = episodic_score(estimator, *novel, cv=_cv())
    np.testing.assert_array_equal(result.scores, expected.scores)
    assert result.mean == expected.mean
    assert _models_on_workers(client) == [0, 0]  # released after the call


def test_tasks_carry_a_handle_and_each_worker_gets_the_model_once(
    client, blob_model, novel, monkeypatch
):
    """What joblib submits per batch, with and without ship_once."""
    sent, on_workers = [], []
    submit = client.submit

    def recording_submit(batch, *args, **kwargs):
        sent.append(len(pickle.dumps((batch, kwargs["tasks"]))))
        return submit(batch, *args, **kwargs)

    monkeypatch.setattr(client, "submit", recording_submit)
    estimator = FewShotClassifier(pretrained=blob_model)
    model_bytes = len(pickle.dumps(blob_model))
    with joblib.parallel_config(backend="dask"):
        naive = cross_val_score(estimator, *novel, cv=_cv())
        assert min(sent) > model_bytes  # every batch holds the whole model
        sent.clear()
        with ship_once(estimator) as shipment:
            on_workers = _models_on_workers(client)
            shipped = cross_val_score(estimator, *novel, cv=_cv())
    np.testing.assert_array_equal(shipped, naive)
    assert list(shipment.payload_bytes.values()) == [model_bytes]
    assert on_workers == [1, 1]
    assert max(sent) < model_bytes / 20
    assert _models_on_workers(client) == [0, 0]


def _grid_search(blob_model):
    """A search over two pretrained models: the meta-trained one and a random
    linear map wrapped by ``MetaModel.from_module`` (a custom backbone)."""
    torch.manual_seed(0)
    wrapped = MetaModel.from_module(torch.nn.Linear(10, 8), (10,))
    grid = {"pretrained": [blob_model, wrapped]}
    return GridSearchCV(FewShotClassifier(), grid, cv=_cv(), error_score="raise")


def _assert_same_search(found, expected):
    for key in ("split0_test_score", "split11_test_score", "mean_test_score"):
        np.testing.assert_array_equal(found.cv_results_[key], expected.cv_results_[key])
    assert found.best_index_ == expected.best_index_


def test_grid_search_over_episodes_on_dask_equals_one_job(client, blob_model, novel):
    search = _grid_search(blob_model)
    expected = clone(search).set_params(n_jobs=1).fit(*novel)
    with joblib.parallel_config(backend="dask"), ship_once(search) as shipment:
        found = search.fit(*novel)
    assert len(shipment.payload_bytes) == 2
    _assert_same_search(found, expected)


@pytest.mark.slow
def test_worker_processes_receive_each_model_once(blob_model, novel):
    """Two worker processes: results equal one job's, and each process holds
    each shipped model once while the block runs."""
    search = _grid_search(blob_model)
    expected = clone(search).set_params(n_jobs=1).fit(*novel)
    with _local_cluster(True) as cluster, distributed.Client(cluster) as client:
        with joblib.parallel_config(backend="dask"), ship_once(search):
            on_workers = _models_on_workers(client)
            found = search.fit(*novel)
        assert _models_on_workers(client) == [0, 0]
    assert on_workers == [2, 2]
    _assert_same_search(found, expected)


@pytest.mark.slow
def test_ray_backend_equals_one_job(blob_model, novel):
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    register_ray()
    estimator = FewShotClassifier(pretrained=blob_model)
    expected = episodic_score(estimator, *novel, cv=_cv(), n_jobs=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with joblib.parallel_config(backend="ray", n_jobs=2):
            result = episodic_score(estimator, *novel, cv=_cv())
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(result.scores, expected.scores)
