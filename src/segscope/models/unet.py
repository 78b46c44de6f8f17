"""U-Net: an encoder-decoder with skip connections (Ronneberger et al. 2015)."""

from __future__ import annotations

import torch
from torch import nn

from .base import SegmentationModel, register_model

__all__ = ["UNet", "unet"]


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(SegmentationModel):
    """U-Net with ``depth`` down-sampling steps; widths double at each step from ``base_width``,
    up to ``max_width`` when given (as nnU-Net caps its feature counts: a deeper network sees
    more context without the parameters of the widest stages).

    Convolutions are padded (the output has the input's size, unlike the paper's valid
    convolutions) and batch-normalised; up-sampling is a learned 2x2 transposed convolution.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        depth: int = 4,
        base_width: int = 32,
        max_width: int | None = None,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if not 1 <= depth <= 6:
            raise ValueError(f"depth must be between 1 and 6, got {depth}")
        if base_width < 1:
            raise ValueError(f"base_width must be positive, got {base_width}")
        if max_width is not None and max_width < base_width:
            raise ValueError(f"max_width must be at least base_width ({base_width}), got {max_width}")
        self.size_divisor = 2**depth
        cap = max_width if max_width is not None else base_width * 2**depth
        widths = [min(base_width * 2**k, cap) for k in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])])
        self.down.extend(_double_conv(widths[k], widths[k + 1]) for k in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2) for k in reversed(range(depth))
        )
        self.merge = nn.ModuleList(_double_conv(2 * widths[k], widths[k]) for k in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        skips = []
        x = images
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else self.pool(x))
            skips.append(x)
        skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


@register_model("unet")
def unet(
    *,
    num_classes: int,
    in_channels: int = 3,
    depth: int = 4,
    base_width: int = 32,
    max_width: int | None = None,
) -> UNet:
    """U-Net (Ronneberger et al. 2015): encoder-decoder with skip connections, for any channels."""
    return UNet(
        num_classes=num_classes,
        in_channels=in_channels,
        depth=depth,
        base_width=base_width,
        max_width=max_width,
    )
