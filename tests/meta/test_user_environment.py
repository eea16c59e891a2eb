"""What the user's environment may hold: torch's default dtype set to float64
(skmeta computes in float32 all the same) and paths with ``~``."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from skmeta import FewShotClassifier, MetaFeatureExtractor, MetaModel

GOLDEN = Path(__file__).parents[1] / "data" / "golden_model_v1.safetensors"


@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _rows():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 6)
    X = rng.normal(size=(8, 256))[y] + 0.5 * rng.normal(size=(y.size, 256))
    return X.astype(np.float32), y


def _fit_and_predict(method):
    X, y = _rows()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MetaFeatureExtractor(
            method=method, input_shape=(1, 16, 16), n_way=4, max_iter=3, random_state=0
        ).fit(X, y)
    clf = FewShotClassifier(pretrained=model.meta_model_).fit(X, y)
    return model.transform(X), clf.predict_proba(X)


@pytest.mark.parametrize("method", ["protonet", "maml"])
def test_meta_training_and_prediction_are_those_of_float32(method, float64_default):
    embedded, proba = _fit_and_predict(method)
    assert torch.get_default_dtype() == torch.float64  # the user's, restored
    torch.set_default_dtype(torch.float32)
    expected_embedded, expected_proba = _fit_and_predict(method)
    np.testing.assert_array_equal(embedded, expected_embedded)
    np.testing.assert_allclose(proba, expected_proba, rtol=1e-6, atol=1e-7)


def test_a_model_file_loads(float64_default):
    model = MetaModel.load(GOLDEN)
    assert model.transform(np.zeros((2, model.n_features), np.float32)).shape[0] == 2


def test_model_paths_with_a_tilde_are_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    model = MetaModel.load(GOLDEN)
    model.save("~/model.safetensors", card=True)
    assert (tmp_path / "model.safetensors").exists()
    assert (tmp_path / "model.md").exists()
    assert MetaModel.load("~/model.safetensors").config == model.config
    X, y = _rows()
    clf = FewShotClassifier(pretrained="~/model.safetensors")
    assert clf.fit(X[:, : model.n_features], y).predict(
        X[:2, : model.n_features]
    ).shape == (2,)


def test_a_module_wraps_under_a_float64_default(float64_default):
    body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(20, 8))
    model = MetaModel.from_module(body, input_shape=(20,))
    X = np.random.default_rng(0).normal(size=(6, 20)).astype(np.float32)
    assert model.transform(X).dtype == np.float32
    assert torch.get_default_dtype() == torch.float64


def test_blocks_of_several_threads_restore_the_users_default_last(float64_default):
    import threading

    from skmeta.meta.net import float32_default

    inside, leave, seen = threading.Event(), threading.Event(), []

    def other():
        with float32_default():
            inside.set()
            leave.wait(5)  # the first block has closed meanwhile
            seen.append(torch.get_default_dtype())

    thread = threading.Thread(target=other)
    with float32_default():  # opened first, closed first
        thread.start()
        inside.wait(5)
    leave.set()
    thread.join(5)
    assert seen == [torch.float32]
    assert torch.get_default_dtype() == torch.float64
