"""Image folders as the command line decodes them (0-255 ``uint8`` rows) put
on the pixel range of the model they are given.

A model meta-trained in Python on [0, 1] rows (``load_omniglot``'s,
``make_glyphs``') takes the rows divided by 255. The commands that go through
a folder row by row (``embed``, ``predict``'s queries) convert a block of
rows at a time: a float32 copy of a whole folder takes four times its bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .meta.input_normalization import expected_pixel_range

__all__ = ["BLOCK_ROWS", "by_blocks", "on_model_range"]

#: Rows converted to float32 at a time by :func:`by_blocks`.
BLOCK_ROWS = 4096


def on_model_range(model, X: np.ndarray) -> np.ndarray:
    """`X` as `model` takes it.

    Parameters
    ----------
    model : MetaModel
    X : ndarray of shape (n_samples, n_features)
        Rows decoded from an image folder: ``uint8``, 0-255.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        float32 rows divided by 255 for a model of [0, 1] image rows; `X`
        itself otherwise.
    """
    if not _divides(model, X):
        return X
    return X.astype(np.float32) / np.float32(255)


def _divides(model, X: np.ndarray) -> bool:
    return X.dtype == np.uint8 and expected_pixel_range(model.config) == 1.0


def by_blocks(fn: Callable, model, X: np.ndarray, rows: int = BLOCK_ROWS):
    """``fn`` of `X`'s rows on `model`'s range, `rows` rows at a time.

    Parameters
    ----------
    fn : callable
        Takes rows of shape (n, n_features) and returns an array of n rows
        (e.g. ``transform``, ``predict``, ``predict_proba``).
    model : MetaModel
    X : ndarray of shape (n_samples, n_features)
    rows : int, default=BLOCK_ROWS

    Returns
    -------
    ndarray of shape (n_samples, ...)
        ``fn``'s results, stacked; ``fn(X)`` in one call when `X` needs no
        conversion.
    """
    if not _divides(model, X) or len(X) <= rows:
        return fn(on_model_range(model, X))
    return np.concatenate(
        [
            fn(on_model_range(model, X[start : start + rows]))
            for start in range(0, len(X), rows)
        ]
    )
