"""StarDist: a U-Net that predicts, per pixel, an object probability and star-convex polygon distances.

Schmidt et al. (2018) describe each nucleus by the distances from a pixel inside it to its
boundary along ``n_rays`` directions (:mod:`segscope.star`). The network predicts, for every
pixel, how central it is in an object (a probability) and those distances; decoding keeps the
most central pixels' polygons through non-maximum suppression. Touching, crowded round objects
come apart because every object is proposed from its own centre.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..star import grid_pixels
from .base import SegmentationModel, register_model
from .unet import UNet

__all__ = ["StarDist", "StarOutput", "stardist"]


class StarOutput(NamedTuple):
    """A StarDist network's output, at the input's size."""

    probability: torch.Tensor
    """(N, 1, H, W) object-probability logits (apply a sigmoid for probabilities)."""
    distances: torch.Tensor
    """(N, n_rays, H, W) distances to the object's boundary along each ray, in pixels."""


class StarDist(SegmentationModel):
    """A U-Net trunk, a 3x3 feature layer, and two 1x1 heads: object probability and ray distances."""

    def __init__(
        self, *, num_classes: int = 1, in_channels: int = 1, n_rays: int = 32, base_width: int = 32,
        depth: int = 3, head_width: int = 128, grid: int = 1,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if num_classes != 1:
            raise ValueError(f"stardist segments one object class; num_classes must be 1, got {num_classes}")
        if n_rays < 3:
            raise ValueError(f"n_rays must be at least 3, got {n_rays}")
        if grid not in (1, 2, 4):
            raise ValueError(f"grid must be 1, 2 or 4, got {grid}")
        self.n_rays = n_rays
        self.grid = grid
        # StarDist's grid: one full-resolution convolution, then the U-Net and the heads run on a
        # grid of ``grid`` pixels (4x less work at 2), and the maps are resized back to the input.
        self.stem = nn.Sequential(nn.Conv2d(in_channels, base_width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(grid)) if grid > 1 else nn.Identity()
        trunk_in = base_width if grid > 1 else in_channels
        self.trunk = UNet(num_classes=base_width, in_channels=trunk_in, depth=depth, base_width=base_width)
        self.size_divisor = self.trunk.size_divisor * grid
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(base_width, head_width, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.probability = nn.Conv2d(head_width, 1, 1)
        self.distances = nn.Conv2d(head_width, n_rays, 1)

    def _on_grid(self, images: torch.Tensor) -> StarOutput:
        features = self.features(self.trunk(self.stem(images)))
        return StarOutput(self.probability(features), self.distances(features))

    def forward_grid(self, images: torch.Tensor) -> StarOutput:
        """The heads on the grid, unresized: (N, ., h, w) for the input pixels
        :func:`~segscope.star.grid_pixels` picks (h = ceil((H - grid // 2) / grid)). Training
        compares them with targets taken at those pixels, as StarDist does: a quarter of the
        pixels at a grid of 2, and no resizing to differentiate."""
        padded, size = self.pad(images)
        output = self._on_grid(padded)
        rows, cols = (len(range(n)[s]) for n, s in zip(size, grid_pixels(self.grid), strict=True))
        return StarOutput(*(t[..., :rows, :cols] for t in output))

    def forward_padded(self, images: torch.Tensor) -> StarOutput:
        output = self._on_grid(images)
        if self.grid == 1:
            return output
        # Grid cell k stands for pixel grid * k + grid // 2 (grid_pixels): interpolate linearly
        # between those pixels (corners aligned), and hold the edge values beyond them.
        g, first = self.grid, self.grid // 2
        cells = output.probability.shape[-2:]
        size = [g * (n - 1) + 1 for n in cells]
        pads = [first, g - 1 - first, first, g - 1 - first]
        return StarOutput(*(F.pad(F.interpolate(t, size=size, mode="bilinear", align_corners=True), pads,
                                  mode="replicate") for t in output))


@register_model("stardist", task="instance", adapter="star_polygons", predictor="star_polygons")
def stardist(
    *, num_classes: int = 1, in_channels: int = 1, n_rays: int = 32, base_width: int = 32, depth: int = 3,
    head_width: int = 128, grid: int = 1,
) -> StarDist:
    """StarDist (Schmidt et al. 2018): star-convex polygons for round objects such as nuclei."""
    return StarDist(num_classes=num_classes, in_channels=in_channels, n_rays=n_rays, base_width=base_width,
                    depth=depth, head_width=head_width, grid=grid)
