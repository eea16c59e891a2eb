"""Transductive and semi-supervised inference in the estimators: rows labelled
``-1`` are unlabelled (scikit-learn's ``sklearn.semi_supervised``
convention), and a method of ``skmeta.meta.transductive`` labels them jointly
with the labelled rows on the meta-model's embedding.

``_base.py`` calls these when ``transductive`` is set; with the default
(None) nothing here runs and ``-1`` is an ordinary label.
"""

from __future__ import annotations

import warnings

import numpy as np

from .meta import inference
from .meta.algorithms import ALGORITHMS
from .meta.caller import user_stacklevel
from .meta.input_normalization import check_pixel_range
from .meta.transductive import TRANSDUCTIVE, TransductiveMethod, make_transductive

__all__ = [
    "UNLABELLED",
    "minus_one_read_as_unlabelled",
    "native_labels",
    "check_transductive",
    "transduce",
    "transductive_scores",
    "unlabelled_rows",
]

UNLABELLED = -1


def minus_one_read_as_unlabelled(consequence: str) -> str:
    """The error for a class labelled -1 given to a transductive classifier:
    what reading it as 'unlabelled' does (`consequence`), and the fix."""
    return (
        "y holds the label -1, which a transductive classifier reads as "
        f"'unlabelled': {consequence}. Relabel that class (e.g. y + 1), or "
        "leave transductive=None."
    )


def native_labels(labels: np.ndarray) -> np.ndarray:
    """`labels` of an object array in the one dtype they share when they are
    all booleans or all numbers (an object array was needed only for the
    integer -1 of the unlabelled rows beside them); other labels unchanged."""
    if labels.dtype.kind != "O" or not labels.size:
        return labels
    kinds = {"b" if isinstance(v, bool | np.bool_) else type(v) for v in labels}
    if kinds == {"b"}:
        return labels.astype(bool)
    if all(
        isinstance(k, type) and issubclass(k, int | float | np.number) for k in kinds
    ):
        return np.array(labels.tolist())
    return labels


def unlabelled_rows(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of `y` labelled ``-1`` (never true for string
    labels: the string ``"-1"`` is a class, with a warning, whether in a
    string array or an object array beside the integer -1)."""
    if y.dtype.kind in "iuf":
        return y == UNLABELLED
    if y.dtype.kind == "O":
        marked = np.fromiter(
            (isinstance(v, int | float | np.number) and v == UNLABELLED for v in y),
            dtype=bool,
            count=len(y),
        )
        strings = any(isinstance(v, str | bytes) and v in ("-1", b"-1") for v in y)
    else:
        marked = np.zeros(len(y), dtype=bool)
        strings = y.dtype.kind in "US" and bool((y == y.dtype.type("-1")).any())
    if strings:
        warnings.warn(
            "y holds the string '-1', which is taken as a class: unlabelled "
            "rows are marked by the integer -1 (in an object array beside "
            "string labels, as sklearn.semi_supervised does).",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return marked


def check_transductive(estimator, method: str) -> TransductiveMethod | None:
    """The transductive method `estimator` asks for with a model of `method`,
    or None for inductive inference.

    Raises ``ValueError`` for `transductive_params` without `transductive`,
    for settings the method does not take, and for a `method` whose
    deployment is not nearest prototype on the embedding. An estimator that
    never adapts (the extractor) warns that the setting is unused, and so does
    one given the method's own deployment settings (``feature_norm``), which
    the transductive method replaces.
    """
    name, params = estimator.transductive, estimator.transductive_params
    if name is None:
        if params is not None:
            raise ValueError(
                f"transductive_params={params!r} is set but transductive=None; "
                f"set transductive to one of {list(TRANSDUCTIVE)}, or leave "
                "transductive_params=None."
            )
        return None
    transducer = make_transductive(name, **(params or {}))  # bad settings fail here
    if not estimator._adapts:
        warnings.warn(
            f"transductive={name!r} is ignored: {type(estimator).__name__} does "
            "not classify (it only embeds), so it has no rows to label. Leave "
            "transductive=None.",
            UserWarning,
            stacklevel=4,
        )
        return None
    if not ALGORITHMS[method].prototype_deployment:
        takers = [m for m, cls in ALGORITHMS.items() if cls.prototype_deployment]
        raise ValueError(
            f"transductive={name!r} applies to methods that classify by nearest "
            f"prototype on the embedding ({', '.join(takers)}); method={method!r} "
            "does not. Leave transductive=None, or use one of those methods."
        )
    deployment = [
        f"{key}={value!r}"
        for key, value in (estimator.method_params or {}).items()
        if key in ALGORITHMS[method].adaptation_settings and value is not None
    ]
    if deployment:
        warnings.warn(
            f"method_params {', '.join(deployment)} is ignored with "
            f"transductive={name!r}: it sets how method={method!r} classifies "
            "new rows, and the transductive method labels them instead. Leave "
            "it out, or set transductive=None.",
            UserWarning,
            stacklevel=4,
        )
    return transducer


def transduce(estimator, X: np.ndarray, codes: np.ndarray, views=None) -> None:
    """Embed X (averaged over `views`, test-time augmentation), run the
    transductive method on its labelled rows (`codes` >= 0) and unlabelled
    rows (-1); set ``adapted_`` and ``transduction_``.

    Warns with no unlabelled row (the method's inductive form) and with fewer
    unlabelled rows than classes (too few for a transductive method).
    """
    check_pixel_range(estimator.meta_model_.config, X)
    n_unlabelled, n_classes = int((codes == UNLABELLED).sum()), len(estimator.classes_)
    if 0 < n_unlabelled < n_classes:
        warnings.warn(
            f"transductive={estimator.transductive!r} got {n_unlabelled} "
            f"unlabelled row(s) (y == -1) for {n_classes} classes. Transductive "
            "methods need a batch with every class present, several rows each; "
            "with fewer rows than classes they label no better than inductive "
            "inference, or far worse (ptmap refuses such a batch). Use "
            "transductive=None for a few rows.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if not n_unlabelled:
        warnings.warn(
            f"transductive={estimator.transductive!r} got no unlabelled row "
            "(y == -1), so this fit is the method's inductive form. A "
            "meta-estimator that fits on labelled rows only (GridSearchCV, "
            "cross_val_score, SelfTrainingClassifier, ...) passes it none, and "
            "one that re-encodes the labels (VotingClassifier, "
            "StackingClassifier, BaggingClassifier, OneVsRestClassifier) makes "
            "-1 a class: to label rows transductively, fit this classifier "
            "itself with them "
            "marked y == -1; to score the transductive method over episodes, "
            "each episode's queries as its unlabelled rows, use "
            "skmeta.episodic_score.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    estimator.adapted_, inferred_unlabelled = inference.transduce(
        estimator.meta_model_,
        estimator._transducer,
        X,
        codes,
        len(estimator.classes_),
        estimator._device(),
        views,
    )
    inferred = codes.copy()
    inferred[codes == UNLABELLED] = inferred_unlabelled
    estimator.transduction_ = estimator.classes_[inferred]


def transductive_scores(estimator, X: np.ndarray, views=None) -> np.ndarray:
    """Class scores of rows X with the fitted transductive state, float32,
    shape (n_samples, n_classes)."""
    check_pixel_range(estimator.meta_model_.config, X)
    return inference.transductive_predict(
        estimator.meta_model_,
        estimator._transducer,
        estimator.adapted_,
        X,
        estimator._device(),
        views,
    )
