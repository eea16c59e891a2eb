"""What the test-time augmentation tests share: pixel shifts in NumPy alone,
to check skmeta's torch ones against, and the check that a transductive
classifier labelled the rows as its method does on given embeddings."""

import numpy as np
import torch

from skmeta.meta.transductive import make_transductive


def numpy_shift(X, dy, dx):
    """Rows of 1x12x12 images (the `images` fixture's) shifted by (dy, dx),
    edges replicated: NumPy's own padding, independent of skmeta's."""
    pad = max(abs(dy), abs(dx), 1)
    images = np.pad(X.reshape(-1, 12, 12), ((0, 0), (pad, pad), (pad, pad)), "edge")
    top, left = pad - dy, pad - dx
    return images[:, top : top + 12, left : left + 12].reshape(len(X), -1)


def assert_transduces_as(clf, method, embeddings, labels, n_classes=10):
    """`clf`'s fitted unlabelled scores are `method`'s on `embeddings` (rows
    of X as the test computed them), with `labels` (-1: unlabelled)."""
    emb = torch.from_numpy(embeddings)
    known = labels >= 0
    state = make_transductive(method).fit(
        emb[known], torch.from_numpy(labels[known]), emb[~known], n_classes
    )
    np.testing.assert_allclose(
        clf.adapted_["unlabelled_scores"].numpy(),
        state["unlabelled_scores"].numpy(),
        rtol=1e-4,
        atol=1e-4,
    )
    return state
