"""SegFormer: a hierarchical transformer encoder (Mix Transformer) with an all-MLP decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import SegmentationModel, register_model

__all__ = ["SEGFORMER_VARIANTS", "SegFormer", "segformer"]

# Per variant: stage widths, blocks per stage, attention heads, decoder width (Xie et al. 2021, Table 6).
SEGFORMER_VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]] = {
    "b0": ((32, 64, 160, 256), (2, 2, 2, 2), (1, 2, 5, 8), 256),
    "b1": ((64, 128, 320, 512), (2, 2, 2, 2), (1, 2, 5, 8), 256),
    "b2": ((64, 128, 320, 512), (3, 4, 6, 3), (1, 2, 5, 8), 768),
}
REDUCTION = (8, 4, 2, 1)  # spatial reduction of keys and values, per stage


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch merging: a strided convolution larger than its stride, then layer norm."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(cout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientAttention(nn.Module):
    """Self-attention whose keys and values come from a map reduced ``ratio`` times per side."""

    def __init__(self, dim: int, heads: int, ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ratio = ratio
        if ratio > 1:
            self.reduce = nn.Conv2d(dim, dim, ratio, stride=ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, tokens, dim = x.shape
        q = self.q(x).reshape(n, tokens, self.heads, dim // self.heads).transpose(1, 2)
        if self.ratio > 1:
            grid = x.transpose(1, 2).reshape(n, dim, h, w)
            x = self.norm(self.reduce(grid).flatten(2).transpose(1, 2))
        k, v = self.kv(x).reshape(n, -1, 2, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, tokens, dim))


class MixFFN(nn.Module):
    """Feed-forward with a depthwise 3x3 convolution, which gives position without position codes."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.fc1(x)
        n, _, c = x.shape
        x = self.dw(x.transpose(1, 2).reshape(n, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientAttention(dim, heads, ratio)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, 4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x), h, w)


class SegFormer(SegmentationModel):
    """SegFormer (Xie et al. 2021): four transformer stages at strides 4 to 32; the decoder projects
    each to one width, up-samples to stride 4, concatenates, fuses and classifies."""

    size_divisor = 32

    def __init__(self, *, num_classes: int, in_channels: int = 3, variant: str = "b0") -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if variant not in SEGFORMER_VARIANTS:
            raise ValueError(f"variant must be one of {sorted(SEGFORMER_VARIANTS)}, got {variant!r}")
        dims, depths, heads, decoder = SEGFORMER_VARIANTS[variant]
        self.embeds = nn.ModuleList()
        self.stages = nn.ModuleList()
        self.norms = nn.ModuleList()
        cin = in_channels
        for k in range(4):
            kernel, stride = (7, 4) if k == 0 else (3, 2)
            self.embeds.append(OverlapPatchEmbed(cin, dims[k], kernel, stride))
            blocks = (Block(dims[k], heads[k], REDUCTION[k]) for _ in range(depths[k]))
            self.stages.append(nn.ModuleList(blocks))
            self.norms.append(nn.LayerNorm(dims[k]))
            cin = dims[k]
        self.project = nn.ModuleList(nn.Linear(d, decoder) for d in dims)
        self.fuse = nn.Sequential(
            nn.Conv2d(4 * decoder, decoder, 1, bias=False), nn.BatchNorm2d(decoder), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Conv2d(decoder, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        features = []
        x = images
        for embed, blocks, norm in zip(self.embeds, self.stages, self.norms, strict=True):
            tokens, h, w = embed(x)
            for block in blocks:
                tokens = block(tokens, h, w)
            x = norm(tokens).transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
            features.append(x)
        size = features[0].shape[-2:]
        merged = []
        for proj, f in zip(self.project, features, strict=True):
            tokens = proj(f.flatten(2).transpose(1, 2))
            projected = tokens.transpose(1, 2).reshape(f.shape[0], -1, *f.shape[-2:])
            merged.append(F.interpolate(projected, size=size, mode="bilinear", align_corners=False))
        x = self.head(self.dropout(self.fuse(torch.cat(merged[::-1], dim=1))))
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)


@register_model("segformer")
def segformer(*, num_classes: int, in_channels: int = 3, variant: str = "b0") -> SegFormer:
    """SegFormer (Xie et al. 2021): Mix Transformer encoder (b0, b1, b2) with an all-MLP decoder."""
    return SegFormer(num_classes=num_classes, in_channels=in_channels, variant=variant)
