"""FCN-8s: score maps from three depths fused by learned up-sampling (Long et al. 2015)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .backbones import resnet_backbone, resnet_channels, resnet_features
from .base import SegmentationModel, register_model

__all__ = ["FCN8s", "fcn"]


def _bilinear_kernel(channels: int, size: int) -> torch.Tensor:
    """Weights that make a transposed convolution start as bilinear interpolation (as in the paper)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    grid = torch.arange(size, dtype=torch.float32)
    filt = 1 - (grid - center).abs() / factor
    kernel = filt[:, None] * filt[None, :]
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = kernel
    return weight


def _upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(_bilinear_kernel(channels, 2 * factor))
    return up


class FCN8s(SegmentationModel):
    """FCN-8s on a ResNet: class scores at strides 32, 16 and 8, each up-sampled 2x and added to the
    next, then up-sampled 8x, all by learned transposed convolutions initialised as bilinear."""

    size_divisor = 32

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        backbone: str = "resnet18",
        weights_backbone: Any = None,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.backbone = resnet_backbone(backbone, in_channels=in_channels, weights=weights_backbone)
        _, c2, c3, c4 = resnet_channels(backbone)
        self.score32 = nn.Conv2d(c4, num_classes, 1)
        self.score16 = nn.Conv2d(c3, num_classes, 1)
        self.score8 = nn.Conv2d(c2, num_classes, 1)
        for score in (self.score16, self.score8):  # skip scores start at zero, as in the paper
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        self.up32 = _upsampler(num_classes, 2)
        self.up16 = _upsampler(num_classes, 2)
        self.up8 = _upsampler(num_classes, 8)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        _, c2, c3, c4 = resnet_features(self.backbone, images)
        x = self.up32(self.score32(c4)) + self.score16(c3)
        x = self.up16(x) + self.score8(c2)
        return self.up8(x)


@register_model("fcn")
def fcn(
    *, num_classes: int, in_channels: int = 3, backbone: str = "resnet18", weights_backbone: Any = None
) -> FCN8s:
    """FCN-8s (Long et al. 2015) on a torchvision ResNet: three score maps fused by learned up-sampling."""
    return FCN8s(
        num_classes=num_classes, in_channels=in_channels, backbone=backbone, weights_backbone=weights_backbone
    )
