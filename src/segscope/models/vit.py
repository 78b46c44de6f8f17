"""A plain Vision Transformer encoder with a progressive up-sampling decoder (SETR-PUP)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import SegmentationModel, register_model

__all__ = ["ViTSegmenter", "vit"]


class ViTSegmenter(SegmentationModel):
    """SETR-PUP (Zheng et al. 2021): non-overlapping patches, a transformer encoder at one scale,
    then 2x up-sampling steps (3x3 convolution, batch norm, ReLU) back to full resolution.

    Position embeddings are learned for a ``base_grid`` of patches and interpolated to the grid
    of each input, so any image size works.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        patch_size: int = 16,
        dim: int = 256,
        depth: int = 6,
        heads: int = 8,
        decoder_width: int = 128,
        base_grid: int = 16,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if patch_size not in (4, 8, 16, 32):
            raise ValueError(f"patch_size must be 4, 8, 16 or 32, got {patch_size}")
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.size_divisor = patch_size
        self.patch = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.position = nn.Parameter(torch.zeros(1, dim, base_grid, base_grid))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        steps = {4: 2, 8: 3, 16: 4, 32: 5}[patch_size]
        widths = [dim] + [decoder_width] * steps
        self.decoder = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[k], widths[k + 1], 3, padding=1, bias=False),
                nn.BatchNorm2d(widths[k + 1]),
                nn.ReLU(inplace=True),
            )
            for k in range(steps)
        )
        self.head = nn.Conv2d(decoder_width, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch(images)
        n, dim, h, w = x.shape
        position = F.interpolate(self.position, size=(h, w), mode="bicubic", align_corners=False)
        tokens = self.norm(self.encoder((x + position).flatten(2).transpose(1, 2)))
        x = tokens.transpose(1, 2).reshape(n, dim, h, w)
        for step in self.decoder:
            x = F.interpolate(step(x), scale_factor=2, mode="bilinear", align_corners=False)
        return self.head(x)


@register_model("vit")
def vit(
    *,
    num_classes: int,
    in_channels: int = 3,
    patch_size: int = 16,
    dim: int = 256,
    depth: int = 6,
    heads: int = 8,
) -> ViTSegmenter:
    """Vision Transformer encoder with SETR's progressive up-sampling decoder (Zheng et al. 2021)."""
    return ViTSegmenter(
        num_classes=num_classes,
        in_channels=in_channels,
        patch_size=patch_size,
        dim=dim,
        depth=depth,
        heads=heads,
    )
