"""Pixel operations in NumPy alone, to check skmeta's torch ones against."""

import numpy as np


def numpy_shift(X, dy, dx):
    """Rows of 1x12x12 images (the `images` fixture's) shifted by (dy, dx),
    edges replicated: NumPy's own padding, independent of skmeta's."""
    pad = max(abs(dy), abs(dx), 1)
    images = np.pad(X.reshape(-1, 12, 12), ((0, 0), (pad, pad), (pad, pad)), "edge")
    top, left = pad - dy, pad - dx
    return images[:, top : top + 12, left : left + 12].reshape(len(X), -1)
