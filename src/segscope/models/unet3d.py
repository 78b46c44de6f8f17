"""3-D U-Net for volumes, in the nnU-Net manner (Cicek et al. 2016; Isensee et al. 2021).

Each stage is two 3x3x3 convolutions, each followed by instance normalisation and a leaky ReLU;
the encoder goes down by strided convolutions and the decoder up by transposed convolutions, with
skip connections. With ``deep_supervision`` the decoder's coarser levels get 1x1x1 heads of their
own, which :meth:`UNet3D.forward_levels` returns for the loss; :meth:`forward` always returns the
full-resolution logits alone, in training and evaluation mode alike.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import SegmentationModel, register_model

__all__ = ["UNet3D", "unet3d"]


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.InstanceNorm3d(cout, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(cout, cout, 3, padding=1, bias=False),
        nn.InstanceNorm3d(cout, affine=True),
        nn.LeakyReLU(0.01, inplace=True),
    )


class UNet3D(SegmentationModel):
    """3-D U-Net with ``depth`` down-sampling steps; widths double at each step from
    ``base_width`` up to ``max_width``.

    Inputs are (N, C_in, D, H, W) volumes of any size (padded to multiples of ``2**depth`` and
    cropped back).
    """

    spatial_dims = 3
    memory_format = torch.contiguous_format  # channels_last_3d measured no faster here

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 1,
        depth: int = 3,
        base_width: int = 16,
        max_width: int = 256,
        deep_supervision: bool = False,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if not 1 <= depth <= 5:
            raise ValueError(f"depth must be between 1 and 5, got {depth}")
        if base_width < 1 or max_width < base_width:
            raise ValueError(f"need 1 <= base_width <= max_width, got {base_width} and {max_width}")
        self.size_divisor = 2**depth
        self.deep_supervision = deep_supervision
        widths = [min(base_width * 2**k, max_width) for k in range(depth + 1)]
        self.down = nn.ModuleList([_stage(in_channels, widths[0], 1)])
        self.down.extend(_stage(widths[k], widths[k + 1], 2) for k in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(widths[k + 1], widths[k], 2, stride=2) for k in reversed(range(depth))
        )
        self.merge = nn.ModuleList(_stage(2 * widths[k], widths[k], 1) for k in reversed(range(depth)))
        self.head = nn.Conv3d(widths[0], num_classes, 1)
        # Heads of the decoder's coarser levels, finest first (only with deep supervision).
        self.side_heads = (
            nn.ModuleList(nn.Conv3d(widths[k], num_classes, 1) for k in range(1, depth))
            if deep_supervision
            else nn.ModuleList()
        )

    def _levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        x = images
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        decoded = []
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
            decoded.append(x)
        # decoded runs coarse to fine; the heads want fine to coarse.
        finest_first = decoded[::-1]
        return [
            self.head(finest_first[0]),
            *(head(level) for head, level in zip(self.side_heads, finest_first[1:], strict=False)),
        ]

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        return self._levels(images)[0]

    def forward_levels(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The logits at full resolution, then (with ``deep_supervision``) at each coarser decoder
        level, finest first: level k is 2**k times smaller than the input (padded to
        ``size_divisor`` and cropped back)."""
        padded, size = self.pad(images)
        levels = self._levels(padded)
        out = []
        for k, logits in enumerate(levels):
            crop = (Ellipsis, *(slice(0, -(-n // 2**k)) for n in size))
            out.append(logits[crop])
        return out


@register_model("unet3d", adapter="volumes", predictor="volumes")
def unet3d(
    *,
    num_classes: int,
    in_channels: int = 1,
    depth: int = 3,
    base_width: int = 16,
    max_width: int = 256,
    deep_supervision: bool = False,
) -> UNet3D:
    """3-D U-Net (nnU-Net's stages: instance norm, leaky ReLU, strided convolutions) for volumes."""
    return UNet3D(
        num_classes=num_classes,
        in_channels=in_channels,
        depth=depth,
        base_width=base_width,
        max_width=max_width,
        deep_supervision=deep_supervision,
    )
