"""Inference with a MetaModel: embedding rows in cache-sized chunks, and the
bridge from NumPy arrays to a method's ``adapt`` / ``predict``.

The only place besides the training loop where arrays become tensors.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

from .accel.fusion import FusedCalls
from .algorithms import AdaptationDiverged, AdaptationWarning, Algorithm, map_tensors
from .caller import user_stacklevel
from .net import MetaNet, widest_activations
from .target_scaling import scale_targets, unscale_outputs
from .views import embedding_blocks, viewed

__all__ = [
    "CONVERT_FLOATS",
    "adapt",
    "all_finite",
    "check_finite",
    "check_finite_outputs",
    "deployed_network",
    "float_rows",
    "inference_batch_size",
    "predict",
    "row_blocks",
    "transduce",
    "transductive_predict",
    "transform",
]


# On a CPU, inference runs fastest when a chunk's activations stay cache-sized.
# Measured here (2,000 rows, bare forward, interleaved rounds): Conv4 is flat
# from 25 to 100 rows per chunk and 40% slower from 150; strided Conv4 is best
# at 50-100 and 60% slower at 150; the default MLP (784-256-256-64) is flat from
# 300 to 1,000 rows and 15% slower at 2,000, where a 256-wide layer's output
# (2 MB) no longer fits in the 2 MiB L2 cache. So: at most 1.25 million floats
# (5 MB) in the widest activation of any layer, and at most 262,144 (1 MB) in the
# widest output of a dense layer (2-D outputs, which matrix products block in
# cache): 24, 99 and 1,024 rows for those three networks.
_CPU_CHUNK_FLOATS = 1_250_000
_CPU_CHUNK_DENSE_FLOATS = 262_144
_GPU_CHUNK_FLOATS = 1 << 28  # 1 GiB of float32

# Rows of another dtype than float32 (uint8 images, float64, memory maps) are
# converted a block at a time, at most this many float32 values (64 MiB) per
# block, so that embedding, adapting to or predicting a data set kept on disk
# never copies all of it. float32 arrays within one block take one pass, as
# before.
CONVERT_FLOATS = 1 << 24


def row_blocks(X: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of the row blocks of `X` (n_samples, n_features) that
    are converted to float32 one at a time (:data:`CONVERT_FLOATS`): one
    block for a float32 array, however large (nothing to convert)."""
    n_rows = X.shape[0]
    if X.dtype == np.float32:
        return [(0, n_rows)]
    rows = max(1, CONVERT_FLOATS // max(1, X.shape[1]))
    return [(start, min(start + rows, n_rows)) for start in range(0, n_rows, rows)]


def float_rows(X: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of `X` as a writable C-contiguous float32 array
    (torch needs it writable); no copy for such an array."""
    return np.require(X[start:stop], dtype=np.float32, requirements=["C", "W"])


# At most this many values, NumPy's element-wise test decides finiteness: a
# torch call costs about 8 us before any work (a third of an MLP's forward
# pass on one row), and NumPy's test is as fast up to about 100 x 784 floats.
_SMALL_FLOATS = 1 << 16


def all_finite(X: np.ndarray) -> bool:
    """Whether the float array `X` holds no NaN or infinity.

    Small arrays (:data:`_SMALL_FLOATS`): NumPy's element-wise test. Larger:
    one sum first (torch's float32 sum is vectorised and threaded: 44 us for
    2,000 x 784 here, against 240 us for NumPy's, which scikit-learn's check
    uses); only if it is not finite (or overflowed), the element-wise test.
    Arrays torch cannot share without a copy or a warning (negative strides,
    read-only memory) take NumPy's test whatever their size.
    """
    if X.size <= _SMALL_FLOATS or not _shareable(X):
        return bool(np.isfinite(X).all())
    values = torch.from_numpy(X)
    return bool(torch.isfinite(values.sum()) or torch.isfinite(values).all())


def _shareable(X: np.ndarray) -> bool:
    """Whether ``torch.from_numpy(X)`` shares `X` quietly: no negative
    stride (refused) and writable memory (else torch warns)."""
    return X.flags.writeable and all(stride >= 0 for stride in X.strides)


def check_finite(X: np.ndarray, first_row: int = 0) -> None:
    """Raise ValueError when `X` holds NaN or infinity (:func:`all_finite`);
    the error names the row, counted from `first_row` (`X` may be a block of
    a larger array)."""
    if all_finite(X):
        return
    bad_rows = ~np.isfinite(X).reshape(len(X), -1).all(axis=1)
    bad = first_row + int(np.flatnonzero(bad_rows)[0])
    raise ValueError(
        f"Input X contains NaN or infinity (first at row {bad}); remove or "
        "impute those values first, e.g. with sklearn.impute.SimpleImputer."
    )


def inference_batch_size(net: MetaNet, device: torch.device) -> int:
    """Rows per forward pass at inference for `net` on `device`.

    CPU: as many rows as keep the widest activation within 5 MB and the widest
    dense-layer output within 1 MB (between 16 and 8,192 rows); GPU: as many
    as keep the widest activation within 1 GiB (between 16 and 4,096 rows: a
    Conv4's at 84x84 took 6.9 GiB at 4,096).
    """
    widest, dense = widest_activations(net)
    if device.type != "cpu":
        return int(np.clip(_GPU_CHUNK_FLOATS // widest, 16, 4096))
    rows = min(_CPU_CHUNK_FLOATS // widest, _CPU_CHUNK_DENSE_FLOATS // dense)
    return int(np.clip(rows, 16, 8192))


def _viewed(model, net, views):
    """`net` embedding the `views` of each row (:func:`.views.viewed`)."""
    return viewed(net, model.input_shape, views)


def deployed_network(model, algorithm: Algorithm, device):
    """The network `algorithm` adapts and predicts with: for a method that
    only embeds whole rows (``classifies_embeddings``), the calls run the
    inference copy ``transform`` runs."""
    net = model.network(device)
    if algorithm.classifies_embeddings:
        fast = model.inference_network(device)
        if fast is not net:
            return FusedCalls(net, fast)
    return net


def transform(
    model,
    X: np.ndarray,
    device: torch.device,
    batch_size: int | None = None,
    check_finite_rows: bool = False,
    views=None,
) -> np.ndarray:
    """Embed rows with `model` (see :meth:`MetaModel.transform`); rows of
    another dtype than float32 are converted a block at a time
    (:func:`row_blocks`). `views`: those of :func:`.views.viewed`
    (test-time augmentation); None: the rows alone."""
    net = _viewed(model, model.inference_network(device), views)
    batch_size = batch_size or model.batch_size(device)
    width = embedding_blocks(views) * model.embedding_dim
    out = np.empty((X.shape[0], width), dtype=np.float32)
    for first, last in row_blocks(X):
        block = float_rows(X, first, last)
        if check_finite_rows and X.dtype.kind == "f":
            check_finite(block, first)
        with torch.inference_mode():
            for start in range(0, block.shape[0], batch_size):
                chunk = torch.from_numpy(block[start : start + batch_size])
                rows = slice(first + start, first + start + chunk.shape[0])
                out[rows] = net(chunk.to(device)).cpu().numpy()
        block = chunk = None  # freed before the next block: one at a time
    return out


def warn_if_beyond_training(model, algorithm: Algorithm, n_support: int) -> None:
    """An ``AdaptationWarning`` when a sequence learner (its
    ``support_length_bound``) gets a support set far longer than those of its
    meta-training episodes, where its predictions may collapse."""
    bound, training = algorithm.support_length_bound, model.config.get("training")
    if bound is None or not training or not training.get("k_shot"):
        return
    trained = training["n_way"] * training["k_shot"]
    if n_support > bound * trained:
        warnings.warn(
            f"The support set has {n_support} rows, more than {bound:g} times the "
            f"{trained} of this {model.method!r} model's meta-training episodes "
            f"({training['n_way']}-way {training['k_shot']}-shot): it reads longer "
            "sequences than it learnt to, and its predictions may collapse to "
            "few classes. Adapt to support sets of about its episodes' size, or "
            "meta-train it with a larger k_shot.",
            AdaptationWarning,
            stacklevel=user_stacklevel(),
        )


def adapt(
    model, algorithm: Algorithm, X, y, n_classes: int, device, views=None
) -> dict:
    """Adapt `algorithm` on `model`'s network to a support set of arrays; the
    state comes back as CPU tensors (see :meth:`MetaModel.adapt`). `views`
    as for :func:`transform`, for a method that ``classifies_embeddings``.

    A method that adds rows to its state (``update``: ProtoNet and its
    family, whose state is per-class sums) takes rows of another dtype than
    float32 a block at a time (:func:`row_blocks`), the same state to float
    rounding; the others take the support set as one float32 tensor.
    """
    warn_if_beyond_training(model, algorithm, len(X))
    if algorithm.regression:  # standardised as meta-training's were
        y = scale_targets(model.config.get("target_scaling"), y)
    net = _viewed(model, deployed_network(model, algorithm, device), views)
    batch_size = model.batch_size(device)
    blocks = row_blocks(X)
    with failed_solves_refused(algorithm):
        state = _adapted(algorithm, net, X, y, n_classes, device, batch_size, blocks)
    return map_tensors(lambda t: t.detach().cpu(), state)


@contextlib.contextmanager
def failed_solves_refused(algorithm: Algorithm):
    """A linear solve that failed (a matrix singular in float32: support
    embeddings so large that a ridge or SVM head's regulariser vanishes
    beside them) raised as :class:`AdaptationDiverged`, not torch's error."""
    try:
        yield
    except torch.linalg.LinAlgError as exc:
        raise AdaptationDiverged(
            f"Adaptation failed: {algorithm.name}'s linear solve on the support "
            f"set's embeddings failed ({exc}). The embeddings are likely of a far "
            "larger scale than those of the rows the model was trained on: "
            "rescale X (e.g. with StandardScaler) as the model's training rows "
            "were."
        ) from exc


def _adapted(algorithm, net, X, y, n_classes, device, batch_size, blocks) -> dict:
    """The state of :func:`adapt`, its rows a block at a time where the
    method takes them so."""
    if len(blocks) > 1 and hasattr(algorithm, "update"):
        state, positions = None, None
        for first, last in blocks:
            state = algorithm.update(
                net,
                state,
                positions,
                torch.from_numpy(float_rows(X, first, last)).to(device),
                torch.tensor(y[first:last], device=device),
                n_classes,
                batch_size,
            )
            positions = torch.arange(n_classes, device=device)
        return state
    return algorithm.adapt(
        net,
        torch.tensor(np.asarray(X, dtype=np.float32), device=device),
        torch.tensor(y, device=device),
        n_classes,
        batch_size,
    )


def predict(
    model, algorithm: Algorithm, state: dict, X, device, views=None
) -> np.ndarray:
    """Outputs of an adapted `state` for query rows (see
    :meth:`MetaModel.predict`); rows of another dtype than float32 are
    converted a block at a time (:func:`row_blocks`: each row's outputs
    depend on that row alone). `views` as for :func:`adapt`."""
    state = map_tensors(lambda t: t.to(device), state)
    net = _viewed(model, deployed_network(model, algorithm, device), views)
    batch_size = model.batch_size(device)
    outputs = []
    with torch.inference_mode():
        for first, last in row_blocks(X):
            block = torch.from_numpy(float_rows(X, first, last)).to(device)
            with failed_solves_refused(algorithm):
                out = algorithm.predict(net, state, block, batch_size)
            outputs.append(out.float().cpu().numpy())
            block = out = None  # freed before the next block: one at a time
    outputs = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
    if algorithm.regression:  # in the targets' own units
        outputs = unscale_outputs(model.config.get("target_scaling"), outputs)
    check_finite_outputs(outputs)
    return outputs


def check_finite_outputs(outputs: np.ndarray) -> None:
    """Refuse float32 outputs that are NaN or infinite (scores of float64
    distances beyond float32's range, say): a softmax of them is NaN, and
    the argmax of a row of equal infinities is its first class, an answer
    that means nothing."""
    finite = np.isfinite(outputs)
    if finite.all():
        return
    row = int(np.nonzero(~finite)[0][0])
    raise ValueError(
        f"The model's outputs for row {row} of X are not finite "
        f"({outputs[row].ravel()[~finite[row].ravel()][0]}): they overflow the "
        "float32 the network computes in, as for rows, or a support set, of a "
        "far larger scale than the rows the model was trained on. Rescale X "
        "(e.g. with StandardScaler) as the model's training rows were."
    )


def transduce(model, method, X, codes, n_classes: int, device, views=None):
    """Run a transductive `method` (``skmeta.meta.transductive``) on the
    embeddings of rows `X` (averaged over `views`, as :func:`transform`):
    labelled where `codes` >= 0, unlabelled where -1.

    Returns
    -------
    state : dict
        The method's state, as CPU tensors.
    inferred : ndarray of shape (n_unlabelled,), int
        The class code the method gives each unlabelled row.
    """
    extra = {}
    if method.needs_base_mean:
        extra["base_mean"] = _base_mean(model, device)
    embeddings = torch.from_numpy(transform(model, X, device, views=views))
    codes = np.asarray(codes)
    unlabelled = codes < 0
    state = method.fit(
        embeddings[~unlabelled],
        torch.from_numpy(codes[~unlabelled]).long(),
        embeddings[unlabelled],
        n_classes,
        **extra,
    )
    state = map_tensors(lambda t: t.detach().cpu(), state)
    return state, state["unlabelled_scores"].argmax(1).numpy()


def _base_mean(model, device) -> torch.Tensor:
    """The base classes' mean embedding a model stores, shape (dim,), on the
    CPU, for a transductive method centred on it."""
    extra = model.network(device).extra
    if "base_mean" not in extra:
        raise ValueError(
            "transductive_params={'center': 'base'} centres the embeddings on "
            "the base classes' mean embedding, which this model does not hold: "
            "it was saved before skmeta kept that mean, wrapped with "
            "MetaModel.from_module, or meta-trained with a method that does "
            "not keep it (protonet, pretrain, baseline++ and rfs do). Use "
            "center='task'."
        )
    return extra["base_mean"].detach().cpu()


def transductive_predict(
    model, method, state: dict, X, device, views=None
) -> np.ndarray:
    """Class scores ``(n_samples, n_classes)``, float32, of rows `X` with a
    fitted transductive `state` (see :func:`transduce`)."""
    embeddings = torch.from_numpy(transform(model, X, device, views=views))
    scores = method.predict(state, embeddings).float().numpy()
    check_finite_outputs(scores)
    return scores
