"""Building blocks shared by the architectures: the transfer-learning head, CBAM, the plain CNN."""
from __future__ import annotations

import torch
from torch import nn


class Head(nn.Sequential):
    """The redesigned classifier head: dropout, Linear + BatchNorm + ReLU, dropout, Linear."""

    def __init__(self, in_features: int, num_classes: int, *, hidden: int = 256,
                 dropout: float = 0.3) -> None:
        super().__init__(
            nn.Dropout(dropout),
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout / 2),
            nn.Linear(hidden, num_classes),
        )


class ChannelAttention(nn.Module):
    """CBAM's channel gate: a shared MLP over average- and max-pooled descriptors."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(gate)


class SpatialAttention(nn.Module):
    """CBAM's spatial gate: a 7x7 convolution over channel-mean and channel-max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(maps))


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al., ECCV 2018): channel then spatial gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


def conv_block(c_in: int, c_out: int, *, attention: bool, pool: bool = True) -> nn.Sequential:
    """3x3 conv-BN-ReLU, optional CBAM, then (optionally) 2x2 max pooling."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                               nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    if attention:
        layers.append(CBAM(c_out))
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class PlainCNN(nn.Module):
    """A small VGG-style CNN: four conv-pool blocks (32-64-128-256 channels), one more 3x3 conv
    at 1/16 resolution (the Grad-CAM layer, ``features.4``), global pooling and the standard head.
    About 0.55 GFLOP at 128 px.

    With ``attention=True`` every block ends in a CBAM attention module: same CNN, plus attention.
    """

    def __init__(self, num_classes: int, *, attention: bool = False,
                 widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        blocks, c_in = [], 3
        for width in widths:
            blocks.append(conv_block(c_in, width, attention=attention))
            c_in = width
        blocks.append(conv_block(c_in, c_in, attention=attention, pool=False))
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = Head(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))
