"""Seeded meta-training runs in threads repeat, and leave torch's generator as found."""

import threading

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from skmeta import FewShotClassifier
from skmeta.meta.seeding import seeded_default_generator

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, y = make_blobs(300, n_features=8, centers=15, random_state=0)


def _fit_proba(seed):
    clf = FewShotClassifier(max_iter=15, random_state=seed, verbose=0)
    return clf.fit(X, y).predict_proba(X[:20])


def test_threaded_fits_equal_sequential_ones_and_restore_the_generator():
    expected = {seed: _fit_proba(seed) for seed in (0, 1)}
    for _ in range(3):
        torch.manual_seed(123)
        state = torch.random.get_rng_state()
        start, results = threading.Barrier(4), {}

        def fit(i, start=start, results=results):
            start.wait()
            results[i] = _fit_proba(i % 2)

        threads = [threading.Thread(target=fit, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i, proba in results.items():
            np.testing.assert_array_equal(proba, expected[i % 2])
        assert torch.equal(torch.random.get_rng_state(), state)


def test_a_seeded_block_repeats_and_may_nest():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    with seeded_default_generator(7):
        a = torch.rand(3)
        with seeded_default_generator(8):  # the same thread: no deadlock
            inner = torch.rand(3)
    with seeded_default_generator(7):
        b = torch.rand(3)
    assert torch.equal(a, b) and not torch.equal(a, inner)
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_gets_a_turn_of_its_own():
    """A child forked while a thread held the turn would wait for ever."""
    import os

    from skmeta.meta import seeding

    held, release = threading.Event(), threading.Event()

    def hold():
        with seeded_default_generator(0):
            held.set()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    try:
        pid = os.fork()
        if pid == 0:  # the child: its lock is free
            os._exit(0 if seeding._DEFAULT_GENERATOR_TURN.acquire(timeout=5) else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        thread.join()
    assert os.waitstatus_to_exitcode(status) == 0


def test_loading_or_unpickling_a_model_leaves_torch_generator_as_found(tmp_path):
    """Building the network of a loaded model initialises weights it then
    replaces: those draws used to move the caller's torch.manual_seed stream."""
    import pickle

    from skmeta.meta.model import MetaModel

    fitted = FewShotClassifier(max_iter=2, random_state=0).fit(X, y)
    path = tmp_path / "m.safetensors"
    fitted.meta_model_.save(path)
    blob = pickle.dumps(fitted)
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    loaded = MetaModel.load(path)
    unpickled = pickle.loads(blob)
    loaded.network("cpu"), unpickled.meta_model_.network("cpu")
    np.testing.assert_array_equal(unpickled.predict(X[:5]), fitted.predict(X[:5]))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_seeded_fits_repeat_beside_a_thread_that_loads_models():
    """A network built for a loaded model took draws from a seeded run in
    another thread (1 of 3 fits differed before network_of took the turn)."""
    import pickle

    blob = pickle.dumps(FewShotClassifier(max_iter=2, random_state=1).fit(X, y))
    expected, stop = _fit_proba(0), threading.Event()

    def load():
        while not stop.is_set():
            pickle.loads(blob).meta_model_.network("cpu")

    loader = threading.Thread(target=load)
    loader.start()
    try:
        for _ in range(3):
            np.testing.assert_array_equal(_fit_proba(0), expected)
    finally:
        stop.set()
        loader.join()


@pytest.mark.parametrize("backbone", ["mlp", "conv4"])
def test_a_loaded_model_serves_while_a_seeded_run_holds_the_turn(backbone):
    """Building a loaded model's network draws nothing (its backbone is made
    on the meta device, then given the weights): its first predict does not
    wait for a seeded fit in another thread (it waited 0.8 s behind 1.3 s)."""
    import pickle

    from skmeta.meta import seeding

    rows = X if backbone == "mlp" else np.resize(X, (len(X), 256))
    shape = None if backbone == "mlp" else (1, 16, 16)
    fitted = FewShotClassifier(
        max_iter=2, random_state=1, backbone=backbone, input_shape=shape
    ).fit(rows, y)
    blob, expected = pickle.dumps(fitted), fitted.predict_proba(rows[:5])
    held, release, served = threading.Event(), threading.Event(), []

    def seeded_run():  # holds the turn as a seeded meta-training run does
        with seeding.seeded_default_generator(0):
            held.set()
            release.wait(60)

    def serve():
        served.append(pickle.loads(blob).predict_proba(rows[:5]))

    runner = threading.Thread(target=seeded_run)
    runner.start()
    held.wait(10)
    try:
        server = threading.Thread(target=serve)
        server.start()
        server.join(30)
        assert not server.is_alive(), "the first predict waited for the seeded run"
    finally:
        release.set()
        runner.join()
    np.testing.assert_array_equal(served[0], expected)


class _ListTensorBackbone(torch.nn.Module):
    """A user's module keeping a tensor in a list, where no check of a
    network built on the meta device finds it."""

    def __init__(self, input_shape=(8,), width=6):
        super().__init__()
        self.linear = torch.nn.Linear(input_shape[0], width)
        self.scales = [torch.full((width,), 2.0)]

    def forward(self, x):
        return self.linear(x) * self.scales[0]


def test_a_users_module_is_built_as_written():
    """Built on the meta device, the list's tensor stayed there: fit failed
    with "Tensor on device meta is not on the expected device cpu"."""
    import pickle

    clf = FewShotClassifier(backbone=_ListTensorBackbone, max_iter=3, random_state=0)
    proba = clf.fit(X, y).predict_proba(X[:5])
    again = pickle.loads(pickle.dumps(clf)).predict_proba(X[:5])
    np.testing.assert_array_equal(again, proba)
