"""RCF: a small convolutional edge detector with a side output at every stage, fused.

Richer Convolutional Features (Liu et al. 2017) follow HED (Xie and Tu 2015): a plain stack of
3x3 convolutions in stages, each stage ending in a 2x2 max-pool. Every convolution of a stage
sends a 1x1 projection to the stage's side branch (RCF's change to HED, which takes only the
stage's last layer); the branch's sum becomes one boundary map, upsampled to the input size, and a
1x1 convolution fuses the stages' maps. Each side map and the fused map are supervised (deep
supervision), so shallow stages learn fine edges and deep ones object contours.

This network is narrow (16 channels in the first stage, batch norm after every convolution) so it
trains from scratch on BSDS500's 200 training images on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import SegmentationModel, register_model

__all__ = ["RCF", "EdgeOutput", "rcf"]


class EdgeOutput(NamedTuple):
    """An edge network's output, at the input's size."""

    fused: torch.Tensor
    """(N, 1, H, W) boundary logits of the fused map (apply a sigmoid for probabilities)."""
    sides: torch.Tensor
    """(N, stages, H, W) boundary logits of each stage's side output, finest first."""


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RCF(SegmentationModel):
    """Stages of 3x3 convolutions, a side branch per stage (1x1 of every layer, summed), a fusion."""

    def __init__(
        self, *, num_classes: int = 1, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64, 128, 128),
        convs: Sequence[int] = (2, 2, 3, 3, 3), side_width: int = 16,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if num_classes != 1:
            raise ValueError(f"rcf predicts one boundary map; num_classes must be 1, got {num_classes}")
        if len(widths) != len(convs) or not widths:
            raise ValueError(f"widths and convs give one entry per stage; got {list(widths)} and "
                             f"{list(convs)}")
        if min(widths) < 1 or min(convs) < 1 or side_width < 1:
            raise ValueError("widths, convs and side_width must be at least 1")
        # Stages after the first pool by 2, but the last dilates instead (RCF's change to HED's
        # fifth stage): the deepest features stay at 1/2**(stages - 2) of the input.
        self.size_divisor = 2 ** max(len(widths) - 2, 0)
        self.stages = nn.ModuleList()
        self.side_convs = nn.ModuleList()
        cin = in_channels
        for k, (width, count) in enumerate(zip(widths, convs, strict=True)):
            dilation = 2 if k == len(widths) - 1 and k > 0 else 1
            layers = [_conv(cin if j == 0 else width, width, dilation) for j in range(count)]
            self.stages.append(nn.ModuleList(layers))
            self.side_convs.append(nn.ModuleList(nn.Conv2d(width, side_width, 1) for _ in range(count)))
            cin = width
        self.scores = nn.ModuleList(nn.Conv2d(side_width, 1, 1) for _ in widths)
        self.fuse = nn.Conv2d(len(widths), 1, 1)
        with torch.no_grad():
            self.fuse.weight.fill_(1.0 / len(widths))
            self.fuse.bias.zero_()

    def forward_padded(self, images: torch.Tensor) -> EdgeOutput:
        size = images.shape[-2:]
        x = images
        sides = []
        last = len(self.stages) - 1
        for k, (stage, projections, score) in enumerate(zip(self.stages, self.side_convs, self.scores,
                                                          strict=True)):
            if 0 < k < last:
                x = F.max_pool2d(x, 2)
            branch = None
            for layer, projection in zip(stage, projections, strict=True):
                x = layer(x)
                branch = projection(x) if branch is None else branch + projection(x)
            side = score(branch)
            if side.shape[-2:] != size:
                side = F.interpolate(side, size=size, mode="bilinear", align_corners=False)
            sides.append(side)
        stacked = torch.cat(sides, dim=1)
        return EdgeOutput(self.fuse(stacked), stacked)


@register_model("rcf", task="regions", adapter="boundaries", predictor="boundaries")
def rcf(
    *, num_classes: int = 1, in_channels: int = 3, widths: Sequence[int] = (16, 32, 64, 128, 128),
    convs: Sequence[int] = (2, 2, 3, 3, 3), side_width: int = 16,
) -> RCF:
    """RCF edge detector (Liu et al. 2017): side outputs at every stage, fused; boundaries to regions."""
    return RCF(num_classes=num_classes, in_channels=in_channels, widths=widths, convs=convs,
               side_width=side_width)
