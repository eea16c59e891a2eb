"""numpydoc's validation of the public estimators' docstrings."""

import inspect
import operator

import pytest

import skmeta
import skmeta.model_selection

validate = pytest.importorskip("numpydoc.validate", reason="numpydoc: dev extra")

ESTIMATORS = ["FewShotClassifier", "MetaFeatureExtractor", "FewShotRegressor"]
DISPLAYS = ["MetaTrainingDisplay", "EpisodicScoreDisplay"]
SPLITTERS = ["model_selection.EpisodicSplit", "model_selection.TaskSplit"]

# Checks not asserted, and why:
# - ES01 (extended summary), SA01 (See Also), EX01 (Examples) on every method:
#   the classes carry the explanation, the cross-references and the doctested
#   examples; repeating them on each short method adds nothing.
# - RT02 (Returns line holds only a type): ``self : FewShotClassifier`` names
#   what ``fit`` returns, as scikit-learn writes it.
IGNORED = {"ES01", "SA01", "EX01", "RT02"}
CHECKED = sorted(set(validate.ERROR_MSGS) - IGNORED)


def _is_method(value) -> bool:
    """A function or a class method (``from_estimator``, bound to its class)."""
    return inspect.isfunction(value) or inspect.ismethod(value)


def _documented_objects():
    """The estimators and displays, their public methods written in skmeta
    (scikit-learn's inherited ones are its own to document), and
    ``available_methods``."""
    names = ["skmeta.available_methods", "skmeta.model_selection.episodic_score"]
    for name in ESTIMATORS + DISPLAYS + SPLITTERS:
        cls = operator.attrgetter(name)(skmeta)
        names.append(f"skmeta.{name}")
        for attr, value in inspect.getmembers(cls, _is_method):
            if not attr.startswith("_") and value.__module__.startswith("skmeta"):
                names.append(f"skmeta.{name}.{attr}")
    return names


def test_the_methods_of_every_estimator_are_covered():
    names = _documented_objects()
    for method in ("fit", "predict", "predict_proba", "decision_function"):
        assert f"skmeta.FewShotClassifier.{method}" in names
    assert "skmeta.MetaFeatureExtractor.transform" in names
    assert "skmeta.FewShotRegressor.predict" in names
    for method in ("plot", "from_estimator", "from_model", "from_history"):
        assert f"skmeta.MetaTrainingDisplay.{method}" in names
    for method in ("plot", "from_estimators", "from_scores"):
        assert f"skmeta.EpisodicScoreDisplay.{method}" in names


@pytest.mark.parametrize("name", _documented_objects())
def test_docstring_is_numpydoc_valid(name):
    errors = [
        f"{code}: {message}"
        for code, message in validate.validate(name)["errors"]
        if code in CHECKED
    ]
    assert not errors, "\n".join(errors)
