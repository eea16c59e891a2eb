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
    FewShotClassifier(transductive="bdcspn", max_iter=20, random_state=0),
]

# One registry of expected failures, each with its reason, by estimator name
# (a classifier with `transductive` set apart). Aim: empty, but for what the
# sklearn.semi_supervised convention rules out.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "FewShotClassifier(transductive)": {
        "check_classifiers_classes": (
            "y == -1 marks unlabelled rows under `transductive` (as in "
            "sklearn.semi_supervised), so the check's classes -1 and 1 leave "
            "one labelled class; fit says so and asks to relabel (y + 1)."
        ),
    },
}


def expected_failed_checks(estimator) -> dict[str, str]:
    name = type(estimator).__name__
    if getattr(estimator, "transductive", None) is not None:
        name += "(transductive)"
    return EXPECTED_FAILED_CHECKS.get(name, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
