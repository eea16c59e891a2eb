"""The estimators' ``test_time_shifts`` and ``test_time_turns``: which views
of a row to embed.

Read at every use: an extractor's ``set_params(test_time_shifts=...)`` after
``fit`` applies to its next ``transform``. A classifier records the views its
adapted state was built with (``fit``, ``partial_fit``), and scoring with
others is refused: the prototypes would be of other embeddings.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .meta.algorithms import ALGORITHMS
from .meta.views import TURNS, RowViews, shift_offsets

__all__ = ["check_views", "check_views_unchanged", "test_time_views"]


def test_time_views(estimator, adapting: bool = True) -> list | RowViews | None:
    """The views of `estimator`'s ``test_time_shifts`` and
    ``test_time_turns`` for its fitted ``meta_model_`` (:func:`check_views`);
    ``ValueError`` naming the parameter when they cannot apply.

    Parameters
    ----------
    estimator : FewShotClassifier, FewShotRegressor or MetaFeatureExtractor
        With ``meta_model_`` set.
    adapting : bool, default=True
        Whether the views serve the method's adaptation and prediction (a
        classifier or regressor) or only ``transform`` (an extractor), which
        any method's embedding takes.
    """
    model = estimator.meta_model_
    embeds_only = not adapting or getattr(estimator, "_transducer", None) is not None
    return check_views(
        estimator.test_time_shifts,
        getattr(estimator, "test_time_turns", False),
        model.input_shape,
        None if embeds_only else estimator._algorithm(),  # with fit's settings
    )


test_time_views.__test__ = False  # a library function, not a pytest test


def check_views(shifts, turns, input_shape, method=None) -> list | RowViews | None:
    """The views of `shifts` (``test_time_shifts``) and `turns`
    (``test_time_turns``) for rows of `input_shape`, served by the algorithm
    class or instance `method` (None: embeddings alone, as ``transform``
    and the transductive methods take them): None, a list of offsets ``(dy, dx)``
    (shifts alone) or a :class:`~skmeta.meta.views.RowViews` (with turns).
    ``ValueError`` naming the parameter when they cannot apply; ``fit`` calls
    it before meta-training too, so that a bad value fails at once."""
    if isinstance(turns, np.bool_):
        turns = bool(turns)  # as scikit-learn's "boolean" constraint takes it
    if not isinstance(turns, bool) and not (isinstance(turns, str) and turns in TURNS):
        raise ValueError(
            "test_time_turns must be True, False, 'rot90' or 'dihedral', got "
            f"{turns!r}."
        )
    offsets = _check_shifts(shifts, input_shape, method)
    if turns is False:
        return offsets
    shape = _check_image_rows("test_time_turns", input_shape, method)
    if shape[1] != shape[2]:
        raise ValueError(
            f"test_time_turns turns images by quarter turns, which needs square "
            f"images; input_shape={tuple(input_shape)}."
        )
    if method is not None and not isinstance(method, type):
        if method.fixed_embedding_width:
            raise ValueError(
                f"test_time_turns widens the embedding 4 or 8 times, but "
                f"method={method.name!r} adapts with weights or a setting "
                "sized by the embedding, or reads its layout (e.g. "
                "feature_norm='cl2n', full_context=True, FEAT's attention, the "
                "relation module, FRN's feature map); leave test_time_turns=False "
                "for it."
            )
    turns = "rot90" if turns is True else turns
    return RowViews(tuple(offsets or [(0, 0)]), turns)


def _check_image_rows(name: str, input_shape, method) -> tuple:
    """`input_shape` as ``(C, H, W)``, and `method` classifying embeddings."""
    shape = tuple(input_shape or ())
    if len(shape) != 3:
        raise ValueError(
            f"{name} transforms images, but the rows have input_shape="
            f"{input_shape}; set input_shape=(C, H, W) for image rows."
        )
    if method is not None and not method.classifies_embeddings:
        serving = [n for n, cls in ALGORITHMS.items() if cls.classifies_embeddings]
        raise ValueError(
            f"{name} applies to the methods that classify embeddings "
            f"({', '.join(serving)}) and to every transductive method; "
            f"method={method.name!r} adapts the network's layers itself."
        )
    return shape


def _check_shifts(shifts, input_shape, method) -> list | None:
    """Offsets of `shifts` (``test_time_shifts``), or None."""
    if shifts is None:
        return None
    name = "test_time_shifts"
    if isinstance(shifts, (str, bytes)) or not hasattr(shifts, "__iter__"):
        raise ValueError(f"{name} must be a sequence of ints or None, got {shifts!r}.")
    shifts = list(shifts)
    if not shifts or not all(
        isinstance(d, Integral) and not isinstance(d, bool) and d >= 1 for d in shifts
    ):
        raise ValueError(
            f"{name} must hold one or more ints >= 1 (pixels), got {shifts!r}."
        )
    shape = _check_image_rows(name, input_shape, method)
    if max(shifts) >= min(shape[1:]):
        raise ValueError(
            f"{name}={shifts!r}: a shift must be smaller than the images "
            f"({shape[1]}x{shape[2]})."
        )
    return shift_offsets(sorted(set(int(d) for d in shifts)))


def check_views_unchanged(estimator, views) -> None:
    """Refuse to score with other views than ``fit`` adapted with."""
    fitted = getattr(estimator, "_fitted_views", None)
    if views != fitted:
        raise ValueError(
            "test_time_shifts or test_time_turns changed since fit (the adapted "
            "state was built with other views of the support rows); call fit "
            "again."
        )
