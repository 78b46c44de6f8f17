"""Training deep models on labelled image folders (needs ``segscope[deep]``)."""

from .checkpoint import load_checkpoint, save_checkpoint
from .data import Augment, LabelledFolder, pair_by_stem
from .engine import TrainConfig, TrainResult, evaluate_model, train
from .instances import InstanceFolder, PanopticDeepLabLoss, instance_sources
from .losses import SegmentationLoss, median_frequency_weights

__all__ = [
    "Augment",
    "InstanceFolder",
    "LabelledFolder",
    "PanopticDeepLabLoss",
    "SegmentationLoss",
    "TrainConfig",
    "TrainResult",
    "evaluate_model",
    "instance_sources",
    "load_checkpoint",
    "median_frequency_weights",
    "pair_by_stem",
    "save_checkpoint",
    "train",
]
