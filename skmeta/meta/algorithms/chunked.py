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

With a support set larger than the method's ``inner_batch_size`` (by default
"auto": :func:`auto_batch_rows`), each step instead runs on a mini-batch of
at most that many rows (:func:`minibatch_rows`, each class in its share
of the rows), with that mini-batch's statistics (where the body adapts;
ANIL's steps take the whole set's embeddings): stochastic steps whose cost is
linear in the mini-batch, not in the support set. The head starts, and the
statistics kept for prediction are found, on the whole support set.
"""

from __future__ import annotations

import torch

from ..functional import embed, embed_once, support_statistics
from ..net import MetaNet, widest_activations

__all__ = [
    "AUTO_INNER_BATCH_ROWS",
    "AUTO_WHOLE_SET_ROWS",
    "adapt_chunk_rows",
    "auto_batch_rows",
    "chunked_inner_loop",
    "gradient_chunk_rows",
    "minibatch_rows",
]

# ``inner_batch_size="auto"`` (the default): whole-set steps on a support set
# of up to AUTO_WHOLE_SET_ROWS rows, mini-batches of at most
# AUTO_INNER_BATCH_ROWS on a larger one. Mini-batch steps cost accuracy on
# mid-sized supports (30-way 10-shot Omniglot, 300 rows: several points),
# and whole-set steps cost time linear in the rows (ten steps on 1,000 rows
# of the Conv4 on 28x28 images: about 9 s on this 2-core machine, quiet;
# 18.5 s on 2,000), so mini-batches only where the time would pass 10 s.
# 400-row mini-batches cost 0.8 +- 0.9 points of held-out accuracy on 100-way
# 16-shot supports (benchmarks/results/adapt_memory.md).
AUTO_WHOLE_SET_ROWS = 1000
AUTO_INNER_BATCH_ROWS = 400


def auto_batch_rows(n_rows: int) -> int | None:
    """Rows per adaptation step of ``inner_batch_size="auto"`` on a support
    set of `n_rows` rows: None (the whole set) up to
    :data:`AUTO_WHOLE_SET_ROWS`, :data:`AUTO_INNER_BATCH_ROWS` beyond."""
    return None if n_rows <= AUTO_WHOLE_SET_ROWS else AUTO_INNER_BATCH_ROWS


# Seed of the mini-batch order: adaptation is a function of the support set
# (the same fit gives the same model, whatever the global RNG).
MINIBATCH_SEED = 0

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


def minibatch_rows(
    n_rows: int, batch_rows: int, n_steps: int, labels: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Row indices of each inner step's mini-batch.

    Epochs of seeded random orders (:data:`MINIBATCH_SEED`), each cut into
    ``ceil(n_rows / batch_rows)`` mini-batches of near-equal sizes (at most
    `batch_rows`, differing by one at most): every row is used once per
    epoch, and no mini-batch holds a row twice. (Mini-batches that ran on
    across epochs, as a stream, held up to ``n_steps`` repeated rows: on
    30-way 10-shot Omniglot support sets, 299-row mini-batches of 300 rows
    cut that way lost 16 points of held-out accuracy on a draw where fresh
    299-row subsets lost none.) Given class `labels`, each epoch's order
    interleaves the classes (:func:`_stratified_order`), so that every
    mini-batch holds each class in its share of the rows: on 100-way 16-shot
    Omniglot support sets, plain random mini-batches of 200 rows lost half
    the accuracy of whole-set steps and class-balanced ones none
    (``benchmarks/adapt_memory.py large``).

    Parameters
    ----------
    n_rows : int
        Rows of the support set.
    batch_rows : int
        Rows per mini-batch at most, less than `n_rows`.
    n_steps : int
        Inner steps.
    labels : Tensor of shape (n_rows,), optional
        Class codes ``0..n_classes-1``; None (regression) orders the rows
        at random.

    Returns
    -------
    list of Tensor
        `n_steps` int64 tensors on the CPU, each of shape (rows,), ``rows``
        being ``n_rows // ceil(n_rows / batch_rows)`` or one more.
    """
    generator = torch.Generator().manual_seed(MINIBATCH_SEED)
    per_epoch = -(-n_rows // batch_rows)  # ceiling division
    if labels is not None:
        labels = labels.detach().to("cpu", torch.int64)
    batches: list[torch.Tensor] = []
    while len(batches) < n_steps:
        order = (
            torch.randperm(n_rows, generator=generator)
            if labels is None
            else _stratified_order(labels, generator)
        )
        batches.extend(torch.tensor_split(order, per_epoch))
    return batches[:n_steps]


def _stratified_order(labels: torch.Tensor, generator) -> torch.Tensor:
    """A random order of the rows that spreads each class evenly: the rows of
    a class of ``m`` rows sit at random ranks ``(i + u) / m`` (``i`` their
    place in a random order of the class, ``u`` uniform in [0, 1)), and the
    order sorts all rows by rank."""
    n = labels.numel()
    shuffled = torch.randperm(n, generator=generator)
    by_class = torch.sort(labels[shuffled], stable=True).indices
    grouped = labels[shuffled][by_class]
    counts = torch.bincount(grouped)
    starts = counts.cumsum(0) - counts
    within = torch.arange(n) - starts[grouped]
    jitter = torch.rand(n, generator=generator, dtype=torch.float64)
    rank = (within + jitter) / counts[grouped]
    return shuffled[by_class[rank.argsort()]]


def _leaves(tensors) -> list[torch.Tensor]:
    """Detached copies of `tensors` that require grad."""
    return [t.detach().requires_grad_(True) for t in tensors]


@torch.no_grad()
def _embed_rows(net, weights, x, stats, chunk_rows) -> torch.Tensor:
    """Embeddings ``(n_rows, dim)`` of `x` with given statistics, by chunks."""
    return torch.cat([embed(net, weights, p, stats)[0] for p in x.split(chunk_rows)])


def chunked_inner_loop(
    method, net, params, x, y, n_classes, chunk_rows, losses, batch_size=100,
    batches=None,
):  # fmt: skip
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
        Receives each step's support loss (a 0-d tensor) before its update:
        with `batches`, its mini-batch's, except the first step's, which is
        the whole set's (:func:`_whole_set_start_loss`).
    batch_size : int, default=100
        Rows per pass without gradient (statistics, embeddings), at most
        `chunk_rows`: the inference chunk, cache-sized (24 rows for the Conv4
        on 28x28 images took 3.0 s where 160 took 4.2 s for the statistics).
    batches : list of Tensor, optional
        Each step's rows (:func:`minibatch_rows`), one per inner step: that
        step's loss and gradient are those of its rows, and so are the batch
        statistics when the body adapts (a body that does not, as ANIL's,
        keeps the whole set's embeddings). None: every step takes all rows.

    Returns
    -------
    state : dict
        One task's ``weights`` (name to parameter-shaped tensor),
        ``head_weight`` ``(ways, dim)``, ``head_bias`` ``(ways,)`` and
        ``stats`` (per task batch norm, ``(channels,)`` each), detached.
    """
    pass_rows = min(batch_size, chunk_rows)
    weights = dict(method.inner_parameters(net, params))
    stats = None  # mini-batch steps of an adapting body find their own
    if batches is None or not weights or method.head_from_support:
        stats = support_statistics(net, weights, x, pass_rows)
    if weights and not method.head_from_support:
        # each step embeds its rows anew, and the head does not read them
        emb = x.new_zeros(x.shape[0], 0)
    else:
        emb = _embed_rows(net, weights, x, stats, pass_rows)
    head = method.initial_head(params, emb.unsqueeze(0), y, n_classes)
    head_w, head_b = _leaves(head)
    start = None
    if batches is not None:
        start = _whole_set_start_loss(method, net, weights, x, y, emb, head, pass_rows)
    for step in range(method.inner_steps):
        rows = None if batches is None else batches[step].to(x.device)
        step_x = x if rows is None else x[rows]
        step_y = y if rows is None else y[..., rows]
        if weights and (step or rows is not None):
            stats = support_statistics(net, weights, step_x, pass_rows)
        step_emb = None if weights else (emb if rows is None else emb[rows])
        names = [*weights, "head_weight", "head_bias"]
        current = [*weights.values(), head_w, head_b]
        grads, total = _support_gradient(
            method, net, weights, current, step_x, step_y, stats, step_emb, chunk_rows
        )
        losses.append(start if step == 0 and start is not None else total)
        *updated, head_w, head_b = method.sgd_step(params, names, current, grads)
        # each step starts from leaves of its own: no graph across steps
        *updated, head_w, head_b = _leaves([*updated, head_w, head_b])
        weights = dict(zip(names[:-2], updated, strict=True))
    if weights and stats:  # the adapted weights' statistics (all rows), for prediction
        stats = support_statistics(net, weights, x, pass_rows)
    return {
        "weights": {k: w.detach() for k, w in weights.items()},
        "head_weight": head_w.detach()[0],
        "head_bias": head_b.detach()[0],
        "stats": stats,
    }


def _whole_set_start_loss(method, net, weights, x, y, emb, head, pass_rows):
    """The whole support set's mean loss before the first mini-batch step.

    :func:`~.divergence.check_adaptation` compares the loss after the last
    step (the whole set's) with the first one recorded, so that one must be
    the whole set's too, not the first mini-batch's. Free where the whole
    set's embeddings are at hand (`emb`, found with the whole set's
    statistics); a classification head whose class rows are all equal has
    the loss log(ways) on any rows, so the first mini-batch's loss is the
    whole set's already (None); otherwise two passes without gradient.

    Parameters
    ----------
    method, net, weights, x, y, pass_rows
        As in :func:`chunked_inner_loop`.
    emb : Tensor of shape (n_rows, dim) or (n_rows, 0)
        The whole set's embeddings, or none (no columns).
    head : tuple of Tensor
        The initial head's weight ``(1, ways, dim)`` and bias ``(1, ways)``.

    Returns
    -------
    Tensor or None
        The loss, 0-d; None where the first mini-batch's is the same.
    """
    weight, bias = head
    with torch.no_grad():
        if not emb.shape[-1]:
            equal_rows = torch.equal(weight, weight[:, :1].expand_as(weight))
            if (
                not method.regression
                and equal_rows
                and bool((bias == bias[0, 0]).all())
            ):
                return None
            stats = support_statistics(net, weights, x, pass_rows)
            emb = _embed_rows(net, weights, x, stats, pass_rows)
        outputs = torch.baddbmm(
            bias.unsqueeze(1), emb.unsqueeze(0), weight.transpose(1, 2)
        )
        return method.head.loss_sum(outputs, y)


def _support_gradient(method, net, weights, current, x, y, stats, emb, chunk_rows):
    """Gradient of the mean support loss over the rows of `x`, by chunks.

    Parameters
    ----------
    method, net
        As for :func:`chunked_inner_loop`.
    weights : dict of str to Tensor
        The adapted backbone weights (empty: the body does not adapt).
    current : list of Tensor
        The tensors differentiated: ``weights``' values, then the head's
        weight ``(1, ways, dim)`` and bias ``(1, ways)``.
    x : Tensor of shape (n_rows, n_features)
    y : Tensor of shape (n_rows,) or (1, n_rows)
    stats : list of (mean, var)
        Batch statistics, given (not differentiated).
    emb : Tensor of shape (n_rows, dim) or None
        The rows' fixed embeddings when `weights` is empty.
    chunk_rows : int

    Returns
    -------
    grads : list of Tensor
        Shaped as `current`.
    loss : Tensor
        The mean support loss, 0-d, detached.
    """
    n = x.shape[0]
    head_w, head_b = current[-2:]
    grads = [torch.zeros_like(t) for t in current]
    total = x.new_zeros(())
    for i, target in enumerate(y.split(chunk_rows, dim=-1)):
        rows = slice(i * chunk_rows, i * chunk_rows + target.shape[-1])
        part = embed_once(net, weights, x[rows], stats) if weights else emb[rows]
        outputs = torch.baddbmm(
            head_b.unsqueeze(1), part.unsqueeze(0), head_w.transpose(1, 2)
        )
        # the set's mean loss is the chunks' means weighted by rows
        loss = method.head.loss_sum(outputs, target) * (target.shape[-1] / n)
        torch._foreach_add_(grads, torch.autograd.grad(loss, current))
        total += loss.detach()
    return grads, total
