"""Trained models as methods: checkpoints and exported ONNX files (needs ``segscope[deep]``)."""

from .segmenter import Segmenter, export_onnx, gaussian_weight, segmenter_for, sliding_window, tile_starts

__all__ = ["Segmenter", "export_onnx", "gaussian_weight", "segmenter_for", "sliding_window", "tile_starts"]
