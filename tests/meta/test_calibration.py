"""Temperature scaling, calibration error and open-set scores on held-out
classes (skmeta.meta.calibration), and meta-training's calibration record."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skmeta.meta.calibration import (
    calibration_record,
    expected_calibration_error,
    fit_temperature,
    known_score_threshold,
    split_halves,
)
from skmeta.meta.train import TrainSettings, meta_train


def _sampled(temperature, n=20000, n_classes=5, seed=0):
    """Logits and labels drawn from softmax(logits / temperature)."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, n_classes, generator=g, dtype=torch.float64)
    probs = (logits / temperature).softmax(1)
    targets = torch.multinomial(probs, 1, generator=g).squeeze(1)
    return logits, targets


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_fit_temperature_recovers_the_temperature_labels_were_drawn_with(
    true_temperature,
):
    logits, targets = _sampled(true_temperature)
    assert fit_temperature(logits, targets) == pytest.approx(true_temperature, rel=0.08)


def test_fitted_temperature_minimises_the_negative_log_likelihood():
    logits, targets = _sampled(1.7, n=3000, seed=1)
    t = fit_temperature(logits, targets)

    def nll(temp):
        return F.cross_entropy(logits / temp, targets).item()

    assert nll(t) <= nll(t * 1.02) and nll(t) <= nll(t / 1.02)


def test_fit_temperature_skips_non_finite_rows_and_refuses_none_left():
    logits, targets = _sampled(2.0, n=2000, seed=2)
    spoilt = logits.clone()
    spoilt[:10, 0] = float("nan")
    assert fit_temperature(spoilt, targets) == pytest.approx(
        fit_temperature(logits[10:], targets[10:]), rel=1e-6
    )
    with pytest.raises(ValueError, match="No finite"):
        fit_temperature(torch.full((3, 2), float("inf")), torch.zeros(3).long())


def test_expected_calibration_error_of_calibrated_and_overconfident_scores():
    logits, targets = _sampled(1.0, n=40000, seed=3)
    assert expected_calibration_error(logits.softmax(1), targets) < 0.01
    overconfident = expected_calibration_error((4 * logits).softmax(1), targets)
    assert overconfident > 0.1


def test_expected_calibration_error_by_hand():
    # bin of 0.6-confidence rows: 2 of 3 right (gap 1/15); bin of 0.95: 1 of 1
    p = torch.tensor([[0.6, 0.4]] * 3 + [[0.95, 0.05]])
    y = torch.tensor([0, 0, 1, 0])
    expected = 0.75 * abs(2 / 3 - 0.6) + 0.25 * abs(1 - 0.95)
    assert expected_calibration_error(p, y) == pytest.approx(expected)


def test_calibration_record_improves_overconfident_scores_and_keeps_accuracy():
    logits, targets = _sampled(1.0, n=5000, seed=4)
    record = calibration_record(4 * logits, targets)
    assert record["temperature"] == pytest.approx(4.0, rel=0.1)
    assert record["ece_after"] < record["ece_before"] / 3
    assert record["nll_after"] < record["nll_before"]
    assert record["accuracy"] == pytest.approx(
        (logits.argmax(1) == targets).double().mean().item()
    )
    best = (4 * logits).max(1).values.numpy()
    assert known_score_threshold(record, 0.05) == pytest.approx(np.quantile(best, 0.05))
    # between recorded levels: linear interpolation, monotone in the rate
    assert (
        known_score_threshold(record, 0.05)
        < known_score_threshold(record, 0.0525)
        < known_score_threshold(record, 0.055)
    )
    with pytest.raises(ValueError, match="rejection_rate"):
        known_score_threshold(record, 0.7)


def _blobs(n_classes=24, per_class=30, dim=10, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, dim)) * 3
    y = np.repeat(np.arange(n_classes), per_class)
    X = centers[y] + rng.normal(size=(y.size, dim))
    return X.astype(np.float32), y


def test_meta_training_with_calibrate_records_temperature_on_held_out_classes():
    X, y = _blobs()
    settings = TrainSettings(
        n_way=5,
        k_shot=1,
        n_query=5,
        input_shape=(10,),
        max_iter=40,
        calibrate=True,
        validation_fraction=0.25,
        n_val_episodes=30,
        seed=0,
    )
    model = meta_train(X, y, settings)
    record = model.config["calibration"]
    assert record["n_way"] == 5 and record["n_queries"] == 30 * 5 * 5
    assert math.isfinite(record["temperature"]) and record["temperature"] > 0
    # fitted on 15 episodes, checked on the other 15
    assert record["n_fit_queries"] == record["n_check_queries"] == 15 * 5 * 5
    assert record["ece_after"] <= record["ece_before"]
    assert record["temperature"] in (1.0, record["fitted_temperature"])
    # held out: meta-training saw 18 of the 24 classes
    assert model.config["training"]["n_classes"] == 18


def test_calibrate_refuses_regression():
    X, y = _blobs(n_classes=6)
    settings = TrainSettings(
        n_way=1, k_shot=5, n_query=5, input_shape=(10,), max_iter=2, calibrate=True
    )
    with pytest.raises(ValueError, match="classification only"):
        meta_train(
            X,
            y,
            TrainSettings(
                **{
                    **settings.__dict__,
                    "method": "maml",
                    "method_params": {"regression": True},
                }
            ),
            targets=X[:, 0],
        )


def test_a_temperature_at_its_bound_warns_and_is_left_at_1():
    # scores that point the wrong way, huge: the NLL falls as T grows without end
    logits = torch.tensor([[0.0, 1e9], [1e9, 0.0]] * 20)
    targets = torch.tensor([0, 1] * 20)
    with pytest.warns(UserWarning, match="temperature reached its bound"):
        record = calibration_record(logits, targets)
    assert record["temperature"] == 1.0


def test_held_out_scores_right_with_certainty_leave_the_temperature_at_1():
    """A flat likelihood (every query right by a wide margin) gave arbitrary
    temperatures, 12.1 and 6.3 in two runs (a reviewer)."""
    logits = torch.tensor([[0.0, -500.0], [-500.0, 0.0]] * 20)
    targets = torch.tensor([0, 1] * 20)
    with pytest.warns(UserWarning, match="no temperature can be fitted"):
        record = calibration_record(logits, targets)
    assert record["temperature"] == 1.0


def test_split_halves_alternates_episodes_then_rows():
    episode = torch.tensor([0, 0, 1, 1, 2, 2, 5, 5])
    assert split_halves(8, episode).tolist() == [1, 1, 0, 0, 1, 1, 0, 0]
    assert split_halves(4, None).tolist() == [1, 0, 1, 0]
    assert split_halves(4, torch.zeros(4).long()).tolist() == [1, 0, 1, 0]
    assert split_halves(1, None).tolist() == [True]


def test_the_temperature_is_fitted_on_half_the_episodes_and_checked_on_the_rest():
    """T was fitted and its calibration error measured on the same episodes,
    which reported an ECE it lowered where it raised it on others."""
    logits, targets = _sampled(1.0, n=4000, seed=5)
    logits = 3 * logits
    episode = torch.arange(4000) // 20  # 200 episodes of 20 queries
    record = calibration_record(logits, targets, episode)
    fitting = (episode % 2) == 0
    assert record["fitted_temperature"] == pytest.approx(
        fit_temperature(logits[fitting], targets[fitting]), rel=1e-9
    )
    assert record["temperature"] == record["fitted_temperature"]
    assert record["temperature_kept_at_1"] is None
    check, truth = logits[~fitting], targets[~fitting]
    assert record["ece_before"] == pytest.approx(
        expected_calibration_error(check.softmax(1), truth)
    )
    assert record["nll_after"] == pytest.approx(
        F.cross_entropy(check / record["temperature"], truth).item()
    )
    assert record["n_fit_queries"] == record["n_check_queries"] == 2000
    assert record["ece_after"] < record["ece_before"] / 3


def test_a_temperature_that_raises_the_checked_calibration_error_is_not_applied():
    """A ProtoNet's fitted T = 1.069 raised its held-out ECE from 3.56% to
    5.53%, and predict_proba used it. Here calibrated scores and a few
    confidently wrong ones: the likelihood asks for a soft T that leaves the
    rest underconfident."""
    logits, targets = _sampled(1.0, n=4000, seed=6)
    wrong = torch.arange(4000) % 50 == 0
    logits[wrong] = 0.0
    logits[wrong, 0] = 30.0
    targets[wrong] = 1
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        record = calibration_record(logits, targets)
    assert [str(w.message) for w in got if w.category is UserWarning] == [
        record["temperature_kept_at_1"]
    ]
    assert "raised the expected calibration error" in record["temperature_kept_at_1"]
    assert record["fitted_temperature"] > 1.5 and record["temperature"] == 1.0
    assert record["ece_fitted"] > record["ece_before"] == record["ece_after"]
    assert record["nll_after"] == record["nll_before"]


def test_non_finite_rows_are_left_out_of_the_whole_record():
    """One NaN row made nll_before and nll_after NaN and counted in both
    calibration errors and the accuracy."""
    logits, targets = _sampled(1.0, n=2001, seed=7)
    clean = calibration_record(2 * logits[1:], targets[1:])
    spoilt = 2 * logits
    spoilt[0, 1] = float("nan")
    with_nan = calibration_record(spoilt, targets, torch.arange(2001))
    assert with_nan == clean == calibration_record(2 * logits[1:], targets[1:])
    assert math.isfinite(with_nan["nll_before"]) and with_nan["n_queries"] == 2000
    with pytest.raises(ValueError, match="No finite"):
        calibration_record(torch.full((3, 2), float("nan")), torch.zeros(3).long())
