"""scikit-learn's own estimator checks on every public skmeta estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skmeta import FewShotClassifier, FewShotRegressor, MetaFeatureExtractor

# Short meta-training keeps each of the ~50 checks fast; the checks exercise the
# API contract, not accuracy.
ESTIMATORS = [
    FewShotClassifier(max_iter=20, random_state=0),
    MetaFeatureExtractor(max_iter=20, random_state=0),
    FewShotClassifier(method="maml", max_iter=10, inner_steps=2, random_state=0),
    FewShotRegressor(max_iter=100, inner_steps=2, random_state=0),
]

# One registry of expected failures, each with its reason. Aim: empty.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


@parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(
        type(est).__name__, {}
    ),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
