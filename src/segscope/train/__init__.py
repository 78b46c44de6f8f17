"""Training deep models on labelled image folders (needs ``segscope[deep]``)."""

from .checkpoint import load_checkpoint, save_checkpoint
from .data import Augment, LabelledFolder, pair_by_stem
from .engine import TrainConfig, TrainResult, evaluate_model, train
from .losses import SegmentationLoss, median_frequency_weights

__all__ = [
    "Augment",
    "LabelledFolder",
    "SegmentationLoss",
    "TrainConfig",
    "TrainResult",
    "evaluate_model",
    "load_checkpoint",
    "median_frequency_weights",
    "pair_by_stem",
    "save_checkpoint",
    "train",
]
