"""Trained models as methods: checkpoints and exported ONNX files (needs ``segscope[deep]``)."""

from .instances import InstanceSegmenter
from .segmenter import (
    Segmenter,
    export_onnx,
    gaussian_weight,
    load_segmenter,
    segmenter_for,
    sliding_window,
    tile_starts,
)

__all__ = [
    "InstanceSegmenter",
    "Segmenter",
    "export_onnx",
    "gaussian_weight",
    "load_segmenter",
    "segmenter_for",
    "sliding_window",
    "tile_starts",
]
