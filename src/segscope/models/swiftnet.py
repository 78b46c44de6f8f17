"""SwiftNet: a real-time design, a ResNet-18 encoder with a light ladder-style up-sampling path.

Oršić et al. (2019) showed that a plain ResNet-18 encoder, a spatial pyramid pooling block for
context and a thin decoder that adds one lateral skip per stride (16, 8, 4) match heavier designs at
a fraction of their cost. Here the encoder's width is a parameter (``width=0.5`` halves every stage),
so a model that trains from scratch on a CPU, and ships in a few megabytes, has the same shape as
the full one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import SegmentationModel, register_model

__all__ = ["SwiftNet", "swiftnet"]


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _BasicBlock(nn.Module):
    """ResNet's basic block (two 3x3 convolutions and an identity or 1x1 projection)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(cin, cout, 3, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        nn.init.zeros_(self.conv2[1].weight)  # each block starts as the identity (Goyal et al. 2017)
        self.project = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.project(x))


class _PyramidPooling(nn.Module):
    """Context: the features averaged over 1x1, 2x2, 4x4 and 8x8 grids, up-sampled and concatenated."""

    def __init__(self, cin: int, cout: int, grids: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        self.grids = grids
        branch = max(cout // len(grids), 8)
        self.reduce = _conv_bn_relu(cin, cout, 1)
        self.branches = nn.ModuleList(_conv_bn_relu(cout, branch, 1) for _ in grids)
        self.fuse = _conv_bn_relu(cout + branch * len(grids), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        size = x.shape[-2:]
        pooled = [
            F.interpolate(branch(F.adaptive_avg_pool2d(x, grid)), size=size, mode="bilinear",
                          align_corners=False)
            for grid, branch in zip(self.grids, self.branches, strict=True)
        ]
        return self.fuse(torch.cat([x, *pooled], dim=1))


class SwiftNet(SegmentationModel):
    """SwiftNet (single scale): ResNet-18 encoder of ``width`` times the usual channels, pyramid
    pooling on its stride-32 output, and an up-sampling path that adds a 1x1 lateral projection of
    the stride-16, 8 and 4 features and blends each sum with a 3x3 convolution; logits at stride 4,
    bilinearly up-sampled to the input size."""

    size_divisor = 32

    @property
    def export_divisor(self) -> int:
        # A fixed-size export averages by fixed windows: each pyramid grid must divide the
        # stride-32 features (a 64-pixel tile, 2x2 features, cannot make the 8x8 grid).
        return self.size_divisor * math.lcm(*self.context.grids)

    def __init__(
        self, *, num_classes: int, in_channels: int = 3, width: float = 1.0, decoder_width: int = 128
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if not 0.125 <= width <= 2.0:
            raise ValueError(f"width must be between 0.125 and 2, got {width}")
        if decoder_width < 8:
            raise ValueError(f"decoder_width must be at least 8, got {decoder_width}")
        widths = [max(8, round(c * width)) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            _conv_bn_relu(in_channels, widths[0], 7, 2), nn.MaxPool2d(3, stride=2, padding=1)
        )
        stages = []
        cin = widths[0]
        for index, cout in enumerate(widths):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.context = _PyramidPooling(widths[3], decoder_width)
        self.laterals = nn.ModuleList(_conv_bn_relu(c, decoder_width, 1) for c in widths[2::-1])
        self.blends = nn.ModuleList(_conv_bn_relu(decoder_width, decoder_width, 3) for _ in widths[2::-1])
        self.classifier = nn.Conv2d(decoder_width, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        x = self.context(skips[-1])
        for skip, lateral, blend in zip(skips[2::-1], self.laterals, self.blends, strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = blend(x + lateral(skip))
        logits = self.classifier(x)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


@register_model("swiftnet")
def swiftnet(
    *, num_classes: int, in_channels: int = 3, width: float = 1.0, decoder_width: int = 128
) -> SwiftNet:
    """SwiftNet (Oršić et al. 2019): a real-time ResNet-18 ladder network; ``width`` scales the encoder."""
    return SwiftNet(
        num_classes=num_classes, in_channels=in_channels, width=width, decoder_width=decoder_width
    )
