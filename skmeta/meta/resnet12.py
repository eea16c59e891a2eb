"""ResNet-12, the backbone of MetaOptNet, TADAM, FEAT and RFS.

Four residual blocks of 64, 160, 320 and 640 channels. A block is three
3x3 convolutions, each followed by batch norm, with a LeakyReLU(0.1) after the
first two; a 1x1 convolution + batch norm shortcut is added to the third's
output, then a LeakyReLU and a 2x2 max-pool halve the image. On 84x84 images
the last block outputs 640 x 5 x 5; global average pooling makes that a
640-d embedding (``pooling="avg"``, as RFS and FEAT), ``pooling="flatten"``
keeps all 16,000 values (as MetaOptNet).

DropBlock (the papers' regulariser) is left out: its drop rate follows a
schedule kept as state on the module, which skmeta avoids.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResNet12", "ResidualBlock"]


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int) -> list:
    return [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=False,  # batch norm's shift replaces it
        ),
        nn.BatchNorm2d(out_channels),
    ]


class ResidualBlock(nn.Module):
    """One block of ResNet-12: three conv3x3 + batch norm, a 1x1 shortcut,
    LeakyReLU, 2x2 max-pool.

    Parameters
    ----------
    in_channels : int
    out_channels : int
    negative_slope : float, default=0.1
        Slope of the LeakyReLUs for negative inputs.

    Shapes: ``(batch, in_channels, H, W) -> (batch, out_channels, H // 2, W // 2)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, negative_slope: float = 0.1
    ) -> None:
        super().__init__()
        if not negative_slope > 0:
            # the in-place LeakyReLU's backward needs a positive slope
            raise ValueError(f"negative_slope must be > 0, got {negative_slope}.")
        self.negative_slope = float(negative_slope)
        self.conv1, self.bn1 = _conv_bn(in_channels, out_channels, 3)
        self.conv2, self.bn2 = _conv_bn(out_channels, out_channels, 3)
        self.conv3, self.bn3 = _conv_bn(out_channels, out_channels, 3)
        # a Sequential: inference folds its batch norm into the convolution
        self.shortcut = nn.Sequential(*_conv_bn(in_channels, out_channels, 1))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope = self.negative_slope
        out = F.leaky_relu(self.bn1(self.conv1(x)), slope)
        out = F.leaky_relu(self.bn2(self.conv2(out)), slope)
        out = self.bn3(self.conv3(out)) + self.shortcut(x)
        # leaky_relu(maxpool(z)) == maxpool(leaky_relu(z)) (both monotone),
        # with the activation on a 4x smaller tensor; in place is safe: the
        # pool's backward needs its input, not its output
        return F.leaky_relu_(self.pool(out), slope)


class ResNet12(nn.Module):
    """ResNet-12 of the few-shot literature (MetaOptNet, FEAT, RFS).

    Parameters
    ----------
    in_channels : int
        Channels of the input images (3 for colour, 1 for grey).
    channels : sequence of 4 int, default=(64, 160, 320, 640)
        Output channels of the four residual blocks.
    negative_slope : float, default=0.1
        Slope of the LeakyReLUs for negative inputs.
    pooling : {"avg", "flatten"}, default="avg"
        ``"avg"``: global average pooling of the last feature map, an
        embedding of ``channels[-1]`` values (640). ``"flatten"``: the whole
        last feature map, ``channels[-1] * h * w`` values (640 x 5 x 5 on
        84x84 images).

    Shapes: ``(batch, in_channels, H, W) -> (batch, dim)`` where ``dim`` is
    ``channels[-1]`` with ``pooling="avg"``, and ``channels[-1] * h * w`` with
    ``"flatten"``, ``h, w`` being H, W halved (rounding down) four times. H and
    W must be at least 16. Computed channels-last (faster on a CPU).

    Attributes
    ----------
    blocks : torch.nn.Sequential
        The four :class:`ResidualBlock` objects (the units that
        ``backbone_params={"trainable_blocks": k}`` freezes).

    Examples
    --------
    >>> import torch
    >>> net = ResNet12(3, channels=(8, 8, 16, 16)).eval()
    >>> net(torch.zeros(2, 3, 84, 84)).shape
    torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int] = (64, 160, 320, 640),
        negative_slope: float = 0.1,
        pooling: str = "avg",
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(
                f"channels must be 4 positive ints (one per block), got {channels}."
            )
        if pooling not in ("avg", "flatten"):
            raise ValueError(f"pooling must be 'avg' or 'flatten', got {pooling!r}.")
        self.pooling = pooling
        widths = (in_channels, *channels)
        self.blocks = nn.Sequential(
            *(ResidualBlock(widths[i], widths[i + 1], negative_slope) for i in range(4))
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="leaky_relu"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 16:
            raise ValueError(
                "ResNet-12 halves the image four times and needs at least 16x16 "
                f"pixels; got {tuple(x.shape[-2:])}. Use backbone='conv4' for "
                "smaller images."
            )
        # `.to`, not `.contiguous`: a 1-channel NCHW tensor already counts as
        # channels-last contiguous and would stay NCHW
        out = self.blocks(x.to(memory_format=torch.channels_last))
        if self.pooling == "avg":
            return out.mean((2, 3))
        return out.flatten(1)
