"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra, 2016).

A query is labelled by attention over the support set: the softmax of its
cosine similarities to the support embeddings weighs their one-hot labels,
``p(y | x, S) = sum_i a(x, x_i) y_i``. With full-context embeddings (FCE) the
support embeddings are read in the context of the whole support set by a
bidirectional LSTM, and each query embedding by an LSTM that attends to the
support set for ``read_steps`` steps. Cosine similarities are multiplied by a
learnt temperature (initialised at 10), as ProtoNet's cosine option; the paper
uses them unscaled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..net import MetaNet, embed_rows
from ..setting_checks import check_bool_setting, check_int_setting
from .base import Algorithm, TaskBatch

__all__ = ["MatchingNetworks"]

#: The most attention steps (a model file's setting is what fit runs).
MAX_READ_STEPS = 1_000


def _lstm_step(x, h, c, weight_ih, weight_hh, bias):
    """One step of an LSTM cell, batched: ``(B, in), (B, hid), (B, hid)``."""
    gates = F.linear(x, weight_ih, bias) + F.linear(h, weight_hh)
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _lstm_weights(n_in: int, n_hidden: int, n_out: int, prefix: str) -> dict:
    """Weights of an LSTM cell with `n_in` inputs, a hidden input `n_hidden`
    wide and `n_out` outputs, initialised as ``torch.nn.LSTMCell``'s."""
    bound = n_out**-0.5

    def uniform(*shape):
        return torch.empty(shape).uniform_(-bound, bound)

    return {
        f"{prefix}_weight_ih": uniform(4 * n_out, n_in),
        f"{prefix}_weight_hh": uniform(4 * n_out, n_hidden),
        f"{prefix}_bias": uniform(4 * n_out) + uniform(4 * n_out),
    }


def _cell(extra, prefix: str, dtype) -> tuple[torch.Tensor, ...]:
    return tuple(
        extra[f"{prefix}_{k}"].to(dtype) for k in ("weight_ih", "weight_hh", "bias")
    )


class MatchingNetworks(Algorithm):
    """Matching Networks: attention over the support set's embeddings.

    Parameters
    ----------
    full_context : bool, default=False
        Full-context embeddings: a bidirectional LSTM over the support set and
        an attention LSTM for each query (their weights are meta-parameters).
        Predictions then depend on the order of the support rows, as in the
        paper.
    read_steps : int, default=4
        Attention steps of the query LSTM (with `full_context`).
    """

    name = "matching"
    summary = "Matching Networks: attention over the support embeddings"
    settings = ("full_context", "read_steps")
    classifies_embeddings = True

    def __init__(self, full_context: bool = False, read_steps: int = 4) -> None:
        self.full_context = check_bool_setting("full_context", full_context)
        self.read_steps = check_int_setting(
            "read_steps", read_steps, maximum=MAX_READ_STEPS
        )

    @property
    def fixed_embedding_width(self) -> bool:
        return self.full_context  # LSTMs sized by the embedding

    def meta_parameters(self, net, embedding_dim, n_classes):
        params = {"scale": torch.tensor(10.0)}
        if self.full_context:
            d = embedding_dim
            params.update(_lstm_weights(d, d, d, "fce_forward"))
            params.update(_lstm_weights(d, d, d, "fce_backward"))
            # the query cell's hidden input is [h, r]: 2d wide
            params.update(_lstm_weights(d, 2 * d, d, "fce_query"))
        return params

    # -- full-context embeddings ------------------------------------------
    def _support_context(self, net: MetaNet, support: torch.Tensor) -> torch.Tensor:
        """g(x_i, S) = g'(x_i) + forward and backward LSTM states, for
        support embeddings ``(T, n, d)``."""
        if not self.full_context:
            return support
        out = support
        for direction, order in (("forward", 1), ("backward", -1)):
            cell = _cell(net.extra, f"fce_{direction}", support.dtype)
            h = c = torch.zeros_like(support[:, 0])
            states = []
            for i in range(support.shape[1])[::order]:
                h, c = _lstm_step(support[:, i], h, c, *cell)
                states.append(h)
            out = out + torch.stack(states[::order], 1)
        return out

    def _query_context(self, net, query, support):
        """f(x, S): an LSTM reading the support ``(T, n, d)`` with attention
        for ``read_steps`` steps, for queries ``(T, q, d)``."""
        if not self.full_context:
            return query
        cell = _cell(net.extra, "fce_query", query.dtype)
        h, c = query, torch.zeros_like(query)
        for _ in range(self.read_steps):
            read = torch.softmax(h @ support.mT, -1) @ support  # attention (T, q, n)
            h, c = _lstm_step(query, torch.cat([h, read], -1), c, *cell)
            h = h + query
        return h

    # -- attention ----------------------------------------------------------
    def _log_probs(self, net, query, support, onehot):
        """log p(y | x, S) for queries ``(T, q, d)``, support embeddings in
        context ``(T, n, d)`` and their one-hot labels ``(n, n_classes)``:
        ``(T, q, n_classes)``."""
        query = self._query_context(net, query, support)
        sims = F.normalize(query, dim=-1) @ F.normalize(support, dim=-1).mT
        attention = torch.softmax(sims * net.extra["scale"].to(sims.dtype), -1)
        probs = attention @ onehot.to(attention.dtype)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()

    def loss(self, net: MetaNet, batch: TaskBatch):
        n_tasks, n_support, n_features = batch.support_x.shape
        rows = torch.cat([batch.support_x, batch.query_x], 1).reshape(-1, n_features)
        emb = net(rows)
        emb = emb.view(n_tasks, -1, emb.shape[-1])
        support = self._support_context(net, emb[:, :n_support])
        onehot = F.one_hot(batch.support_y, batch.n_way)
        log_probs = self._log_probs(net, emb[:, n_support:], support, onehot)
        log_probs = log_probs.reshape(-1, batch.n_way)
        targets = batch.query_y.repeat(n_tasks)
        loss = F.nll_loss(log_probs, targets)
        accuracy = (log_probs.argmax(1) == targets).float().mean().item()
        return loss, {"accuracy": accuracy}

    def adapt(self, net, support_x, support_y, n_classes, batch_size=100):
        with torch.no_grad():
            support = embed_rows(net, support_x, batch_size).unsqueeze(0)
            return {
                "support": self._support_context(net, support)[0],
                "onehot": F.one_hot(support_y, n_classes).float(),
            }

    def predict(self, net, state, query_x, batch_size=100):
        # float64 attention: a row's scores must not depend on its batch
        query = embed_rows(net, query_x, batch_size).double()
        return self._log_probs(
            net, query[None], state["support"].double()[None], state["onehot"]
        )[0]

    def episode_metrics(self, net, batch):
        with torch.no_grad():
            loss, metrics = self.loss(net, batch)
        return loss.item(), metrics["accuracy"]
