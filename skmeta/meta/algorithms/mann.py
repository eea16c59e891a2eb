"""Memory-augmented neural network (Santoro, Bartunov, Botvinick, Wierstra &
Lillicrap, 2016, "Meta-Learning with Memory-Augmented Neural Networks").

An LSTM controller reads an episode as a sequence of ``(x_t, y_{t-1})``: the
backbone's embedding of a row with the previous row's one-hot label, so that it
learns to bind a row to its label one step later. An external memory of
``memory_slots`` rows of ``slot_width`` is accessed by least-recently-used
access (LRUA), through ``read_heads`` heads:

- read: ``w_r = softmax(beta * cos(k_t, M_t))``, ``r_t = w_r M_t`` for a key
  ``k_t`` from the controller;
- write: ``w_w = sigma(alpha) w_r(t-1) + (1 - sigma(alpha)) w_lu(t-1)``,
  between the last-read and the least-used slots (the least used slot zeroed
  first), ``M_t = M_{t-1} + w_w^T a_t``;
- usage: ``w_u = gamma w_u(t-1) + w_r + w_w``; head ``i`` writes to the
  ``i``-th least used slot (ties to the lowest slot).

The output layer maps ``[h_t, r_t]`` to one logit per way of meta-training's
episodes, so a model classifies at most that many classes.

Departures from the paper, and why:

- **Queries do not write.** An episode is its support rows (shuffled), one
  closing step that hands over the last support label, then each query row as
  one read-only step from the memory and controller state the support left.
  The paper's protocol is online: every row, query or not, is labelled at the
  next step and written into memory, so a prediction depends on the rows seen
  before it. Here a prediction depends only on the support set and that row,
  as scikit-learn's invariance checks (and users) expect; meta-training runs
  the same protocol, so what is trained is what is deployed. The loss covers
  the support steps' predictions too (each row predicted before its label is
  given, as in the paper) and the queries'.
- **Controller interface.** The controller also takes the previous reads
  ``r_{t-1}``, and writes an add vector ``a_t`` of its own rather than its key
  (as Neural Turing Machines and the public reimplementations do). Each head's
  cosines are multiplied by a strength ``beta = 1 + softplus(.)`` from the
  controller, about 11 at first (a softmax of plain cosines over 128 slots is
  nearly uniform); the LSTM's forget-gate bias starts at 1.
- **Input layer.** A layer norm (no parameters), a learnt linear map to
  ``input_width`` features (unit-scale initial weights) and a layer norm
  again, before the controller. ReLU embeddings are positive and alike; on
  such toy 5-way 5-shot episodes MANN stayed at chance (20.1%) for 600
  iterations, and learns (78.7%) with it (``benchmarks/mann_toy.py``). On
  frozen 256-d Omniglot embeddings a layer norm alone left it at chance.
- **Episode centring.** Every embedding of an episode, support and query,
  has the mean of the support's class means subtracted before the input
  layer. Frozen ProtoNet embeddings of Omniglot look alike (mean cosine about
  0.75); MANN meta-trained on them through the estimators stayed at chance
  (12,291 iterations) and learns with the centring (91.7% query accuracy
  after 2,200 iterations in an exploration; ``benchmarks/RESULTS.md``). A
  query's prediction still depends only on the support set and that query.
- **Support order.** Meta-training shuffles each episode's support rows;
  adaptation sorts the user's support rows by their values, then reads them
  in one fixed pseudo-random order (seeded) of that sorted set, so ``fit`` is
  deterministic, does not depend on the order of the rows given, and a
  class-sorted support set looks like the shuffled sequences of
  meta-training. Renaming the classes does change the predictions: the
  controller reads each support row's label code.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..net import MetaNet, embed_rows
from ..setting_checks import check_int_setting, check_real_setting
from .base import Algorithm, TaskBatch
from .lrua import lrua_read, lrua_write
from .matching import _lstm_step, _lstm_weights
from .protonet import prototypes_of_tasks

__all__ = ["MANN", "episode_centre"]

MEMORY_INIT = 1e-6  # the paper's constant initial memory
SUPPORT_ORDER_SEED = 0
STRENGTH_INIT = 10.0  # key strength's pre-activation bias at initialisation
SIZES = ("memory_slots", "slot_width", "controller_size", "read_heads", "input_width")
#: The most memory rows: 512 times the paper's 128 (each task's memory is
#: allocated at adaptation; a million rows took 3.8 GB).
MAX_MEMORY_SLOTS = 65_536


class MemoryState(NamedTuple):
    """The recurrent state after a step, batched over tasks ``T``.

    Attributes
    ----------
    memory : Tensor of shape (T, memory_slots, slot_width)
    usage : Tensor of shape (T, memory_slots)
    read_weights : Tensor of shape (T, read_heads, memory_slots)
    reads : Tensor of shape (T, read_heads * slot_width)
    h, c : Tensor of shape (T, controller_size), the controller's states
    """

    memory: torch.Tensor
    usage: torch.Tensor
    read_weights: torch.Tensor
    reads: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor


def episode_centre(
    support: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> torch.Tensor:
    """The mean of the support's class means, what an episode is centred on.

    Parameters
    ----------
    support : Tensor of shape (n_tasks, L, dim)
        Embeddings of the support rows of tasks with the same labels.
    labels : Tensor of shape (L,), int64 in ``0 .. n_classes - 1``
    n_classes : int

    Returns
    -------
    Tensor of shape (n_tasks, 1, dim)
        Classes with no row are left out; a class with many rows weighs as
        much as one with a single row.
    """
    present = torch.bincount(labels, minlength=n_classes) > 0
    means = prototypes_of_tasks(support, labels, n_classes)[:, present]
    return means.mean(1, keepdim=True)


def canonical_order(rows: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Indices that sort support rows by their values (first feature first,
    then the next...; the label last, for identical rows): one order for any
    order of the same rows, so that MANN's adaptation, which reads the support
    set as a sequence, does not depend on the order the user gave."""
    flat = rows.detach().reshape(rows.shape[0], -1).double().cpu().numpy()
    keys = (labels.detach().cpu().numpy(), *flat.T[::-1])
    return torch.from_numpy(np.lexsort(keys))  # the last key sorts first


class MANN(Algorithm):
    """Memory-augmented neural network with LRUA memory access.

    Parameters
    ----------
    memory_slots : int, default=128
        Rows of the external memory.
    slot_width : int, default=40
        Width of a memory row (and of keys and written vectors).
    controller_size : int, default=200
        Hidden units of the LSTM controller.
    read_heads : int, default=4
        Read (and write) heads.
    usage_decay : float, default=0.95
        ``gamma``, how fast a slot's usage fades, in (0, 1].
    input_width : int, default=64
        Features the embedding is mapped to before the controller.
    """

    name = "mann"
    summary = (
        "memory-augmented network: LSTM controller with LRUA external memory "
        "(at most meta-training's n_way classes)"
    )
    settings = SIZES + ("usage_decay",)
    fixed_way = True
    # meta-trained on 3-way 1-shot blobs: 60-63% at 1-10 shots a class, 37% at
    # 20 and chance from 50 (one class predicted); choosing.rst
    support_length_bound = 10

    def __init__(
        self,
        memory_slots: int = 128,
        slot_width: int = 40,
        controller_size: int = 200,
        read_heads: int = 4,
        usage_decay: float = 0.95,
        input_width: int = 64,
    ) -> None:
        sizes = (memory_slots, slot_width, controller_size, read_heads, input_width)
        for name, value in zip(SIZES, sizes, strict=True):
            # the others are weights' sizes, which a model file's must fit
            most = MAX_MEMORY_SLOTS if name == "memory_slots" else None
            setattr(self, name, check_int_setting(name, value, maximum=most))
        if self.read_heads > self.memory_slots:
            raise ValueError(
                f"read_heads={read_heads} exceeds memory_slots={memory_slots}: "
                "each head writes to a least used slot of its own."
            )
        self.usage_decay = check_real_setting("usage_decay", usage_decay, maximum=1.0)

    def meta_parameters(self, net, embedding_dim, n_classes):
        # n_classes is meta-training's n_way (fixed_way): the output width
        heads, width, size = self.read_heads, self.slot_width, self.controller_size
        n_in = self.input_width + n_classes + heads * width
        projection = torch.randn(self.input_width, embedding_dim)  # see Input layer
        interface = torch.nn.Linear(size, heads * (2 * width + 2))
        interface_bias = interface.bias.detach().view(heads, -1)
        # sharp reads from the start: strength 1 + softplus(STRENGTH_INIT)
        interface_bias[:, 2 * width + 1] = STRENGTH_INIT
        output = torch.nn.Linear(size + heads * width, n_classes)
        controller = _lstm_weights(n_in, size, size, "controller")
        controller["controller_bias"][size : 2 * size] = 1.0  # forget gate open
        return {
            **controller,
            "input_weight": projection,
            "interface_weight": interface.weight.detach(),
            "interface_bias": interface_bias.flatten(),
            "output_weight": output.weight.detach(),
            "output_bias": output.bias.detach(),
        }

    @staticmethod
    def n_way(net: MetaNet) -> int:
        """The number of classes `net` classifies at most (its output width)."""
        return int(net.extra["output_weight"].shape[0])

    # -- one step -----------------------------------------------------------
    def initial_state(self, n_tasks: int, like: torch.Tensor) -> MemoryState:
        """Memory at the paper's small constant, nothing used or read, the
        controller at zero; dtype and device of `like`."""
        slots, heads, width = self.memory_slots, self.read_heads, self.slot_width
        zeros, size = like.new_zeros, self.controller_size
        return MemoryState(
            like.new_full((n_tasks, slots, width), MEMORY_INIT),
            zeros(n_tasks, slots),
            zeros(n_tasks, heads, slots),
            zeros(n_tasks, heads * width),
            zeros(n_tasks, size),
            zeros(n_tasks, size),
        )

    def _controller(self, net, x, labels, state):
        """The LSTM step and its interface: ``h, c``, keys, adds, gates and
        strengths for inputs ``x (..., dim)`` and labels ``(..., n_way)``."""
        dtype, extra, names = x.dtype, net.extra, ("weight_ih", "weight_hh", "bias")
        cell = tuple(extra[f"controller_{k}"].to(dtype) for k in names)
        x = F.linear(F.layer_norm(x, x.shape[-1:]), extra["input_weight"].to(dtype))
        x = F.layer_norm(x, x.shape[-1:])  # see "Input layer"
        inputs = torch.cat([x, labels, state.reads.expand(*x.shape[:-1], -1)], -1)
        h_prev = state.h.expand(*x.shape[:-1], -1)
        c_prev = state.c.expand(*x.shape[:-1], -1)
        h, c = _lstm_step(inputs, h_prev, c_prev, *cell)
        interface = F.linear(
            h, extra["interface_weight"].to(dtype), extra["interface_bias"].to(dtype)
        )
        interface = interface.unflatten(-1, (self.read_heads, -1))
        width = self.slot_width
        keys = torch.tanh(interface[..., :width])
        adds = torch.tanh(interface[..., width : 2 * width])
        gates = interface[..., 2 * width]
        strengths = 1 + F.softplus(interface[..., 2 * width + 1])
        return h, c, keys, adds, gates, strengths

    def _output(self, net, h, reads):
        weight, bias = (
            net.extra[f"output_{k}"].to(h.dtype) for k in ("weight", "bias")
        )
        return F.linear(torch.cat([h, reads.flatten(-2)], -1), weight, bias)

    def write_step(self, net, x, labels, state: MemoryState):
        """One step that writes: ``x (T, dim)``, previous labels ``(T, n_way)``.

        Returns the logits ``(T, n_way)`` and the next :class:`MemoryState`.
        """
        h, c, keys, adds, gates, strengths = self._controller(net, x, labels, state)
        memory, write_weights = lrua_write(
            state.memory, state.usage, state.read_weights, gates, adds
        )
        reads, read_weights = lrua_read(memory, keys, strengths)
        usage = self.usage_decay * state.usage + (read_weights + write_weights).sum(-2)
        new = MemoryState(memory, usage, read_weights, reads.flatten(-2), h, c)
        return self._output(net, h, reads), new

    def query_step(self, net, x, state: MemoryState):
        """Read-only steps from `state` for queries ``x (T, q, dim)``, each
        independently: logits ``(T, q, n_way)``; memory is not written."""
        labels = x.new_zeros(*x.shape[:-1], self.n_way(net))
        state = state._replace(
            reads=state.reads.unsqueeze(-2),
            h=state.h.unsqueeze(-2),
            c=state.c.unsqueeze(-2),
        )
        h, _, keys, _, _, strengths = self._controller(net, x, labels, state)
        reads, _ = lrua_read(state.memory.unsqueeze(-3), keys, strengths)
        return self._output(net, h, reads)

    def read_support(self, net, support, labels):
        """Run support sequences and the closing step that hands over the last
        label.

        Parameters
        ----------
        net : MetaNet
        support : Tensor of shape (T, L, dim)
            Embeddings, in sequence order.
        labels : Tensor of shape (T, L), int64

        Returns
        -------
        logits : Tensor of shape (T, L, n_way)
            Each support row's prediction, made before its label is given.
        state : MemoryState
        """
        n_tasks, length, _ = support.shape
        onehot = F.one_hot(labels, self.n_way(net)).to(support.dtype)
        state = self.initial_state(n_tasks, support)
        previous = torch.zeros_like(onehot[:, 0])
        logits = []
        for t in range(length):
            out, state = self.write_step(net, support[:, t], previous, state)
            logits.append(out)
            previous = onehot[:, t]
        _, state = self.write_step(
            net, torch.zeros_like(support[:, 0]), previous, state
        )
        return torch.stack(logits, 1), state

    # -- the Algorithm interface --------------------------------------------
    def _check_ways(self, net, n_classes: int) -> None:
        n_way = self.n_way(net)
        if n_classes > n_way:
            raise ValueError(
                f"This MANN model classifies at most {n_way} classes: it was "
                f"meta-trained on {n_way}-way episodes and its output layer has "
                f"one unit per way, but the support set has {n_classes} classes. "
                f"Meta-train it with n_way >= {n_classes}, or use a method that "
                "adapts to any number of classes (e.g. method='protonet')."
            )

    def loss(self, net: MetaNet, batch: TaskBatch):
        if batch.n_way != self.n_way(net):
            raise ValueError(
                f"A {batch.n_way}-way batch for a MANN with {self.n_way(net)} "
                "outputs; meta-train it with its own n_way."
            )
        n_tasks, n_support, n_features = batch.support_x.shape
        support = net(batch.support_x.reshape(-1, n_features))
        query = net(batch.query_x.reshape(-1, n_features))
        support = support.view(n_tasks, n_support, -1)
        query = query.view(n_tasks, -1, support.shape[-1])
        centre = episode_centre(support, batch.support_y, batch.n_way)
        support, query = support - centre, query - centre
        # the paper's shuffled sequences: each task's support in its own order
        order = torch.rand(n_tasks, n_support, device=support.device).argsort(1)
        support = support.gather(1, order.unsqueeze(-1).expand_as(support))
        labels = batch.support_y[order]
        support_logits, state = self.read_support(net, support, labels)
        query_logits = self.query_step(net, query, state)
        n_way = batch.n_way
        query_targets = batch.query_y.repeat(n_tasks)
        logits = torch.cat(
            [support_logits.reshape(-1, n_way), query_logits.reshape(-1, n_way)]
        )
        loss = F.cross_entropy(logits, torch.cat([labels.reshape(-1), query_targets]))
        accuracy = query_logits.reshape(-1, n_way).argmax(1) == query_targets
        return loss, {"accuracy": accuracy.float().mean().item()}

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        self._check_ways(net, n_classes)
        generator = torch.Generator().manual_seed(SUPPORT_ORDER_SEED)
        shuffle = torch.randperm(support_x.shape[0], generator=generator)
        order = canonical_order(support_x, support_y)[shuffle].to(support_x.device)
        with torch.no_grad():
            support = embed_rows(net, support_x[order], batch_size)
            centre = episode_centre(support[None], support_y[order], n_classes)[0]
            support = support - centre
            _, state = self.read_support(net, support[None], support_y[order][None])
        return {
            **{k: v[0] for k, v in state._asdict().items()},
            "centre": centre[0],
            "n_classes": torch.tensor(n_classes),
        }

    def predict(self, net, state, query_x, batch_size=100):
        # float64 steps: a row's logits must not depend on its batch
        query = embed_rows(net, query_x, batch_size).double()
        query = query - state["centre"].double()
        memory = MemoryState(
            **{k: state[k].double()[None] for k in MemoryState._fields}
        )
        logits = self.query_step(net, query[None], memory)[0]
        return logits[:, : int(state["n_classes"])]
