"""Ground truth drawn by several people for one image (BSDS500 gives five or so per image)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .result import Segmentation

__all__ = ["BsdsGroundTruth"]


@dataclass
class BsdsGroundTruth:
    """The human segmentations of one image: one region result and one boundary map per annotator.

    It is a sequence of its segmentations, so a metric that takes several truths takes it as is.
    """

    segmentations: list[Segmentation]
    boundaries: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.segmentations)

    def __iter__(self) -> Iterator[Segmentation]:
        return iter(self.segmentations)

    def __getitem__(self, index: int) -> Segmentation:
        return self.segmentations[index]
