"""``MetaModel.from_module(..., pixel_range=255.0)`` without a normalisation:
the module gets pixels in [0, 1] (it was silently ignored: a reviewer)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from skmeta.meta.model import MetaModel

SHAPE = (3, 4, 4)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 5)).eval()


def test_pixel_range_alone_divides_the_rows_and_is_recorded(tmp_path):
    net = _net()
    rows = np.random.default_rng(0).integers(0, 256, (6, 48)).astype(np.uint8)
    model = MetaModel.from_module(net, SHAPE, pixel_range=255.0)
    with torch.inference_mode():
        expected = net(torch.from_numpy(rows / 255.0).float()).numpy()
    np.testing.assert_allclose(model.transform(rows), expected, rtol=1e-5, atol=1e-6)
    norm = model.config["input_normalization"]
    assert norm["kind"] == "pixel_range" and norm["pixel_range"] == 255.0
    with pytest.warns(UserWarning, match="pixels"):  # [0, 1] rows: the wrong range
        model.transform((rows / 255.0).astype(np.float32))
    # the default leaves rows as they are, with nothing recorded
    plain = MetaModel.from_module(net, SHAPE)
    assert plain.config["input_normalization"] is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(
            plain.transform(rows.astype(np.float32) / 255.0), expected, rtol=1e-5
        )
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = MetaModel.load(path, backbone=net)
    np.testing.assert_allclose(loaded.transform(rows), expected, rtol=1e-5, atol=1e-6)


def test_pixel_range_of_a_table_is_refused():
    with pytest.raises(ValueError, match="pixel_range=255.0 scales image pixels"):
        MetaModel.from_module(nn.Linear(4, 2), (4,), pixel_range=255.0)
