"""What a model file records about itself (provenance, training, calibration,
evaluations, history), checked at loading: a record of the wrong JSON type is
refused with a ``ValueError`` naming it, not left to fail later, with a bare
``TypeError`` or ``AttributeError``, in ``skmeta info``, the model card or the
estimators; and the file's strings are shown with their control characters
escaped."""

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_model_file import FUZZ, JSON, _split, _write

from skmeta import FewShotClassifier
from skmeta.meta.model import MetaModel
from skmeta.meta.model_card import evaluation_record, model_card
from skmeta.meta.provenance import summary
from skmeta.meta.train import TrainSettings, meta_train


@pytest.fixture(scope="module")
def recorded(blobs, tmp_path_factory):
    """(metadata, tensors) of a file with every record: calibration, an
    evaluation, class and feature names, a row-name column, a history."""
    X, y = blobs
    settings = TrainSettings(
        n_way=3,
        k_shot=2,
        n_query=2,
        input_shape=(10,),
        max_iter=4,
        calibrate=True,
        validation_fraction=0.25,
        seed=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # calibration on few held-out classes
        model = meta_train(X[y < 16], y[y < 16], settings)
    model = model.with_evaluation(evaluation_record("3-way 1-shot", 0.9, 0.01, 50))
    model = model.with_feature_names([f"f{i}" for i in range(10)], id_column="id")
    path = tmp_path_factory.mktemp("records") / "m.safetensors"
    model.save(path)
    _, metadata, _ = _split(path.read_bytes())
    metadata["config"]["provenance"]["class_names"] = [f"c{i}" for i in range(16)]
    return metadata, {k: v.clone() for k, v in model.state.items()}


def _load(tmp_path, metadata, tensors) -> MetaModel:
    path = tmp_path / "m.safetensors"
    path.write_bytes(_write(metadata, tensors))
    return MetaModel.load(path)


def _use(model: MetaModel, blobs) -> None:
    """What reads the records: the summary (``skmeta info``), the card, and
    an estimator adapting and predicting (feature names, calibration)."""
    X, y = blobs
    summary(model)
    model_card(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. X without the recorded names
        open_set = {"unknown_label": -1, "rejection_rate": 0.1}  # its quantiles
        clf = FewShotClassifier(
            pretrained=model, **(open_set if model.config.get("calibration") else {})
        )
        clf.fit(X[y >= 16][::2], y[y >= 16][::2]).predict_proba(X[y >= 16][1::2])


def test_the_file_with_every_record_loads_and_is_read(recorded, blobs, tmp_path):
    _use(_load(tmp_path, *recorded), blobs)


def _set(metadata: dict, path: list, value) -> None:
    node = metadata
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@pytest.mark.parametrize(
    "path, value, problem",
    [
        (["config", "provenance"], 5, r"\['provenance'\] is 5, not a JSON object"),
        (["config", "provenance", "data"], None, r"\['data'\] is None, not a JSON"),
        (["config", "provenance", "feature_names"], "f0", "not a list of strings"),
        (["config", "provenance", "id_column"], ["id"], r"\['id_column'\] is \['id'"),
        (["config", "provenance", "targets"], {"mean": 0.0}, r"\['std'\] is None"),
        (["config", "training"], [], r"\['training'\] is \[\], not a JSON object"),
        (["config", "training", "n_iter"], "4", r"\['n_iter'\] is '4', not an int"),
        (["config", "training", "elapsed"], "1 s", "not a finite number"),
        (["config", "training", "class_augmentation"], {}, "not a string"),
        (["config", "calibration", "n_queries"], None, r"\['n_queries'\] is None"),
        (["config", "calibration", "ece_fitted"], [], r"\['ece_fitted'\] is \[\]"),
        (["config", "evaluations"], "good", r"\['evaluations'\] is 'good', not a"),
        (["config", "evaluations", 0, "mean"], "0.9", "needs 'mean'"),
        (["config", "evaluations", 0, "data"], None, "data, if given, a mapping"),
        (["config", "input_normalization"], {"mean": [0]}, r"\['std'\] is None"),
        (["history", 0, "loss"], "low", r"history\[0\]\['loss'\] is 'low'"),
        # JSON integers beyond any float: OverflowError (at loading, or in
        # skmeta info's formatting)
        (["config", "calibration", "known_score_quantiles", 0], 10**400, "quantiles"),
        (["config", "evaluations", 0, "mean"], 10**400, "mean is 10+: no float"),
        (["config", "training", "elapsed"], -(10**400), "not a finite number"),
    ],
)
def test_a_record_of_the_wrong_type_is_refused_at_loading(
    recorded, tmp_path, path, value, problem
):
    metadata, tensors = recorded
    metadata = _split(_write(metadata, tensors))[1]  # a copy
    _set(metadata, path, value)
    with pytest.raises(ValueError, match="not a valid skmeta model file: .*" + problem):
        _load(tmp_path, metadata, tensors)


def test_an_integer_beyond_int64_is_read_as_a_float(recorded, blobs, tmp_path):
    """A calibration quantile of -2**63 - 1 (a float to JSON's reader, but an
    array of Python objects to NumPy's): predicting with a rejection rate
    failed with a TypeError."""
    metadata, tensors = recorded
    metadata = _split(_write(metadata, tensors))[1]
    quantiles = metadata["config"]["calibration"]["known_score_quantiles"]
    quantiles[0] = -(2**63) - 1
    _use(_load(tmp_path, metadata, tensors), blobs)


def _record_paths(metadata: dict) -> list[list]:
    """Every path into the records (not the network's config, which
    ``test_fuzz_model_file`` varies)."""
    paths = []

    def walk(value, path):
        paths.append(path)
        if isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                walk(item, [*path, key])

    for key in ("provenance", "training", "calibration", "evaluations"):
        walk(metadata["config"][key], ["config", key])
    walk(metadata["history"][:2], ["history"])
    return paths


@FUZZ
@given(data=st.data(), value=JSON, delete=st.booleans())
def test_any_record_is_refused_or_read_without_error(
    recorded, blobs, tmp_path, data, value, delete
):
    """A signed file whose records have one entry changed to any JSON or
    dropped: a ``ValueError`` at loading, or a model whose summary, card and
    predictions work."""
    metadata, tensors = recorded
    metadata = _split(_write(metadata, tensors))[1]
    path = data.draw(st.sampled_from(_record_paths(metadata)), label="path")
    *parent, last = path
    node = metadata
    for key in parent:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[last]
    else:
        node[last] = value
    try:
        model = _load(tmp_path, metadata, tensors)
    except ValueError:
        return
    _use(model, blobs)


def test_the_files_strings_are_shown_escaped(recorded, tmp_path):
    """An escape sequence or a right-to-left override in a file's strings
    reaches the terminal (``skmeta info``) and the card escaped."""
    metadata, tensors = recorded
    metadata = _split(_write(metadata, tensors))[1]
    metadata["config"]["provenance"]["skmeta"] = "0.1\x1b]0;owned\x07\x1b[2J"
    metadata["config"]["provenance"]["class_names"][0] = "cat\u202etac"
    model = _load(tmp_path, metadata, tensors)
    for text in (summary(model), model_card(model)):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "0.1\\x1b]0;owned\\x07\\x1b[2J" in summary(model)
    assert "cat\\u202etac" in model_card(model)


def test_a_missing_plugins_name_is_escaped_and_not_vouched_for(recorded, tmp_path):
    """The file names the distribution a plugin's method came from: the
    message shows that name escaped, and as the file's word."""
    metadata, tensors = recorded
    metadata = _split(_write(metadata, tensors))[1]
    metadata["config"]["method"] = "no_such_method"
    metadata["config"]["provenance"]["method_plugin"] = {
        "distribution": "evil\x1b[8m",
        "version": "1.0",
        "entry_point": "evil:Method",
    }
    with pytest.raises(ValueError) as error:
        _load(tmp_path, metadata, tensors)
    message = str(error.value)
    assert "\x1b" not in message and "evil\\x1b[8m 1.0" in message
    assert "the file says" in message and "if you trust its source" in message


def test_old_files_without_the_later_records_still_load(recorded, blobs, tmp_path):
    """Records added over time are optional: a calibration without the
    held-out check, no training record, no evaluations, no provenance."""
    metadata, tensors = recorded
    metadata = _split(_write(metadata, tensors))[1]
    for key in ("fitted_temperature", "ece_fitted", "n_fit_queries"):
        del metadata["config"]["calibration"][key]
    del metadata["config"]["calibration"]["n_check_queries"]
    del metadata["config"]["calibration"]["temperature_kept_at_1"]
    for key in ("training", "evaluations", "provenance"):
        del metadata["config"][key]
    _use(_load(tmp_path, metadata, tensors), blobs)
