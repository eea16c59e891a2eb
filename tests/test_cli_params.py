"""``skmeta train --backbone-params JSON --method-params JSON``: the
estimator's ``backbone_params`` and ``method_params`` from the command line,
checked before DATA is read where they can be."""

import numpy as np
import pytest
from _image_trees import write_image_tree

from skmeta.cli import main
from skmeta.datasets import make_glyphs
from skmeta.meta.model import MetaModel
from skmeta.meta.net import build_net


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """4 classes of 3 grey 16x16 glyph PNGs, and 4 classes of 6 table rows."""
    root = tmp_path_factory.mktemp("cli_params")
    X, y = make_glyphs(n_classes=4, n_samples_per_class=3, random_state=0)
    write_image_tree(root / "images", X, y, size=16)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(24, 4)).astype(np.float32)
    np.savez(root / "rows.npz", X=rows, y=np.arange(24) % 4)
    return root


def _train(data, tmp_path, source, *flags):
    out = tmp_path / "m.safetensors"
    argv = ["train", str(data / source), "--out", str(out), "--quiet"]
    argv += ["--max-iter", "2", "--n-way", "2"]
    if source == "images":  # the flags of image folders, refused for tables
        argv += ["--color", "grey", "--image-size", "16"]
    return main([*argv, *flags]), out


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_backbone_and_method_params_reach_the_estimator(data, tmp_path):
    backbone = '{"hidden_channels": 8, "trainable_blocks": 2}'
    status, out = _train(
        data,
        tmp_path,
        "images",
        *["--backbone", "conv4", "--backbone-params", backbone],
        *["--method-params", '{"distance": "cosine"}'],
    )
    assert status == 0
    model = MetaModel.load(out)
    assert model.config["backbone_params"] == {
        "hidden_channels": 8,
        "trainable_blocks": 2,
    }
    assert model.config["method_params"]["distance"] == "cosine"
    assert model.embedding_dim == 8  # 16x16 max-pooled 4 times: 1x1, 8 channels
    # the network the file rebuilds has the first two of conv4's 4 blocks frozen
    net = build_net(dict(model.config))
    trains = [p.requires_grad for p in net.backbone.parameters()]
    assert not all(trains[: len(trains) // 2]) and all(trains[len(trains) // 2 :])
    status, out = _train(
        data,
        tmp_path,
        "rows.npz",
        "--backbone-params",
        '{"hidden_sizes": [8], "out_features": 3}',
        "--method",
        "maml",
        "--method-params",
        '{"inner_steps": 2, "inner_lr": 0.05}',
    )
    assert status == 0
    model = MetaModel.load(out)
    assert model.embedding_dim == 3
    assert model.config["method_params"]["inner_steps"] == 2


@pytest.mark.parametrize(
    "value, message",
    [
        ("{hidden: 8}", "is not valid JSON (Expecting property name"),
        ("[8]", "'[8]' is an array, not a JSON object"),
        ('"conv4"', "is a string, not a JSON object"),
        ("null", "is null, not a JSON object"),
    ],
)
@pytest.mark.parametrize("flag", ["--backbone-params", "--method-params"])
def test_a_value_that_is_not_a_json_object_names_the_flag(
    data, tmp_path, capsys, flag, value, message
):
    with pytest.raises(SystemExit) as exit_:
        _train(data, tmp_path, "rows.npz", flag, value)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}: " in err and message in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--backbone-params", '{"hiden": 8}'],
            '--backbone-params {"hiden": 8} (--backbone conv4, input shape '
            "(1, 16, 16)): Conv4.__init__() got an unexpected keyword argument "
            "'hiden'",
        ),
        (
            ["--backbone-params", '{"trainable_blocks": 9}'],
            "--backbone-params['trainable_blocks'] must be an int from 0 to 4",
        ),
        (
            ["--backbone-params", '{"input_normalization": "imagenette"}'],
            "input_normalization must be 'data', 'imagenet' or a dict",
        ),
        (
            ["--method-params", '{"distanse": "cosine"}'],
            "--method-params has 'distanse', which --method protonet does not "
            "take: it takes distance",
        ),
        (
            ["--method", "maml", "--method-params", '{"inner_steps": 0}'],
            '--method-params {"inner_steps": 0}: inner_steps must be an int >= 1',
        ),
    ],
)
def test_bad_params_are_refused_before_an_image_folder_is_decoded(
    data, tmp_path, capsys, monkeypatch, flags, message
):
    import skmeta._cli_data

    def load_dataset(*args, **kwargs):
        raise AssertionError("DATA was read before the flags were checked")

    monkeypatch.setattr(skmeta._cli_data, "load_dataset", load_dataset)
    status, _ = _train(data, tmp_path, "images", *flags)
    assert status == 2
    err = _error(capsys)
    assert message in err
    assert "--backbone-params" in err or "--method-params" in err


def test_bad_backbone_params_on_a_table_are_refused_before_meta_training(
    data, tmp_path, capsys, monkeypatch
):
    """A keyword the backbone does not take was a TypeError's traceback."""
    from skmeta._extractor import MetaFeatureExtractor

    def fit(self, X, y=None, **kwargs):
        raise AssertionError("meta-trained before the flags were checked")

    monkeypatch.setattr(MetaFeatureExtractor, "fit", fit)
    status, _ = _train(data, tmp_path, "rows.npz", "--backbone-params", '{"hiden": 8}')
    assert status == 2
    assert (
        '--backbone-params {"hiden": 8} (--backbone mlp, input shape (4,)): '
        "MLP.__init__() got an unexpected keyword argument 'hiden'"
    ) in _error(capsys)
