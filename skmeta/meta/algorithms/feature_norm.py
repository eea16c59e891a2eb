"""Feature normalisation for prototype methods (SimpleShot, Wang et al. 2019).

``"l2"`` divides each embedding by its Euclidean norm; ``"cl2n"`` first
subtracts the mean embedding of the base classes (the meta-training classes),
then divides by the norm. Applied to support and query embeddings alike, before
the prototypes and distances. The base-class mean is computed at the end of
meta-training (:func:`base_class_mean`) and kept with the model as the tensor
``net.extra["base_mean"]`` (state-dict key ``"extra.base_mean"``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..._tqdm_streams import tqdm_options

__all__ = [
    "BASE_MEAN",
    "FEATURE_NORMS",
    "base_class_mean",
    "check_feature_norm",
    "normalize_features",
    "stored_base_mean",
]

FEATURE_NORMS = (None, "l2", "cl2n")
BASE_MEAN = "base_mean"  # key in MetaNet.extra
# Rows of the base classes embedded for their mean: a thousand put each
# coordinate within 3% of the embeddings' spread, far closer than CL2N needs,
# at a fraction of a pass. (4,096 cost a ResNet-12 on 84 px photos about 5
# silent minutes on 2 CPU cores after meta-training: a reviewer.)
BASE_MEAN_ROWS = 1024


def check_feature_norm(feature_norm) -> None:
    """Raise ValueError unless `feature_norm` is None, "l2" or "cl2n"."""
    if not isinstance(feature_norm, str | None) or feature_norm not in FEATURE_NORMS:
        raise ValueError(
            f"feature_norm must be one of {FEATURE_NORMS}, got {feature_norm!r}."
        )


def normalize_features(
    embeddings: torch.Tensor,
    feature_norm: str | None,
    base_mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Embeddings normalised as `feature_norm` says.

    Parameters
    ----------
    embeddings : Tensor of shape (..., dim)
    feature_norm : {None, "l2", "cl2n"}
        None: unchanged. ``"l2"``: ``x / ||x||``. ``"cl2n"``:
        ``(x - base_mean) / ||x - base_mean||``.
    base_mean : Tensor of shape (dim,), optional
        Required for ``"cl2n"``.

    Returns
    -------
    Tensor of shape (..., dim), the dtype of `embeddings`
    """
    if feature_norm is None:
        return embeddings
    if feature_norm == "cl2n":
        if base_mean is None:
            raise ValueError("feature_norm='cl2n' needs base_mean.")
        embeddings = embeddings - base_mean.to(embeddings.dtype)
    return F.normalize(embeddings, dim=-1)


def stored_base_mean(net) -> torch.Tensor:
    """The base-class mean kept in ``net.extra``, or a ValueError that says
    how to get one.

    Parameters
    ----------
    net : MetaNet

    Returns
    -------
    Tensor of shape (embedding_dim,)
    """
    if BASE_MEAN not in net.extra:
        raise ValueError(
            "feature_norm='cl2n' centres embeddings on the mean embedding of "
            "the base classes, which this model does not hold: it was saved "
            "before skmeta kept that mean, wrapped with MetaModel.from_module, "
            "or meta-trained with a method that does not keep it. Use "
            "feature_norm='l2', or meta-train the model anew."
        )
    return net.extra[BASE_MEAN]


@torch.no_grad()
def base_class_mean(
    net,
    rows,
    row_numbers: np.ndarray,
    rng: np.random.Generator,
    max_rows: int = BASE_MEAN_ROWS,
    batch_size: int = 256,
    verbose: bool = False,
) -> torch.Tensor:
    """Mean embedding of (a sample of) the base classes' rows.

    The network runs in eval mode (batch norm with its running statistics, as
    deployed); its mode is restored afterwards.

    Parameters
    ----------
    net : MetaNet
    rows : Rows
        The training data, read by index (:meth:`~skmeta.meta.rows.Rows.gather`,
        without augmentation): a memory map stays on disk.
    row_numbers : ndarray of int, shape (n,)
        The base classes' rows (real rows: not rotated).
    rng : numpy.random.Generator
        Draws the sample when there are more than `max_rows` rows.
    max_rows : int, default=1024
    batch_size : int, default=256
        Rows per forward pass.
    verbose : bool, default=False
        A progress bar over the batches (meta-training's `verbose`), shown
        once the pass has taken a second.

    Returns
    -------
    Tensor of shape (embedding_dim,), float32, on the network's device
    """
    chosen = np.asarray(row_numbers, dtype=np.int64)
    if chosen.size == 0:
        raise ValueError("base_class_mean needs at least one row.")
    if chosen.size > max_rows:
        chosen = rng.choice(chosen, size=max_rows, replace=False)
    chosen = np.sort(chosen)
    was_training = net.training
    net.eval()
    try:
        total = None
        starts = range(0, chosen.size, batch_size)
        bar = tqdm(  # shown only if it takes over a second: most passes do not
            starts,
            desc="base-class mean",
            leave=False,
            disable=not verbose,
            delay=1,
            **tqdm_options(),  # few lines in a log file
        )
        for start in bar:
            batch = rows.gather(chosen[start : start + batch_size], augment=False)
            part = net(batch).double().sum(0)
            total = part if total is None else total + part
    finally:
        net.train(was_training)
    return (total / chosen.size).float()
