"""What meta-training draws: class-disjoint splits, the class index of the
training rows (rotated classes included), and endless streams of episodes
(:class:`TaskBatch`) or labelled mini-batches, read one batch at a time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .algorithms import LabelledBatch, TaskBatch
from .episodes import ClassIndex, sample_episodes
from .rows import Rows
from .within_group import mixed_episodes

__all__ = [
    "BatchStream",
    "labelled_batches",
    "share_of",
    "split_classes",
    "task_batches",
    "training_index",
    "validation_batch",
    "ValidationEpisodes",
]


def share_of(n: int, rank: int, size: int) -> slice:
    """Part `rank` of `size` near-equal contiguous parts of ``range(n)``.

    Examples
    --------
    >>> share_of(5, 0, 2), share_of(5, 1, 2)
    (slice(0, 2, None), slice(2, 5, None))
    """
    return slice(rank * n // size, (rank + 1) * n // size)


def split_classes(
    y: np.ndarray, fraction: float, rng: np.random.Generator, least: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Split rows into two class-disjoint sets, about `fraction` of classes second.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Class codes.
    fraction : float in (0, 1)
        Share of the classes held out.
    rng : numpy.random.Generator
    least : int, default=1
        Classes held out at least (2 for classification: a validation
        episode has 2 ways or more), however few `fraction` gives: the
        default 0.1 of fewer than 15 classes gave 0 or 1, an error.

    Returns
    -------
    train_rows, held_out_rows : ndarrays of int64
    """
    classes = np.unique(y)
    n_held = min(classes.size, max(least, int(round(fraction * classes.size))))
    held = rng.choice(classes, size=n_held, replace=False)
    mask = np.isin(y, held)
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def training_index(
    rows: np.ndarray, codes: np.ndarray, n_samples: int, rotations: int
) -> tuple[ClassIndex, np.ndarray, np.ndarray]:
    """The rows meta-training draws from, indexed by class.

    Parameters
    ----------
    rows : ndarray of shape (n_train,), int64
        Real rows of the data set to train on.
    codes : ndarray of shape (n_train,)
        Their class codes ``0..n_classes-1``.
    n_samples : int
        Rows in the whole data set.
    rotations : int
        1, or 4 for class augmentation: row ``r`` rotated by ``k * 90`` degrees
        is virtual row ``k * n_samples + r`` of class ``k * n_classes + c``
        (:class:`~skmeta.meta.rows.Rows`).

    Returns
    -------
    index : ClassIndex
        Virtual row numbers of each class.
    virtual_rows, virtual_codes : ndarrays of shape (rotations * n_train,)
    """
    n_classes = int(codes.max()) + 1 if codes.size else 0
    virtual_rows = np.concatenate([rows + k * n_samples for k in range(rotations)])
    virtual_codes = np.concatenate([codes + k * n_classes for k in range(rotations)])
    index = ClassIndex.from_labels(virtual_codes)
    mapped = np.where(index.rows >= 0, virtual_rows[index.rows], -1)
    return ClassIndex(mapped, index.counts), virtual_rows, virtual_codes


class BatchStream:
    """Endless batches drawn a block at a time from a numpy Generator, resumable.

    Each block is ``draw(rng)`` (e.g. 64 iterations' episodes, or one shuffled
    pass), of which ``make(block, i)`` builds batch ``i``. The stream's
    position is the generator's state before the current block was drawn plus
    the batches taken from it, so a resumed stream (:meth:`load_state_dict`)
    redraws that block and continues with exactly the batches an
    uninterrupted one would yield.

    Parameters
    ----------
    rng : numpy.random.Generator
        Drawn from only by this stream once it has started.
    draw : callable
        ``draw(rng)`` -> a block.
    size : int
        Batches per block.
    make : callable
        ``make(block, i)`` -> batch ``i`` of `block`, for ``0 <= i < size``.
    """

    def __init__(self, rng: np.random.Generator, draw, size: int, make) -> None:
        self.rng, self._draw, self.size, self._make = rng, draw, size, make
        self._block, self._block_state, self._offset = None, None, size

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self):
        if self._offset == self.size:
            self._block_state = self.rng.bit_generator.state
            self._block, self._offset = self._draw(self.rng), 0
        self._offset += 1
        return self._make(self._block, self._offset - 1)

    def state_dict(self) -> dict:
        """The position, JSON-compatible: ``{"block_rng": the generator's
        state before the current block was drawn (before the first: now),
        "offset": batches taken from that block}``."""
        if self._block is None:
            return {"block_rng": self.rng.bit_generator.state, "offset": 0}
        return {"block_rng": self._block_state, "offset": self._offset}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a position given by :meth:`state_dict`."""
        offset = int(state["offset"])
        if not 0 <= offset <= self.size:
            raise ValueError(f"offset {offset} is not within a block of {self.size}.")
        self.rng.bit_generator.state = state["block_rng"]
        self._block_state = self.rng.bit_generator.state
        self._block, self._offset = self._draw(self.rng), offset


def task_batches(
    rows: Rows,
    index,
    settings,
    rng,
    n_way,
    n_query,
    n_tasks,
    targets=None,
    augment=True,
    parts: tuple[int, int] = (0, 1),
    groups: np.ndarray | None = None,
    within_group: float = 0.0,
) -> BatchStream:
    """TaskBatch objects forever, sampling 64 iterations' episodes at once.

    Classification: labels are the ways. Regression (`targets` given, a tensor
    of every row's target; one group per task, ``n_way == 1``): labels are the
    rows' targets, per task. Only the rows of the batch at hand are read
    (:meth:`Rows.gather`), and augmented when `augment`.

    With ``parts=(rank, size)`` (a process's share in a distributed run,
    :mod:`.distributed`), each batch is part `rank` of `size` near-equal parts
    of the `n_tasks` tasks drawn (:func:`share_of`): only their rows are read,
    unless rows are augmented; then the whole meta-batch is, so that the
    augmentation's random draws, and torch's generator after them, are those
    of one process.

    With ``within_group > 0``, each episode is drawn within one group
    (:func:`~.episodes.sample_group_episodes`; `groups` gives the group of
    each class of `index`, :func:`~.within_group.class_groups`) with that
    probability, and at random otherwise; with 0 (the default), the stream is
    that of earlier versions, draw for draw.
    """
    device = rows.device
    share = share_of(n_tasks, *parts)
    ways = torch.arange(n_way, device=device)
    support_y = ways.repeat_interleave(settings.k_shot)
    query_y = ways.repeat_interleave(n_query)

    def draw(rng):
        if within_group == 0.0:
            return sample_episodes(
                index, n_way, settings.k_shot, n_query, 64 * n_tasks, rng
            )
        return mixed_episodes(
            index,
            groups,
            within_group,
            n_way,
            settings.k_shot,
            n_query,
            64 * n_tasks,
            rng,
        )

    def make(episodes, i):
        s = episodes.support[i * n_tasks : (i + 1) * n_tasks]
        q = episodes.query[i * n_tasks : (i + 1) * n_tasks]
        whole = parts[1] > 1 and augment and rows.augment is not None
        if not whole:
            s, q = s[share], q[share]
        s_y, q_y = support_y, query_y
        if targets is not None:
            s_y = targets[torch.from_numpy(s).to(device)]
            q_y = targets[torch.from_numpy(q).to(device)]
        batch = TaskBatch(
            rows.gather(s, augment), s_y, rows.gather(q, augment), q_y, n_way
        )
        return batch.tasks(share) if whole else batch

    return BatchStream(rng, draw, 64, make)


def labelled_batches(
    rows: Rows, virtual_rows, codes, batch_size, rng, parts: tuple[int, int] = (0, 1)
) -> BatchStream:
    """LabelledBatch objects forever, one shuffled pass after another.

    Parameters
    ----------
    rows : Rows
    virtual_rows : ndarray of shape (n,), int64
        The (virtual) rows to draw, see :func:`training_index`.
    codes : ndarray of shape (n,)
        Their class codes.
    batch_size : int
    rng : numpy.random.Generator
    parts : (int, int), default=(0, 1)
        ``(rank, size)``: each batch is part `rank` of `size` near-equal
        parts of the mini-batch drawn (a process's share in a distributed
        run, :mod:`.distributed`), read alone unless rows are augmented (as
        :func:`task_batches` does).
    """
    batch_size = min(batch_size, virtual_rows.size)
    labels = torch.from_numpy(np.asarray(codes, dtype=np.int64)).to(rows.device)
    share = share_of(batch_size, *parts)

    def make(order, i):
        chosen = order[i * batch_size : (i + 1) * batch_size]
        whole = parts[1] > 1 and rows.augment is not None
        x = rows.gather(virtual_rows[chosen if whole else chosen[share]])
        return LabelledBatch(
            x[share] if whole else x,
            labels[torch.from_numpy(chosen[share]).to(rows.device)],
        )

    def draw(rng):
        return rng.permutation(virtual_rows.size)

    return BatchStream(rng, draw, virtual_rows.size // batch_size, make)


@dataclass(frozen=True)
class ValidationEpisodes:
    """Validation episodes drawn once, read a few tasks at a time.

    Only indices are held: a fixed set of a hundred episodes of large images
    would otherwise hold hundreds of MB, and one pass over all of them
    activations of several GB.

    Attributes
    ----------
    rows : Rows
    support, query : ndarray of shape (n_episodes, n_way * k_shot or n_query)
        Row numbers, class-major.
    support_y, query_y : Tensor
        Ways (1-D, shared by every episode) or per-episode regression targets
        (2-D).
    n_way : int
    """

    rows: Rows
    support: np.ndarray
    query: np.ndarray
    support_y: torch.Tensor
    query_y: torch.Tensor
    n_way: int

    @property
    def n_tasks(self) -> int:
        return self.support.shape[0]

    def tasks(self, episodes: slice) -> ValidationEpisodes:
        """The episodes in `episodes` (a process's share of validation)."""

        def part(labels):
            return labels[episodes] if labels.dim() == 2 else labels

        return ValidationEpisodes(
            self.rows,
            self.support[episodes],
            self.query[episodes],
            part(self.support_y),
            part(self.query_y),
            self.n_way,
        )

    def batches(self, max_rows: int = 1024):
        """Yield TaskBatch objects of whole episodes, at most `max_rows` rows
        each (at least one episode), never augmented."""
        per_task = self.support.shape[1] + self.query.shape[1]
        step = max(1, max_rows // per_task)
        for start in range(0, self.n_tasks, step):
            tasks = slice(start, start + step)

            def part(labels, tasks=tasks):
                return labels[tasks] if labels.dim() == 2 else labels

            yield TaskBatch(
                self.rows.gather(self.support[tasks], augment=False),
                part(self.support_y),
                self.rows.gather(self.query[tasks], augment=False),
                part(self.query_y),
                self.n_way,
            )


def validation_batch(
    rows: Rows, val_rows, y, settings, rng, targets=None
) -> ValidationEpisodes:
    """Validation episodes from the real rows `val_rows` with class codes `y`
    (``settings.n_val_episodes`` of them, drawn as the first of a training
    stream would be)."""
    index, _, _ = training_index(val_rows, y, rows.X.shape[0], 1)
    n_way = min(settings.n_way, index.n_classes)
    n_query = settings.n_query
    if targets is None and n_way < 2:
        raise ValueError(
            f"early_stopping / calibrate hold out {index.n_classes} class(es) "
            f"(validation_fraction={settings.validation_fraction}); at least 2 are "
            "needed. Raise validation_fraction or turn early_stopping and "
            "calibrate off."
        )
    n_tasks = settings.n_val_episodes
    try:
        episodes = sample_episodes(
            index, n_way, settings.k_shot, n_query, 64 * n_tasks, rng
        )
    except ValueError as exc:
        raise ValueError(
            f"Validation classes (early_stopping / calibrate): {exc}"
        ) from None
    support, query = episodes.support[:n_tasks], episodes.query[:n_tasks]
    device = rows.device
    if targets is None:
        support_y = torch.arange(n_way, device=device).repeat_interleave(
            settings.k_shot
        )
        query_y = torch.arange(n_way, device=device).repeat_interleave(n_query)
    else:
        support_y = targets[torch.from_numpy(support).to(device)]
        query_y = targets[torch.from_numpy(query).to(device)]
    return ValidationEpisodes(rows, support, query, support_y, query_y, n_way)
