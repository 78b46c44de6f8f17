"""Panoptic-DeepLab: semantic logits, an instance-centre heatmap and centre offsets from one network.

Pixels of thing classes are grouped into instances by voting, through their predicted offsets, for
the nearest detected centre; no boxes, no proposals. Touching objects stay apart because each pixel
points at its own object's centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import resnet_backbone, resnet_channels, resnet_features
from .base import SegmentationModel, register_model
from .deeplab import ASPP

__all__ = ["PanopticDeepLab", "PanopticOutput", "PanopticPrediction", "group_instances", "panoptic_deeplab"]


class PanopticOutput(NamedTuple):
    """The three dense outputs, each at the input's full resolution."""

    semantic: torch.Tensor
    """(N, num_classes, H, W) class logits."""
    center: torch.Tensor
    """(N, 1, H, W) instance-centre heatmap (a Gaussian of peak 1 at each centre, in training)."""
    offset: torch.Tensor
    """(N, 2, H, W) (dy, dx) in pixels from each pixel to its instance's centre."""


class PanopticPrediction(NamedTuple):
    """One image's grouped prediction."""

    classes: torch.Tensor
    """(H, W) semantic class of each pixel."""
    instances: torch.Tensor
    """(H, W) 0 where no instance, k on instance k's pixels (1-based)."""
    categories: torch.Tensor
    """(K,) class of each instance (the one most of its pixels have)."""
    scores: torch.Tensor
    """(K,) centre heatmap peak times the instance's mean probability of its class."""


def _conv(cin: int, cout: int) -> nn.Sequential:
    # The paper's decoders use 5x5 depthwise-separable convolutions; on CPU their backward pass is
    # slower than a plain 3x3 convolution's (1.49 s against 1.13 s for a batch of 4 at 256x256).
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def _project(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Decoder(nn.Module):
    """ASPP at stride 16, then two up-sampling steps joined with stride-8 and stride-4 features."""

    def __init__(
        self, channels: tuple[int, int, int], width: int, skips: tuple[int, int], rates: tuple[int, int, int]
    ) -> None:
        super().__init__()
        c1, c2, c4 = channels
        self.aspp = ASPP(c4, width, rates)
        self.skip8 = _project(c2, skips[0])
        self.fuse8 = _conv(width + skips[0], width)
        self.skip4 = _project(c1, skips[1])
        self.fuse4 = _conv(width + skips[1], width)

    def forward(self, c1: torch.Tensor, c2: torch.Tensor, c4: torch.Tensor) -> torch.Tensor:
        x = self.aspp(c4)
        x = F.interpolate(x, size=c2.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse8(torch.cat([x, self.skip8(c2)], dim=1))
        x = F.interpolate(x, size=c1.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse4(torch.cat([x, self.skip4(c1)], dim=1))


def _head(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(_conv(cin, hidden), nn.Conv2d(hidden, cout, 1))


class PanopticDeepLab(SegmentationModel):
    """Panoptic-DeepLab (Cheng et al. 2020) on an atrous ResNet.

    Two decoders share the backbone (3x3 convolutions where the paper has 5x5 depthwise-separable
    ones, which train slower on CPU): the semantic decoder feeds the class logits, the instance
    decoder feeds the centre heatmap and the offsets. Both run ASPP on the stride-16 features and
    recover detail from the stride-8 and stride-4 features. The output is a
    :class:`PanopticOutput` in training and evaluation mode alike; the losses
    (``segscope.train.PanopticDeepLabLoss``) and the grouping (:func:`group_instances`) are apart.

    ``thing_classes`` are the semantic classes that are countable; ``center_sigma`` is the
    standard deviation, in pixels, of the training heatmap's Gaussians (small objects such as
    nuclei want a small one).
    """

    size_divisor = 16

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        thing_classes: Sequence[int] = (1,),
        backbone: str = "resnet18",
        decoder_width: int = 128,
        center_sigma: float = 8.0,
        weights_backbone: Any = None,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        things = [int(c) for c in thing_classes]
        if not things or any(not 0 <= c < num_classes for c in things):
            raise ValueError(
                f"thing_classes must be non-empty and within 0..{num_classes - 1}, got {things}"
            )
        if center_sigma <= 0:
            raise ValueError(f"center_sigma must be positive, got {center_sigma}")
        self.thing_classes = things
        self.center_sigma = float(center_sigma)
        self.backbone = resnet_backbone(
            backbone, in_channels=in_channels, weights=weights_backbone, dilate=(False, False, True)
        )
        c1, c2, _, c4 = resnet_channels(backbone)
        rates = (6, 12, 18)
        self.semantic_decoder = _Decoder((c1, c2, c4), decoder_width, (64, 32), rates)
        self.instance_decoder = _Decoder((c1, c2, c4), decoder_width, (32, 16), rates)
        self.semantic_head = _head(decoder_width, decoder_width, num_classes)
        self.center_head = _head(decoder_width, 32, 1)
        self.offset_head = _head(decoder_width, 32, 2)

    def forward_padded(self, images: torch.Tensor) -> PanopticOutput:
        c1, c2, _, c4 = resnet_features(self.backbone, images)
        semantic = self.semantic_head(self.semantic_decoder(c1, c2, c4))
        instance = self.instance_decoder(c1, c2, c4)
        size = images.shape[-2:]

        def up(x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

        # Offsets are regressed in full-resolution pixels, so up-sampling leaves their values alone.
        return PanopticOutput(up(semantic), up(self.center_head(instance)), up(self.offset_head(instance)))

    @torch.no_grad()
    def predict(
        self,
        images: torch.Tensor,
        *,
        center_threshold: float = 0.1,
        nms_kernel: int = 7,
        top_k: int = 400,
        min_area: int = 1,
    ) -> list[PanopticPrediction]:
        """Run the network and group each image's thing pixels (see :func:`group_instances`).

        Instances smaller than ``min_area`` pixels are dropped (their pixels keep their class but
        belong to no instance).
        """
        output = self(images)
        probs = output.semantic.softmax(1)
        found = []
        for n in range(images.shape[0]):
            instance_map, _, peaks = group_instances(
                probs[n], output.center[n], output.offset[n], thing_classes=self.thing_classes,
                center_threshold=center_threshold, nms_kernel=nms_kernel, top_k=top_k,
            )
            classes = probs[n].argmax(0)
            count = peaks.numel()
            flat = instance_map.flatten()
            area = torch.bincount(flat, minlength=count + 1)[1:]
            votes = torch.zeros((count + 1) * self.num_classes, device=flat.device)
            ones = torch.ones_like(flat, dtype=votes.dtype)
            votes.index_add_(0, flat * self.num_classes + classes.flatten(), ones)
            category = votes.view(count + 1, self.num_classes)[1:].argmax(1)
            own_prob = probs[n].flatten(1).gather(0, classes.flatten()[None])[0]
            mean_prob = torch.zeros(count + 1, device=flat.device).index_add_(0, flat, own_prob)[1:]
            mean_prob = mean_prob / area.clamp(min=1)
            keep = area >= max(min_area, 1)
            relabel = torch.zeros(count + 1, dtype=torch.int64, device=flat.device)
            relabel[1:][keep] = torch.arange(1, int(keep.sum()) + 1, device=flat.device)
            found.append(PanopticPrediction(
                classes, relabel[instance_map], category[keep], (peaks * mean_prob)[keep]
            ))
        return found


def group_instances(
    semantic: torch.Tensor,
    center: torch.Tensor,
    offset: torch.Tensor,
    *,
    thing_classes: Sequence[int],
    center_threshold: float = 0.1,
    nms_kernel: int = 7,
    top_k: int = 400,
    chunk: int = 1 << 16,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group one image's thing pixels into instances.

    Parameters
    ----------
    semantic : (C, H, W) tensor
        Class probabilities (or logits).
    center : (1, H, W) tensor
        Centre heatmap.
    offset : (2, H, W) tensor
        (dy, dx) from each pixel to its centre.
    thing_classes : sequence of int
        Classes whose pixels are grouped.
    center_threshold : float
        Smallest heatmap peak taken as a centre.
    nms_kernel : int
        Side of the max-pooling window that keeps one peak per neighbourhood.
    top_k : int
        Most centres kept, by heatmap value.
    chunk : int
        Pixels handled at once when matching pixels to centres (bounds memory).

    Returns
    -------
    instance_map : (H, W) int64 tensor
        0 for stuff pixels, k for the pixels voting for centre k (1-based).
    centers : (K, 2) tensor
        (row, col) of each centre.
    center_scores : (K,) tensor
        Heatmap value at each centre.
    """
    height, width = center.shape[-2:]
    heat = center.reshape(1, 1, height, width)
    pooled = F.max_pool2d(heat, nms_kernel, stride=1, padding=nms_kernel // 2)
    peaks = (heat == pooled) & (heat > center_threshold)
    values = heat[peaks]
    rows, cols = torch.nonzero(peaks[0, 0], as_tuple=True)
    if values.numel() > top_k:
        keep = torch.topk(values, top_k).indices
        values, rows, cols = values[keep], rows[keep], cols[keep]
    centers = torch.stack([rows, cols], dim=1).to(offset.dtype)
    instance_map = torch.zeros((height, width), dtype=torch.int64, device=semantic.device)
    classes = semantic.argmax(0)
    things = torch.zeros_like(classes, dtype=torch.bool)
    for c in thing_classes:
        things |= classes == int(c)
    if centers.numel() == 0 or not bool(things.any()):
        return instance_map, centers, values
    pixels = torch.nonzero(things.flatten(), as_tuple=True)[0]
    grid_r, grid_c = pixels // width, pixels % width
    flat = offset.reshape(2, -1)
    target_r = grid_r.to(offset.dtype) + flat[0, pixels]
    target_c = grid_c.to(offset.dtype) + flat[1, pixels]
    owners = torch.empty_like(pixels)
    for start in range(0, pixels.numel(), chunk):
        stop = start + chunk
        votes = torch.stack([target_r[start:stop], target_c[start:stop]], dim=1)
        owners[start:stop] = torch.cdist(votes, centers).argmin(1)
    instance_map.view(-1)[pixels] = owners + 1
    return instance_map, centers, values


@register_model("panoptic_deeplab", task="panoptic", adapter="centre_offsets")
def panoptic_deeplab(
    *,
    num_classes: int,
    in_channels: int = 3,
    thing_classes: Sequence[int] = (1,),
    backbone: str = "resnet18",
    decoder_width: int = 128,
    center_sigma: float = 8.0,
    weights_backbone: Any = None,
) -> PanopticDeepLab:
    """Panoptic-DeepLab (Cheng et al. 2020): classes, instance centres and offsets, grouped at inference."""
    return PanopticDeepLab(
        num_classes=num_classes,
        in_channels=in_channels,
        thing_classes=thing_classes,
        backbone=backbone,
        decoder_width=decoder_width,
        center_sigma=center_sigma,
        weights_backbone=weights_backbone,
    )
