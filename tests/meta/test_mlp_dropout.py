"""``backbone_params={"dropout": p}``: dropout after each hidden ReLU of the
MLP, active in meta-training (train mode) only."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from skmeta import FewShotClassifier, MetaFeatureExtractor
from skmeta.meta.backbones import build_backbone
from skmeta.meta.model import MetaModel


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 8)
    X = rng.normal(size=(80, 6)) + 2 * np.eye(10, 6)[y]
    return X.astype(np.float32), y


def test_a_dropout_layer_follows_each_hidden_relu():
    net = build_backbone("mlp", (6,), {"hidden_sizes": (8, 8), "dropout": 0.2})
    kinds = [type(m) for m in net.layers]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]
    assert all(m.p == 0.2 for m in net.layers if isinstance(m, nn.Dropout))
    plain = build_backbone("mlp", (6,), {"hidden_sizes": (8, 8)})
    # the default adds none: the layers, and so saved models' names, unchanged
    assert not any(isinstance(m, nn.Dropout) for m in plain.layers)
    assert list(plain.state_dict()) == list(
        build_backbone("mlp", (6,), {"hidden_sizes": (8, 8), "dropout": 0}).state_dict()
    )


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, "0.2", True, None])
def test_bad_dropout_is_refused_naming_the_parameter(table, bad):
    clf = FewShotClassifier(backbone_params={"dropout": bad}, max_iter=1)
    with pytest.raises(ValueError, match=r"backbone_params\['dropout'\]"):
        clf.fit(*table)


def test_dropout_is_active_in_meta_training(table, monkeypatch):
    seen = []
    dropout = torch.nn.functional.dropout

    def recording(x, p=0.5, training=True, inplace=False):
        seen.append((p, training))
        return dropout(x, p, training, inplace)

    monkeypatch.setattr(torch.nn.modules.dropout.F, "dropout", recording)
    ext = MetaFeatureExtractor(
        backbone_params={"dropout": 0.3}, max_iter=2, n_way=3, random_state=0
    )
    ext.fit(*table)
    assert (0.3, True) in seen  # meta-training's passes drop units
    seen.clear()
    ext.transform(table[0])
    assert all(not training for _, training in seen)


def test_transform_is_deterministic_and_survives_saving(table, tmp_path):
    X, y = table
    ext = MetaFeatureExtractor(
        backbone_params={"dropout": 0.5}, max_iter=3, n_way=3, random_state=0
    ).fit(X, y)
    first = ext.transform(X)
    np.testing.assert_array_equal(ext.transform(X), first)
    net = ext.meta_model_.network()
    with torch.no_grad():  # in train mode the same network drops units
        noisy = net.train()(torch.from_numpy(X)).numpy()
    net.eval()
    assert not np.allclose(noisy, first, atol=1e-4)
    ext.meta_model_.save(tmp_path / "m.safetensors")
    loaded = MetaModel.load(tmp_path / "m.safetensors")
    assert loaded.config["backbone_params"]["dropout"] == 0.5
    np.testing.assert_array_equal(loaded.transform(X), first)
    clf = FewShotClassifier(pretrained=loaded).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
