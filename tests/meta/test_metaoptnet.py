"""MetaOptNet (skmeta.meta.algorithms.metaoptnet): an SVM head in closed form."""

import pytest
from closed_form_helpers import (
    check_estimator_head_is_sklearn,
    check_loss_is_the_deployed_head,
    check_meta_training_learns,
)
from sklearn.svm import LinearSVC

from skmeta.meta.algorithms import make_algorithm
from skmeta.meta.algorithms.closed_form import svm_head


def test_loss_is_the_deployed_svm_head():
    check_loss_is_the_deployed_head("metaoptnet", "C", 0.5, svm_head)


def test_meta_training_learns_new_classes(blobs):
    check_meta_training_learns(blobs, "metaoptnet")


def test_estimator_head_is_linear_svc(blobs, tmp_path):
    check_estimator_head_is_sklearn(
        blobs, "metaoptnet", "C", LinearSVC(tol=1e-10, max_iter=1_000_000), tmp_path
    )


def test_alpha_is_checked():
    with pytest.raises(ValueError, match="C must be a finite float, 0 < C"):
        make_algorithm("metaoptnet", C=0.0)


def test_pretrained_model_takes_C_but_no_other_setting(blobs):
    from skmeta import FewShotClassifier

    X, y = blobs
    model = FewShotClassifier(method="metaoptnet", max_iter=5, random_state=0)
    model = model.fit(X[y < 16], y[y < 16]).meta_model_
    with pytest.raises(ValueError, match="alpha"):
        FewShotClassifier(pretrained=model, method_params={"alpha": 1.0}).fit(X, y)
