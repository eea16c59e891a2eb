"""The inner loop on a support set too large for one pass: chunks of rows.

At adaptation time (``FewShotClassifier.fit`` on a pretrained model) the
inner loop needs no second-order graph: each step only needs the gradient of
the support loss at the current weights. That gradient is a sum over rows, so
it is accumulated chunk by chunk (each chunk's loss weighted by its share of
the rows, one backward per chunk), and memory stays that of one chunk's graph.

Task batch norm (:mod:`..norm`) couples the rows: every layer normalises with
the statistics of the whole support set. Those are computed first, without
gradients, chunk by chunk and layer after layer (layer ``k``'s statistics need
the layers before it normalised with theirs: :func:`~..norm.probe_statistics`
stops each pass at layer ``k``), then every chunk runs with them *given*. So:

- values (embeddings, losses, the statistics kept for prediction) are those of
  the full batch, to float rounding;
- the gradient leaves out one term, that of the weights through the batch
  statistics (as a batch norm with fixed statistics would): the one place
  where adaptation by chunks differs from one pass over the support set.

A support set of at most :func:`adapt_chunk_rows` rows (every usual episode)
takes the one-pass inner loop, unchanged.
"""

from __future__ import annotations

import torch

from ..functional import embed, embed_once, support_statistics
from ..net import MetaNet, widest_activations

__all__ = ["adapt_chunk_rows", "chunked_inner_loop", "gradient_chunk_rows"]

# Rows per chunk: as many as keep the widest activation of one row times the
# rows within CHUNK_FLOATS (32 MiB of float32; a pass's graph keeps a few such
# activations per layer), and never fewer than MIN_CHUNK_ROWS, so that the
# episodes of meta-training and validation (20-way 5-shot is 100 rows) take
# the one-pass inner loop.
CHUNK_FLOATS = 1 << 23
MIN_CHUNK_ROWS = 128


def adapt_chunk_rows(net: MetaNet) -> int:
    """Rows per chunk of :func:`chunked_inner_loop` for `net`: 160 for the
    Conv4 on 28x28 images, 128 (the minimum) for larger images."""
    widest, _ = widest_activations(net)
    return max(MIN_CHUNK_ROWS, CHUNK_FLOATS // widest)


# Rows per forward and backward pass inside the chunked loop: fewer, so that
# the widest activation stays within GRADIENT_CHUNK_FLOATS (8 MiB of float32).
# For the Conv4 on 28x28 images one inner step over 2,000 rows took 2.65 s in
# chunks of 40 or 80 rows against 3.8 s in chunks of 160 (one thread): the
# large buffers of a 160-row pass (31 MiB each) are page-faulted afresh.
GRADIENT_CHUNK_FLOATS = 1 << 21
MIN_GRADIENT_CHUNK_ROWS = 16


def gradient_chunk_rows(net: MetaNet) -> int:
    """Rows per forward and backward pass of :func:`chunked_inner_loop` for
    `net`: 41 for the Conv4 on 28x28 images, at least 16."""
    widest, _ = widest_activations(net)
    return max(MIN_GRADIENT_CHUNK_ROWS, GRADIENT_CHUNK_FLOATS // widest)


def _leaves(tensors) -> list[torch.Tensor]:
    """Detached copies of `tensors` that require grad."""
    return [t.detach().requires_grad_(True) for t in tensors]


@torch.no_grad()
def _embed_rows(net, weights, x, stats, chunk_rows) -> torch.Tensor:
    """Embeddings ``(n_rows, dim)`` of `x` with given statistics, by chunks."""
    return torch.cat([embed(net, weights, p, stats)[0] for p in x.split(chunk_rows)])


def chunked_inner_loop(
    method, net, params, x, y, n_classes, chunk_rows, losses, batch_size=100
):
    """One task's inner loop, the support set run `chunk_rows` rows at a time.

    Parameters
    ----------
    method : InnerLoopMethod
        Its hooks (``inner_parameters``, ``initial_head``, ``sgd_step``) and
        head are used as by :meth:`~.inner_loop.InnerLoopMethod.adapt_tasks`.
    net : MetaNet
    params : dict of str to Tensor
        The network's parameters by name, leaves that require grad.
    x : Tensor of shape (n_rows, n_features)
    y : Tensor of shape (n_rows,) or (1, n_rows)
        Class codes, or regression targets with a task axis.
    n_classes : int
    chunk_rows : int
        Rows per forward and backward pass of the gradient.
    losses : list
        Receives each step's support loss (a 0-d tensor) before its update.
    batch_size : int, default=100
        Rows per pass without gradient (statistics, embeddings), at most
        `chunk_rows`: the inference chunk, cache-sized (24 rows for the Conv4
        on 28x28 images took 3.0 s where 160 took 4.2 s for the statistics).

    Returns
    -------
    state : dict
        One task's ``weights`` (name to parameter-shaped tensor),
        ``head_weight`` ``(ways, dim)``, ``head_bias`` ``(ways,)`` and
        ``stats`` (per task batch norm, ``(channels,)`` each), detached.
    """
    n, pass_rows = x.shape[0], min(batch_size, chunk_rows)
    weights = dict(method.inner_parameters(net, params))
    stats = support_statistics(net, weights, x, pass_rows)
    emb = _embed_rows(net, weights, x, stats, pass_rows)
    head = method.initial_head(params, emb.unsqueeze(0), y, n_classes)
    head_w, head_b = _leaves(head)
    targets = y.split(chunk_rows, dim=-1)
    for step in range(method.inner_steps):
        if step and weights:
            stats = support_statistics(net, weights, x, pass_rows)
        names = [*weights, "head_weight", "head_bias"]
        current = [*weights.values(), head_w, head_b]
        grads = [torch.zeros_like(t) for t in current]
        total = x.new_zeros(())
        for i, target in enumerate(targets):
            rows = slice(i * chunk_rows, i * chunk_rows + target.shape[-1])
            part = embed_once(net, weights, x[rows], stats) if weights else emb[rows]
            outputs = torch.baddbmm(
                head_b.unsqueeze(1), part.unsqueeze(0), head_w.transpose(1, 2)
            )
            # the full set's mean loss is the chunks' means weighted by rows
            loss = method.head.loss_sum(outputs, target) * (target.shape[-1] / n)
            torch._foreach_add_(grads, torch.autograd.grad(loss, current))
            total += loss.detach()
        losses.append(total)
        *updated, head_w, head_b = method.sgd_step(params, names, current, grads)
        # each step starts from leaves of its own: no graph across steps
        *updated, head_w, head_b = _leaves([*updated, head_w, head_b])
        weights = dict(zip(names[:-2], updated, strict=True))
    if weights and stats:  # the adapted weights' statistics, for prediction
        stats = support_statistics(net, weights, x, pass_rows)
    return {
        "weights": {k: w.detach() for k, w in weights.items()},
        "head_weight": head_w.detach()[0],
        "head_bias": head_b.detach()[0],
        "stats": stats,
    }
