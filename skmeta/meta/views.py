"""Test-time augmentation: a row's embedding averaged over shifted views,
and the embeddings of its quarter turns side by side.

Each image row is embedded as given and shifted by whole pixels, and the
embeddings are averaged. On Lake et al.'s within-alphabet Omniglot runs,
averaging over the 8 shifts of 1, 2 and 3 pixels (and the identity) gained
4.1 points inductively and 3.9 with PT-MAP (``benchmarks/results/
lake_deploy.md``). Methods that classify embeddings (:attr:`~.algorithms.
Algorithm.classifies_embeddings`) see only :class:`ViewAveraged`'s averaged
embeddings, so their prototypes, heads and transductive fits are those of
the averaged embeddings, exactly; gradient-based adaptation, which runs the
network's layers itself, cannot take it.

With quarter turns (:class:`QuarterTurns`), the image and its turns by 90,
180 and 270 degrees are each embedded (each averaged over the shifts) and
the four embeddings concatenated, divided by 2: a squared distance between
two such embeddings is the mean of the four turns' squared distances; with
the mirror image's turns too, eight, divided by the square root of 8. For
models meta-trained with ``class_augmentation="rot90"``, to which a turned
character is one more class to tell apart, it is an ensemble of views of
the task: on held-out Omniglot alphabets the turns gained +0.35 points at
20-way 1-shot, and the mirrors' turns +0.13 more, significant paired
episode by episode (``benchmarks/lake_views.py --round turns``,
``turns-mirrors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "QuarterTurns",
    "RowViews",
    "ViewAveraged",
    "embedding_blocks",
    "shift_offsets",
    "shifted",
    "viewed",
]


def shift_offsets(shifts: Sequence[int]) -> list[tuple[int, int]]:
    """The identity and the 8 shifts ``(dy, dx)`` of each distance in
    `shifts`: ``(1, 2)`` gives 17 offsets, ``(0, 0)`` first."""
    offsets = [(0, 0)]
    for d in shifts:
        offsets += [
            (dy * d, dx * d)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)
        ]
    return offsets


def shifted(x: torch.Tensor, input_shape: Sequence[int], dy: int, dx: int):
    """Rows of images shifted by whole pixels, edges replicated.

    Parameters
    ----------
    x : Tensor of shape (n, C * H * W)
        Flat image rows (any dtype torch pads: float).
    input_shape : (C, H, W)
    dy, dx : int
        Pixels down and right (negative: up and left), each less than H and W.

    Returns
    -------
    Tensor of shape (n, C * H * W)
        Pixel ``(i, j)`` of each image holds the input's ``(i - dy, j - dx)``,
        clamped to the image.
    """
    if dy == 0 and dx == 0:
        return x
    channels, height, width = input_shape
    pad = max(abs(dy), abs(dx))
    images = F.pad(
        x.reshape(-1, channels, height, width), (pad, pad, pad, pad), mode="replicate"
    )
    top, left = pad - dy, pad - dx
    return images[:, :, top : top + height, left : left + width].reshape(x.shape)


class ViewAveraged:
    """A network whose embedding of a row is the mean over shifted views.

    Calling it embeds each view with the wrapped network and averages; every
    other attribute (``extra``, the modules a method reads) is the wrapped
    network's. It holds no state of its own, so each call of ``fit`` or
    ``predict`` wraps the shared network anew.

    Parameters
    ----------
    net : MetaNet
        The network (or the inference network ``transform`` runs).
    input_shape : (C, H, W)
    offsets : list of (int, int)
        From :func:`shift_offsets`.
    """

    def __init__(self, net, input_shape: Sequence[int], offsets) -> None:
        self.net = net
        self.input_shape = tuple(input_shape)
        self.offsets = list(offsets)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for dy, dx in self.offsets:
            out = self.net(shifted(x, self.input_shape, dy, dx))
            total = out if total is None else total + out
        return total / len(self.offsets)

    def __getattr__(self, name: str):
        return getattr(self.net, name)


class QuarterTurns:
    """A network whose embedding of an image row is the concatenation of the
    embeddings of the image turned by 0, 1, 2 and 3 quarter turns (and,
    with `mirrors`, of its mirror image turned likewise), divided by the
    square root of their number (squared Euclidean distances: the mean over
    the turns).

    Parameters
    ----------
    net : MetaNet or ViewAveraged
        Embeds rows of shape (n, C * H * W) to (n, dim).
    input_shape : (C, H, W)
        Square images (H == W), so that a turned image is a row of the same
        shape.
    mirrors : bool, default=False
        Add the image flipped left to right and its turns: the 8 symmetries
        of the square (the dihedral group).

    The output has shape (n, 4 * dim), (n, 8 * dim) with `mirrors`; every
    other attribute is `net`'s.
    """

    def __init__(self, net, input_shape: Sequence[int], mirrors: bool = False):
        self.net = net
        self.input_shape = tuple(input_shape)
        self.mirrors = bool(mirrors)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = x.reshape(-1, *self.input_shape)
        sides = [images, images.flip(-1)] if self.mirrors else [images]
        turns = [
            self.net(torch.rot90(side, k, dims=(2, 3)).reshape(x.shape))
            for side in sides
            for k in range(4)
        ]
        return torch.cat(turns, dim=1) / len(turns) ** 0.5

    def __getattr__(self, name: str):
        return getattr(self.net, name)


TURNS = {"rot90": 4, "dihedral": 8}  # blocks side by side, by turns


@dataclass(frozen=True)
class RowViews:
    """The views of each image row the estimators embed: the shift
    `offsets` (:func:`shift_offsets`) averaged and, with `turns` (``"rot90"``
    or ``"dihedral"``), the turns side by side (:class:`QuarterTurns`)."""

    offsets: tuple = ((0, 0),)
    turns: str | None = None


def embedding_blocks(views) -> int:
    """How many embeddings of a row the `views` put side by side: 1, 4 or 8."""
    return TURNS.get(getattr(views, "turns", None), 1)


def viewed(net, input_shape: Sequence[int], views):
    """`net` embedding the `views` of each row: None (the row alone), a list
    of offsets (averaged, :class:`ViewAveraged`) or a :class:`RowViews`."""
    if views is None:
        return net
    if not isinstance(views, RowViews):
        return ViewAveraged(net, input_shape, views)
    if list(views.offsets) != [(0, 0)]:
        net = ViewAveraged(net, input_shape, views.offsets)
    if views.turns is None:
        return net
    return QuarterTurns(net, input_shape, mirrors=views.turns == "dihedral")
