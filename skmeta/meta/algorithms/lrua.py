"""Least-recently-used memory access (LRUA) of a memory-augmented neural
network (Santoro et al. 2016), batched over tasks: where to write, what to
read. :mod:`.mann` steps the controller that drives them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["least_used", "lrua_read", "lrua_write"]


def least_used(usage: torch.Tensor, n: int) -> torch.Tensor:
    """One-hot rows of the `n` least used slots, least used first.

    Parameters
    ----------
    usage : Tensor of shape (..., memory_slots)
    n : int

    Returns
    -------
    Tensor of shape (..., n, memory_slots)
        Row ``i`` marks the ``i``-th least used slot; ties go to the lowest
        slot index (a stable sort).
    """
    order = torch.sort(usage, dim=-1, stable=True).indices[..., :n]
    return F.one_hot(order, usage.shape[-1]).to(usage.dtype)


def lrua_write(
    memory: torch.Tensor,
    usage: torch.Tensor,
    last_read: torch.Tensor,
    gates: torch.Tensor,
    adds: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-recently-used write.

    Parameters
    ----------
    memory : Tensor of shape (T, memory_slots, slot_width)
    usage : Tensor of shape (T, memory_slots)
        Usage after the previous step.
    last_read : Tensor of shape (T, heads, memory_slots)
        The previous step's read weights.
    gates : Tensor of shape (T, heads)
        ``alpha`` before its sigmoid: 1 writes where the head last read, 0 to
        its least used slot.
    adds : Tensor of shape (T, heads, slot_width)
        What each head writes.

    Returns
    -------
    memory : Tensor of shape (T, memory_slots, slot_width)
        The least used slot zeroed, then ``w_w^T adds`` added.
    write_weights : Tensor of shape (T, heads, memory_slots)
    """
    lu = least_used(usage, gates.shape[-1])
    gate = torch.sigmoid(gates).unsqueeze(-1)
    write_weights = gate * last_read + (1 - gate) * lu
    memory = memory * (1 - lu[..., 0, :].unsqueeze(-1)) + write_weights.mT @ adds
    return memory, write_weights


def lrua_read(
    memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Content-based read: softmax over slots of ``strength * cos(key, slot)``.

    Parameters
    ----------
    memory : Tensor of shape (..., memory_slots, slot_width)
    keys : Tensor of shape (..., heads, slot_width)
    strengths : Tensor of shape (..., heads)

    Returns
    -------
    reads : Tensor of shape (..., heads, slot_width)
    read_weights : Tensor of shape (..., heads, memory_slots)
    """
    sims = F.normalize(keys, dim=-1) @ F.normalize(memory, dim=-1).mT
    weights = torch.softmax(strengths.unsqueeze(-1) * sims, -1)
    return weights @ memory, weights
