"""R2-D2 (skmeta.meta.algorithms.r2d2): a ridge head in closed form."""

import pytest
from closed_form_helpers import (
    check_estimator_head_is_sklearn,
    check_loss_is_the_deployed_head,
    check_meta_training_learns,
)
from sklearn.linear_model import RidgeClassifier

from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.algorithms.closed_form import ridge_head


def test_loss_is_the_deployed_ridge_head():
    check_loss_is_the_deployed_head("r2d2", "alpha", 0.5, ridge_head)


def test_meta_training_learns_new_classes(blobs):
    check_meta_training_learns(blobs, "r2d2")


def test_estimator_head_is_ridge_classifier(blobs, tmp_path):
    check_estimator_head_is_sklearn(blobs, "r2d2", "alpha", RidgeClassifier(), tmp_path)


def test_alpha_is_checked():
    with pytest.raises(ValueError, match="alpha must be a finite float, 0 < alpha"):
        make_algorithm("r2d2", alpha=0.0)


def test_pretrained_model_takes_alpha_but_no_other_setting(blobs):
    from skmeta import FewShotClassifier

    X, y = blobs
    model = FewShotClassifier(method="r2d2", max_iter=5, random_state=0)
    model = model.fit(X[y < 16], y[y < 16]).meta_model_
    with pytest.raises(ValueError, match="C"):
        FewShotClassifier(pretrained=model, method_params={"C": 1.0}).fit(X, y)
