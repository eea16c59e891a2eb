"""Model cards and evaluations recorded in model files."""

import numpy as np
import pytest
import torch

from skmeta.meta.model import MetaModel
from skmeta.meta.model_card import card_path, evaluation_record, model_card
from skmeta.meta.train import TrainSettings, meta_train


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(12), 6)
    X = (rng.normal(size=(12, 5)) * 3)[y] + rng.normal(size=(y.size, 5))
    settings = TrainSettings(n_way=3, k_shot=1, n_query=2, input_shape=(5,), max_iter=3)
    description = {"class_names": [f"c{i}" for i in range(12)]}
    return meta_train(X.astype(np.float32), y, settings, description=description)


def test_with_evaluation_adds_an_entry_and_shares_the_weights(model):
    entry = evaluation_record("5-way 1-shot", 0.9, 0.01, 600, {"source": "x/"})
    evaluated = model.with_evaluation(entry).with_evaluation(entry)
    assert "evaluations" not in model.config
    assert len(evaluated.config["evaluations"]) == 2
    assert evaluated.config["evaluations"][0]["mean"] == 0.9
    for name, tensor in model.state.items():
        assert evaluated.state[name].data_ptr() == tensor.data_ptr()
    rows = np.ones((2, 5), dtype=np.float32)
    np.testing.assert_array_equal(evaluated.transform(rows), model.transform(rows))


def test_with_feature_names_records_them_and_shares_the_weights(model, tmp_path):
    named = model.with_feature_names(["a", "b", "c", "d", "e"])
    assert not model.config["provenance"].get("feature_names")
    assert list(named.config["provenance"]["feature_names"]) == list("abcde")
    assert named.config["provenance"]["class_names"][0] == "c0"  # the rest kept
    for name, tensor in model.state.items():
        assert named.state[name].data_ptr() == tensor.data_ptr()
    named.save(tmp_path / "named")
    loaded = MetaModel.load(tmp_path / "named")
    assert list(loaded.config["provenance"]["feature_names"]) == list("abcde")


def test_with_evaluation_takes_episodic_scores_and_checks_mappings(model, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    from skmeta import episodic_score

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 6)
    score = episodic_score(
        KNeighborsClassifier(1), rng.normal(size=(36, 2)) + y[:, None], y,
        n_way=3, n_query=2, n_episodes=8, random_state=0,
    )  # fmt: skip
    evaluated = model.with_evaluation(score, task="3-way 1-shot", data={"n": 36})
    (entry,) = evaluated.config["evaluations"]
    assert entry["task"] == "3-way 1-shot" and entry["n_episodes"] == 8
    assert entry["mean"] == score.mean and entry["data"] == {"n": 36}
    evaluated.save(tmp_path / "m.safetensors", card=True)  # the card reads it
    assert "3-way 1-shot" in card_path(tmp_path / "m.safetensors").read_text()
    with pytest.raises(TypeError, match="needs task="):
        model.with_evaluation(score)
    with pytest.raises(TypeError, match="a mapping holds its own"):
        model.with_evaluation(evaluation_record("t", 0.9, 0.1, 5), task="other")
    with pytest.raises(TypeError, match="episodic_score's result or a mapping"):
        model.with_evaluation(0.9)
    with pytest.raises(ValueError, match="needs 'task'"):
        model.with_evaluation({"acc": 0.9})
    with pytest.raises(ValueError, match="needs 'n_episodes'"):
        model.with_evaluation({"task": "t", "mean": 0.9, "ci95": 0.1})
    with pytest.raises(ValueError, match="must be JSON"):
        model.with_evaluation(evaluation_record("t", 0.9, 0.1, 5, {"x": object()}))
    numpy_numbers = {"task": "t", "mean": np.float32(0.5), "ci95": np.float64(0.1)}
    added = model.with_evaluation({**numpy_numbers, "n_episodes": np.int64(5)})
    assert added.config["evaluations"][0]["n_episodes"] == 5


def test_card_says_what_the_model_is_and_how_it_did(model, tmp_path):
    entry = evaluation_record("5-way 1-shot, 15 queries", 0.9123, 0.0051, 600)
    path = tmp_path / "m.safetensors"
    model.with_evaluation(entry).save(path, card=True)
    text = card_path(path).read_text()
    assert text.startswith("# m: a skmeta protonet model")
    assert "3 iterations of 3-way 1-shot 2-query episodes on 12 classes" in text
    assert "c0, c1" in text and "91.23 ± 0.51%" in text
    training = model.config["training"]  # how to repeat the run
    assert f"seed {training['seed']}" in text
    assert f"learning rate {training['learning_rate']}" in text
    assert 'FewShotClassifier(pretrained="m.safetensors")' in text
    # what the card says is what the file holds
    loaded = MetaModel.load(path)
    assert model_card(loaded, "m.safetensors") == text
    assert loaded.config["evaluations"][0]["task"] == "5-way 1-shot, 15 queries"


def test_a_model_without_evaluations_says_so(model):
    assert "Not measured yet" in model_card(model)


def test_custom_backbone_file_as_pretrained_with_backbone(tmp_path):
    from skmeta import FewShotClassifier

    body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 4))
    model = MetaModel.from_module(body, (6,))
    path = tmp_path / "custom.safetensors"
    model.save(path)
    X = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="backbone"):
        FewShotClassifier(pretrained=str(path)).fit(X, y)
    fresh = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 4))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the backbone is used, not ignored
        clf = FewShotClassifier(pretrained=str(path), backbone=fresh).fit(X, y)
    reference = FewShotClassifier(pretrained=model).fit(X, y)
    np.testing.assert_allclose(clf.decision_function(X), reference.decision_function(X))


def test_the_card_names_the_random_state_that_repeats_the_run(blobs):
    from skmeta import FewShotClassifier

    X, y = blobs
    fitted = FewShotClassifier(max_iter=3, n_way=3, random_state=7).fit(X, y)
    model = fitted.meta_model_
    seed = model.config["training"]["seed"]
    assert model.config["provenance"]["random_state"] == 7
    assert f"seed {seed} (drawn from random_state=7: the same" in model_card(model, "m")
    again = FewShotClassifier(max_iter=3, n_way=3, random_state=7).fit(X, y)
    for name, value in model.state.items():  # the card's advice holds
        assert torch.equal(again.meta_model_.state[name], value), name
    unseeded = FewShotClassifier(max_iter=3, n_way=3).fit(X, y).meta_model_
    drawn = unseeded.config["provenance"]["random_state"]  # drawn for None
    assert unseeded.config["provenance"]["random_state_drawn"] is True
    assert (
        f"(drawn from random_state={drawn}, itself drawn for random_state=None: "
        "the same settings"
    ) in model_card(unseeded, "m")
    again = FewShotClassifier(max_iter=3, n_way=3, random_state=drawn).fit(X, y)
    for name, value in unseeded.state.items():  # an unseeded run repeated
        assert torch.equal(again.meta_model_.state[name], value), name
    consumed = np.random.RandomState(0)  # each fit draws on: no int repeats it
    instance = FewShotClassifier(max_iter=3, n_way=3, random_state=consumed)
    instance = instance.fit(X, y).meta_model_
    assert "random_state" not in instance.config["provenance"]
    assert "(meta_train with this seed, the same" in model_card(instance, "m")
    fitted.set_params(warm_start=True).fit(X, y)  # continues: not repeatable alone
    assert "(continuing a model of 3 iterations:" in model_card(fitted.meta_model_, "m")


def test_the_card_says_when_the_time_is_a_resumed_sessions(model):
    """config["training"]["elapsed"] is the time of the fit that resumed
    from a checkpoint, not of the run's iterations."""
    config = model.thawed_config()
    config["training"].update(elapsed=120.0, resumed_from=None)
    fresh = MetaModel(model.state, config, model.thawed_history())
    assert "episodes on 12 classes (2.0 min)" in model_card(fresh)
    config["training"]["resumed_from"] = 2
    resumed = MetaModel(model.state, config, model.thawed_history())
    assert "(2.0 min from iteration 2 on)" in model_card(resumed)
