"""Training deep models on labelled image folders (needs ``segscope[deep]``)."""

from ..trainconfig import DataConfig, ModelConfig, OptimConfig, ScheduleConfig, TrainConfig
from .adapters import Prepared, TaskAdapter, get_adapter, register_adapter
from .boundaries import BoundaryAdapter  # noqa: F401  (registers the edge-network adapter)
from .checkpoint import load_checkpoint, save_checkpoint
from .clicks import ClickAdapter  # noqa: F401  (registers the click-model adapter)
from .data import Augment, LabelledFolder, pair_by_stem
from .engine import TrainResult, evaluate_model, train
from .instances import InstanceFolder, PanopticDeepLabLoss, instance_sources
from .losses import SegmentationLoss, median_frequency_weights
from .star import StarPolygonAdapter  # noqa: F401  (registers the star-convex polygon adapter)
from .volumes import VolumeAdapter  # noqa: F401  (registers the 3-D adapter)

__all__ = [
    "Augment",
    "DataConfig",
    "InstanceFolder",
    "LabelledFolder",
    "ModelConfig",
    "OptimConfig",
    "PanopticDeepLabLoss",
    "Prepared",
    "ScheduleConfig",
    "SegmentationLoss",
    "TaskAdapter",
    "TrainConfig",
    "TrainResult",
    "evaluate_model",
    "get_adapter",
    "instance_sources",
    "load_checkpoint",
    "median_frequency_weights",
    "pair_by_stem",
    "register_adapter",
    "save_checkpoint",
    "train",
]
