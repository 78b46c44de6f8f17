"""torchvision backbones with any number of input channels and optional atrous (dilated) stages."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["load_weights", "resnet_backbone"]

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")


def load_weights(module: nn.Module, weights: Any, *, what: str) -> None:
    """Load ``weights`` into ``module``: a local state-dict file, or a torchvision weights enum.

    A local file is read with ``weights_only=True`` (no code runs from it). A torchvision enum
    (for example ``ResNet18_Weights.IMAGENET1K_V1``, or its name as a string) downloads through
    torchvision on first use: that is the only path that touches the network, and only when asked.
    """
    if weights is None:
        return
    if isinstance(weights, (str, os.PathLike)) and Path(weights).exists():
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    elif hasattr(weights, "get_state_dict"):
        state = weights.get_state_dict(progress=True)
    else:
        raise ValueError(
            f"{what} weights {weights!r}: neither an existing file nor a torchvision weights enum"
        )
    missing, unexpected = module.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith("fc.")]
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise ValueError(f"{what} weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")


def _adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """The same first convolution for another number of input channels.

    Pretrained RGB filters are averaged and repeated, scaled by 3 / in_channels, so a grey or
    multi-band input starts from the same response a colour image would give.
    """
    if in_channels == conv.in_channels:
        return conv
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
    )
    with torch.no_grad():
        mean = conv.weight.mean(dim=1, keepdim=True)
        new.weight.copy_(mean.repeat(1, in_channels, 1, 1) * (conv.in_channels / in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _dilate(stage: nn.Module, dilation: int) -> None:
    """Replace a stage's stride by dilation (atrous convolution), keeping its receptive field."""
    for module in stage.modules():
        if isinstance(module, nn.Conv2d):
            if module.stride == (2, 2):
                module.stride = (1, 1)
            if module.kernel_size == (3, 3):
                module.dilation = (dilation, dilation)
                module.padding = (dilation, dilation)


def resnet_backbone(
    name: str,
    *,
    in_channels: int,
    weights: Any = None,
    dilate: tuple[bool, bool, bool] = (False, False, False),
) -> nn.Module:
    """A torchvision ResNet without its classifier; ``dilate`` turns layer2..4 atrous."""
    import torchvision.models as tvm

    if name not in RESNETS:
        raise ValueError(f"backbone must be one of {RESNETS}, got {name!r}")
    net = getattr(tvm, name)(weights=None)
    if isinstance(weights, str) and not Path(weights).exists():
        # A weights name such as "DEFAULT" or "IMAGENET1K_V1": resolve it with torchvision.
        enum = tvm.get_model_weights(name)
        if weights == "DEFAULT":
            weights = enum.DEFAULT
        elif weights in enum.__members__:
            weights = enum[weights]
        else:
            raise ValueError(
                f"{name} weights {weights!r}: neither an existing file nor a torchvision weights name "
                f"({', '.join(['DEFAULT', *enum.__members__])})"
            )
    load_weights(net, weights, what=name)
    net.conv1 = _adapt_first_conv(net.conv1, in_channels)
    dilation = 1
    for stage, on in zip((net.layer2, net.layer3, net.layer4), dilate, strict=True):
        if on:
            dilation *= 2
            _dilate(stage, dilation)
    net.fc = nn.Identity()
    net.avgpool = nn.Identity()
    return net


def resnet_features(net: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of the stem and of layer1..4 (strides 4, 4, 8, 16, 32 without dilation)."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
    c1 = net.layer1(x)
    c2 = net.layer2(c1)
    c3 = net.layer3(c2)
    c4 = net.layer4(c3)
    return [c1, c2, c3, c4]


def resnet_channels(name: str) -> tuple[int, int, int, int]:
    return (64, 128, 256, 512) if name in ("resnet18", "resnet34") else (256, 512, 1024, 2048)
