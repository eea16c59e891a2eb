"""The model-file loader, fuzzed: whatever the bytes, ``MetaModel.load`` gives
the model that was saved or a ``ValueError``, and never runs code."""

import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes

from skmeta.meta import io
from skmeta.meta.io_checks import checksum
from skmeta.meta.model import MetaModel
from skmeta.meta.train import TrainSettings, meta_train

# SKMETA_FUZZ_EXAMPLES=500 searches harder (minutes instead of seconds)
FUZZ = settings(
    max_examples=int(os.environ.get("SKMETA_FUZZ_EXAMPLES", 40)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def models(blobs):
    """A ProtoNet (the shared blob model) and a tiny MAML model, whose head
    and batch norm add meta-parameters and buffers to check."""
    X, y = blobs
    maml = meta_train(
        X[y < 16],
        y[y < 16],
        TrainSettings(
            n_way=3,
            k_shot=2,
            n_query=2,
            input_shape=(10,),
            method="maml",
            method_params={"inner_steps": 1},
            backbone_params={"hidden_sizes": (8,)},
            max_iter=2,
            seed=0,
        ),
    )
    return {"maml": maml}


@pytest.fixture(scope="module", params=["protonet", "maml"])
def saved(request, blob_model, models, tmp_path_factory):
    """(model, its file's bytes)."""
    model = blob_model if request.param == "protonet" else models["maml"]
    path = tmp_path_factory.mktemp("files") / f"{request.param}.safetensors"
    model.save(path)
    return model, path.read_bytes()


def _same(loaded: MetaModel, model: MetaModel) -> bool:
    return (
        io.thawed(loaded.config) == io.thawed(model.config)
        and set(loaded.state) == set(model.state)
        and all(torch.equal(loaded.state[k], model.state[k]) for k in model.state)
    )


def _load_or_value_error(path, data: bytes):
    """Load `data` written to `path`: the model, or None after a ValueError."""
    path.write_bytes(data)
    try:
        return MetaModel.load(path)
    except ValueError:
        return None


def _split(data: bytes) -> tuple[dict, dict, bytes]:
    """(safetensors header, skmeta metadata, tensor bytes) of a model file."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    return header, json.loads(header["__metadata__"]["skmeta"]), data[8 + n :]


def _write(metadata: dict, tensors: dict, sign: bool = True) -> bytes:
    """A model file of `tensors` and `metadata`, with a valid checksum (as
    anyone can compute) when `sign`."""
    metadata = {k: v for k, v in metadata.items() if k != "sha256"}
    if sign:
        metadata["sha256"] = checksum(metadata, tensors)
    return safetensors_bytes(tensors, metadata={"skmeta": json.dumps(metadata)})


@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncated_files_are_refused(saved, tmp_path, cut):
    _, data = saved
    loaded = _load_or_value_error(tmp_path / "m.st", data[: int(cut * len(data))])
    assert loaded is None


@FUZZ
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_flipped_bit_is_refused_or_harmless(saved, tmp_path, position, bit):
    """Anywhere in the header, the JSON or the weights: the checksum (or the
    safetensors parser) catches it; a flip that leaves a valid file of the
    same model (e.g. in the name of the checksum's key) is harmless."""
    model, data = saved
    corrupt = bytearray(data)
    corrupt[int(position * len(data))] ^= 1 << bit
    loaded = _load_or_value_error(tmp_path / "m.st", bytes(corrupt))
    assert loaded is None or _same(loaded, model)


@FUZZ
@given(
    position=st.floats(0, 1, exclude_max=True),
    junk=st.binary(min_size=1, max_size=64),
)
def test_overwritten_bytes_are_refused_or_harmless(saved, tmp_path, position, junk):
    model, data = saved
    start = int(position * len(data))
    corrupt = data[:start] + junk + data[start + len(junk) :]
    loaded = _load_or_value_error(tmp_path / "m.st", corrupt[: len(data)])
    assert loaded is None or _same(loaded, model)


@FUZZ
@given(size=st.integers(0, 2**64 - 1))
def test_an_oversized_or_wrong_header_length_is_refused(saved, tmp_path, size):
    model, data = saved
    (true_size,) = struct.unpack("<Q", data[:8])
    corrupt = struct.pack("<Q", size) + data[8:]
    loaded = _load_or_value_error(tmp_path / "m.st", corrupt)
    assert (loaded is None) if size != true_size else _same(loaded, model)


DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]


@FUZZ
@given(data=st.data())
def test_weights_of_another_dtype_or_shape_are_refused(saved, tmp_path, data):
    """Signed files (as an attacker can make them): a tensor of the wrong
    dtype or shape, one missing or one too many."""
    model, raw = saved
    _, metadata, _ = _split(raw)
    tensors = {k: v.clone() for k, v in model.state.items()}
    name = data.draw(st.sampled_from(sorted(tensors)), label="tensor")
    change = data.draw(st.sampled_from(["dtype", "shape", "drop", "add"]))
    if change == "drop" and name == "extra.base_mean":
        change = "add"  # optional: files written before feature_norm lack it
    if change == "dtype":
        dtype = data.draw(st.sampled_from(DTYPES))
        if dtype == tensors[name].dtype:
            dtype = torch.float32
        tensors[name] = tensors[name].to(dtype)
    elif change == "shape":
        shape = data.draw(st.lists(st.integers(0, 12), max_size=3), label="shape")
        if list(tensors[name].shape) == shape:
            shape = [*shape, 2]
        tensors[name] = torch.zeros(shape)
    elif change == "drop":
        del tensors[name]
    else:
        tensors[name + ".extra"] = torch.zeros(3)
    with pytest.raises(ValueError, match="not a valid skmeta model file"):
        path = tmp_path / "m.st"
        path.write_bytes(_write(metadata, tensors))
        MetaModel.load(path)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([2**63, -(2**63) - 1, 10**400])  # beyond int64, any float
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["mlp", "conv4", "resnet12", "custom", "maml", "torchvision:x"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=8,
)
CONFIG_KEYS = [
    "method",
    "method_params",
    "backbone",
    "backbone_params",
    "input_shape",
    "per_feature_scaling",
    "embedding_dim",
    "task_norm",
    "input_normalization",
    "frozen_parameters",
    "ignored_features",
    "target_scaling",
]


@FUZZ
@given(key=st.sampled_from(CONFIG_KEYS), value=JSON, delete=st.booleans())
def test_json_that_does_not_match_the_weights_is_refused(
    saved, blobs, tmp_path, key, value, delete
):
    """A signed file whose config has one key changed or dropped: a
    ``ValueError``, or (a change that still describes these weights) a model
    that embeds rows."""
    model, raw = saved
    _, metadata, _ = _split(raw)
    if delete:
        metadata["config"].pop(key, None)
    else:
        metadata["config"][key] = value
    tensors = {k: v.clone() for k, v in model.state.items()}
    loaded = _load_or_value_error(tmp_path / "m.st", _write(metadata, tensors))
    if loaded is not None:
        out = loaded.transform(blobs[0][:4])
        assert out.shape == (4, loaded.embedding_dim)


@FUZZ
@given(
    key=st.sampled_from(["format_version", "config", "history", "sha256"]),
    value=JSON,
)
def test_metadata_of_the_wrong_types_is_refused(saved, tmp_path, key, value):
    model, raw = saved
    _, metadata, _ = _split(raw)
    metadata[key] = value
    tensors = dict(model.state)
    if key == "sha256":  # the fuzzed value stands as the file's checksum
        data = safetensors_bytes(tensors, metadata={"skmeta": json.dumps(metadata)})
    else:
        data = _write(metadata, tensors)
    loaded = _load_or_value_error(tmp_path / "m.st", data)
    if loaded is not None:  # only a value that the file could hold anyway
        assert _same(loaded, model) or key == "history"


def test_files_without_a_checksum_still_load(saved, tmp_path):
    """Files written before the checksum was added load as before."""
    model, raw = saved
    _, metadata, _ = _split(raw)
    path = tmp_path / "old.st"
    path.write_bytes(_write(metadata, dict(model.state), sign=False))
    assert _same(MetaModel.load(path), model)


def test_a_wrong_checksum_is_refused(saved, tmp_path):
    model, raw = saved
    _, metadata, _ = _split(raw)
    metadata["sha256"] = "0" * 64
    path = tmp_path / "m.st"
    path.write_bytes(
        safetensors_bytes(dict(model.state), metadata={"skmeta": json.dumps(metadata)})
    )
    with pytest.raises(ValueError, match="checksum does not match"):
        MetaModel.load(path)


def test_a_config_with_absurd_sizes_costs_no_memory(saved, tmp_path):
    """The network is first built on the "meta" device: a hidden layer of
    10^12 units (40 TB as float32) is refused by its shape (a real build
    would fail allocating it, with another message)."""
    model, raw = saved
    _, metadata, _ = _split(raw)
    hidden = metadata["config"]["backbone_params"].get("hidden_sizes", [256, 256])
    metadata["config"]["backbone_params"] = {"hidden_sizes": [10**12, *hidden[1:]]}
    path = tmp_path / "m.st"
    path.write_bytes(_write(metadata, dict(model.state)))
    with pytest.raises(ValueError, match="weight .* of shape"):
        MetaModel.load(path)


def test_loading_never_unpickles(saved, tmp_path, monkeypatch):
    """No pickle, no torch.load: what loading uses cannot run code."""
    model, raw = saved

    def refuse(*args, **kwargs):
        raise AssertionError("the loader unpickled something")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    path = tmp_path / "m.st"
    path.write_bytes(raw)
    assert _same(MetaModel.load(path), model)
    np.testing.assert_array_equal(
        MetaModel.load(path).state["input_mean"], model.state["input_mean"]
    )


def test_a_file_of_a_newer_skmeta_says_to_upgrade(saved, tmp_path):
    model, raw = saved
    _, metadata, _ = _split(raw)
    metadata["config"]["provenance"] = {"skmeta": "9.0.0"}
    metadata["config"]["method_params"]["a_setting_of_9_0"] = 1
    data = _write(metadata, {k: v.clone() for k, v in model.state.items()})
    path = tmp_path / "m.st"
    path.write_bytes(data)
    with pytest.raises(ValueError, match="written by skmeta 9.0.0, newer than"):
        MetaModel.load(path)
    metadata["config"]["provenance"] = {"skmeta": "0.0.1"}  # older: no such note
    path.write_bytes(_write(metadata, {k: v.clone() for k, v in model.state.items()}))
    with pytest.raises(ValueError) as error:
        MetaModel.load(path)
    assert "upgrade" not in str(error.value)


@pytest.mark.parametrize("depth", [40, 900, 100_000])
def test_json_nested_too_deeply_is_refused(saved, tmp_path, depth):
    """JSON nested past Python's recursion limit failed with a bare
    RecursionError (in the parser, or later in the checks); any nesting
    deeper than skmeta writes is refused with a ValueError."""
    model, raw = saved
    _, metadata, _ = _split(raw)
    text = json.dumps(metadata).replace(
        '"history": [', '"history": [{"nested": ' + "[" * depth + "]" * depth + "}, "
    )
    path = tmp_path / "m.st"
    path.write_bytes(safetensors_bytes(dict(model.state), metadata={"skmeta": text}))
    with pytest.raises(ValueError, match="nests more than 32 levels deep"):
        MetaModel.load(path)


def test_a_checkpoint_nested_too_deeply_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    text = '{"format_version": 1, "fingerprint": ' + "[" * 10**5 + "]" * 10**5 + "}"
    path.write_bytes(safetensors_bytes({}, metadata={"skmeta_checkpoint": text}))
    with pytest.raises(ValueError, match="not a skmeta checkpoint .*nests more than"):
        io.checkpoint_metadata(path)
    path.write_bytes(
        safetensors_bytes(
            {},
            metadata={"skmeta_checkpoint": '{"format_version": 1, "fingerprint": 3}'},
        )
    )
    with pytest.raises(ValueError, match="fingerprint is not a JSON object"):
        io.checkpoint_metadata(path)


def test_more_layers_than_weights_are_refused_before_building(
    saved, tmp_path, monkeypatch
):
    """A list of layers longer than the file has tensors is refused before
    the network is built: 100,000 hidden layers in a 300 KB file took 2
    minutes and 1 GB to be refused on the "meta" device, per layer."""
    import skmeta.meta.net as net_module

    model, raw = saved
    _, metadata, _ = _split(raw)
    metadata["config"]["backbone_params"]["hidden_sizes"] = [8] * 2000

    def refuse(*args, **kwargs):
        raise AssertionError("a network was built")

    monkeypatch.setattr(net_module, "build_net", refuse)
    path = tmp_path / "m.st"
    path.write_bytes(_write(metadata, dict(model.state)))
    with pytest.raises(ValueError, match=r"\['hidden_sizes'\] lists 2000 layers"):
        MetaModel.load(path)


def test_a_file_asking_for_endless_inner_steps_is_refused(models, tmp_path):
    """A file's inner_steps is what fit runs: 10**30 loaded, and fit then
    ran until stopped, its memory growing."""
    model = models["maml"]
    path = tmp_path / "m.st"
    model.save(path)
    _, metadata, _ = _split(path.read_bytes())
    metadata["config"]["method_params"]["inner_steps"] = 10**30
    path.write_bytes(_write(metadata, dict(model.state)))
    with pytest.raises(ValueError, match="inner_steps must be an int >= 1 and <="):
        MetaModel.load(path)
