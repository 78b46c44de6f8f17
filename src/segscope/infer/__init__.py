"""Trained models as methods: checkpoints and exported ONNX files (needs ``segscope[deep]``)."""

from .boundaries import BoundaryPredictor
from .instances import CentrePredictor, DetectionPredictor, InstanceSegmenter
from .loading import load_predictor, predictor_for
from .predictor import Predictor, normalise_image
from .segmenter import Segmenter, export_onnx, gaussian_weight, sliding_window, tile_starts
from .volumes import VolumeSegmenter, normalise_volume

__all__ = [
    "BoundaryPredictor",
    "CentrePredictor",
    "DetectionPredictor",
    "InstanceSegmenter",
    "Predictor",
    "Segmenter",
    "VolumeSegmenter",
    "export_onnx",
    "gaussian_weight",
    "load_predictor",
    "normalise_image",
    "normalise_volume",
    "predictor_for",
    "sliding_window",
    "tile_starts",
]
