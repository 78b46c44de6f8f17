"""DeepLabv3+: atrous backbone, ASPP with image pooling, and a decoder with a low-level skip."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import resnet_backbone, resnet_channels, resnet_features
from .base import SegmentationModel, register_model

__all__ = ["ASPP", "DeepLabV3Plus", "deeplabv3plus"]


def _conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = 0 if kernel == 1 else dilation
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, three atrous 3x3 branches and image pooling."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, int, int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv_bn_relu(cin, cout)] + [_conv_bn_relu(cin, cout, 3, r) for r in rates]
        )
        # No batch norm after global pooling: a 1x1 map has nothing to normalise over at batch 1.
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(_conv_bn_relu(5 * cout, cout), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pooling(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))


class DeepLabV3Plus(SegmentationModel):
    """DeepLabv3+ (Chen et al. 2018) on a ResNet whose last stages are atrous.

    ``output_stride`` 16 dilates layer4 and uses ASPP rates (6, 12, 18); 8 dilates layer3 and
    layer4 and doubles the rates. The decoder joins the up-sampled ASPP output with the stride-4
    features (reduced to 48 channels) and refines them with two 3x3 convolutions.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        backbone: str = "resnet18",
        output_stride: int = 16,
        weights_backbone: Any = None,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        dilate = (False, False, True) if output_stride == 16 else (False, True, True)
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.size_divisor = 16 if output_stride == 16 else 8
        self.backbone = resnet_backbone(
            backbone, in_channels=in_channels, weights=weights_backbone, dilate=dilate
        )
        c1, _, _, c4 = resnet_channels(backbone)
        self.aspp = ASPP(c4, 256, rates)
        self.reduce = _conv_bn_relu(c1, 48)
        self.decoder = nn.Sequential(_conv_bn_relu(256 + 48, 256, 3), _conv_bn_relu(256, 256, 3))
        self.head = nn.Conv2d(256, num_classes, 1)

    def forward_padded(self, images: torch.Tensor) -> torch.Tensor:
        c1, _, _, c4 = resnet_features(self.backbone, images)
        x = F.interpolate(self.aspp(c4), size=c1.shape[-2:], mode="bilinear", align_corners=False)
        x = self.head(self.decoder(torch.cat([x, self.reduce(c1)], dim=1)))
        return F.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)


@register_model("deeplabv3plus")
def deeplabv3plus(
    *,
    num_classes: int,
    in_channels: int = 3,
    backbone: str = "resnet18",
    output_stride: int = 16,
    weights_backbone: Any = None,
) -> DeepLabV3Plus:
    """DeepLabv3+ (Chen et al. 2018): atrous ResNet, ASPP with image pooling, low-level decoder."""
    return DeepLabV3Plus(
        num_classes=num_classes,
        in_channels=in_channels,
        backbone=backbone,
        output_stride=output_stride,
        weights_backbone=weights_backbone,
    )
