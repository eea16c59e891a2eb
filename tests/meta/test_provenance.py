"""Model files say where they came from, and old files keep loading."""

import stat
from pathlib import Path

import numpy as np
import pandas as pd

from skmeta import FewShotClassifier, MetaFeatureExtractor, MetaModel

DATA = Path(__file__).resolve().parents[1] / "data"


def test_the_golden_model_file_loads_and_computes_as_it_did():
    """Written by tests/data/make_golden.py at format version 1: every later
    version must load it and embed as it did."""
    model = MetaModel.load(DATA / "golden_model_v1.safetensors")
    expected = np.load(DATA / "golden_model_v1_expected.npz")
    np.testing.assert_allclose(
        model.transform(expected["X"]), expected["embeddings"], rtol=1e-5, atol=1e-6
    )
    assert model.method == "protonet" and model.input_shape == (6,)
    assert list(model.config["provenance"]["class_names"]) == [str(c) for c in range(8)]
    clf = FewShotClassifier(pretrained=model).fit(expected["X"], np.arange(10) % 2)
    assert clf.predict(expected["X"]).shape == (10,)


def test_meta_training_records_versions_data_classes_and_features(blobs, tmp_path):
    import torch

    import skmeta

    X, y = blobs
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    labels = np.array(["cat", "dog", "owl"])[y % 3]
    extractor = MetaFeatureExtractor(max_iter=3, n_way=3, random_state=0)
    model = extractor.fit(frame, labels).meta_model_
    made = model.config["provenance"]
    assert made["skmeta"] == skmeta.__version__ and made["torch"] == torch.__version__
    assert made["data"] == {
        "n_samples": 360,
        "n_features": 10,
        "dtype": "float32",
        "pixel_range": 255.0,  # values above 1.5 (what image rows of 0-255 hold)
    }
    assert list(made["class_names"]) == ["cat", "dog", "owl"]
    assert list(made["feature_names"]) == list(frame.columns)
    assert made["created"].endswith("+00:00")
    text = model.summary()
    assert "3 (cat, dog, owl)" in text and "skmeta " + skmeta.__version__ in text
    path = tmp_path / "m.safetensors"
    model.save(path)
    assert MetaModel.load(path).config["provenance"] == made
    # a saved model is readable as any new file is (safetensors' writer alone
    # makes it owner-only)
    assert path.stat().st_mode & stat.S_IRGRP
    assert not list(tmp_path.glob("*.tmp"))


def test_summary_of_a_model_without_provenance(blob_model):
    assert "protonet" in blob_model.summary()


def test_summary_of_a_wrapped_module_says_it_was_not_meta_trained():
    import torch

    text = MetaModel.from_module(torch.nn.Linear(4, 3), input_shape=(4,)).summary()
    assert "meta-trained: no (a module wrapped by MetaModel.from_module)" in text
    assert "None-way" not in text


def test_summary_shows_the_seed_and_what_it_was_drawn_from(blobs):
    """`skmeta info` shows what repeats a run: its seed, the int random_state
    it came from, and the thread counts its sums depend on."""
    import torch

    X, y = blobs
    seeded = MetaFeatureExtractor(max_iter=2, n_way=3, random_state=7).fit(X, y)
    training = seeded.meta_model_.config["training"]
    threads = torch.get_num_threads()
    plural = "" if threads == 1 else "s"
    assert (
        f"seed:         {training['seed']} (drawn from random_state=7), "
        f"{threads} torch thread{plural}"
    ) in seeded.meta_model_.summary()
    unseeded = MetaFeatureExtractor(max_iter=2, n_way=3).fit(X, y).meta_model_
    seed = unseeded.config["training"]["seed"]
    drawn = unseeded.config["provenance"]["random_state"]
    assert (
        f"seed:         {seed} (drawn from random_state={drawn}, itself drawn "
        "for random_state=None)"
    ) in unseeded.summary()
    instance = MetaFeatureExtractor(
        max_iter=2, n_way=3, random_state=np.random.RandomState(0)
    )
    consumed = instance.fit(X, y).meta_model_
    seed = consumed.config["training"]["seed"]
    assert f"seed:         {seed} (no random_state recorded:" in (consumed.summary())
