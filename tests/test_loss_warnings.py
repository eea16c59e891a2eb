"""The ConvergenceWarning of a run that reached max_iter with its loss still
falling: not when the training episodes are already fitted (a falling
training loss can be meta-overfitting then), and advising to check held-out
classes before raising max_iter."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

from skmeta import FewShotClassifier
from skmeta._loss_warnings import fitted_training_episodes, warn_if_still_improving


class Run:  # what warn_if_still_improving reads of a model
    def __init__(self, history):
        self.config = {"training": {"n_iter": 100}}
        self.history = history


def _falling(start=2.0, **extra):
    """20 records of a loss falling steadily from `start`, plus `extra` keys."""
    return [{"loss": start * (1 - 0.045 * i), **extra} for i in range(20)]


def _silent(run):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warn_if_still_improving(run, 100)


def test_an_undertrained_run_still_warns_and_says_to_check_held_out_classes():
    with pytest.warns(ConvergenceWarning, match="still falling") as got:
        warn_if_still_improving(Run(_falling(accuracy=0.6)), 100)
    message = str(got[0].message)
    assert "more iterations may help, but check on held-out classes" in message
    assert "early_stopping=True" in message and "meta-overfitting" in message
    assert "Raise max_iter" not in message
    with pytest.warns(ConvergenceWarning, match="held-out tasks"):  # regression
        warn_if_still_improving(Run(_falling(mse=0.6)), 100)


def test_fitted_training_episodes_do_not_warn():
    _silent(Run(_falling(accuracy=0.97)))  # accuracy near 1
    # a reviewer's run: the loss went 0.044 -> 0, the accuracy not recorded
    _silent(Run([{"loss": 0.044 * (1 - i / 19)} for i in range(20)]))


def test_the_rule_reads_the_last_fifth_of_the_training_records():
    ends_fitted = [{"loss": 1.0, "accuracy": 0.5}] * 16 + [
        {"loss": 0.3, "accuracy": 0.96}
    ] * 4
    assert fitted_training_episodes(ends_fitted)
    assert not fitted_training_episodes(
        ends_fitted[:-1] + [{"loss": 0.3, "accuracy": 0.5}] * 4
    )
    assert fitted_training_episodes([{"loss": 0.009}] * 10)
    assert not fitted_training_episodes([{"loss": 0.011}] * 10)


def test_a_falling_validation_loss_still_warns_when_training_is_fitted():
    """Held-out classes still improving: more iterations would help them."""
    history = [
        {"loss": 0.001, "accuracy": 1.0, "val_loss": 2.0 * (1 - 0.045 * i)}
        for i in range(20)
    ]
    with pytest.warns(ConvergenceWarning, match="validation loss.*Raise max_iter"):
        warn_if_still_improving(Run(history), 100)


def _blobs(spread):
    X, y = make_blobs(200, n_features=6, centers=10, cluster_std=spread, random_state=0)
    return X.astype(np.float32), y


def test_a_meta_training_run_that_fitted_its_episodes_does_not_warn():
    """Its training loss still fell (0.043 -> 0.023 over the last two fifths:
    warned before) at a training accuracy of 0.995."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = FewShotClassifier(max_iter=100, n_way=5, random_state=0)
        clf.fit(*_blobs(2.0))
    assert np.mean([r["accuracy"] for r in clf.history_[-4:]]) >= 0.95


def test_an_undertrained_meta_training_run_still_warns():
    clf = FewShotClassifier(max_iter=100, n_way=5, learning_rate=1e-4, random_state=0)
    with pytest.warns(ConvergenceWarning, match="check on held-out classes"):
        clf.fit(*_blobs(4.0))
