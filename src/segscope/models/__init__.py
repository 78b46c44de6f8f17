"""Deep segmentation networks (needs ``segscope[deep]``: torch and torchvision).

Plain ``torch.nn.Module`` s with lowercase builders and a registry::

    from segscope.models import list_models, get_model
    model = get_model("unet", num_classes=2, in_channels=1)
    logits = model(images)          # (N, num_classes, H, W) for any H, W, in train and eval mode

``get_model_info(name).task`` says what a model predicts: semantic logits, instance detections
(``maskrcnn``: a list of dicts) or panoptic heads (``panoptic_deeplab``: a ``PanopticOutput``).
Each returns the same type in training and evaluation mode; losses are computed apart.

Builders take keyword-only options and never touch the network: backbones start untrained
(``weights_backbone=None``) unless given a local state-dict file or a torchvision weights enum.
"""

from . import (  # noqa: F401  (registers them)
    clicks,
    deeplab,
    fcn,
    maskrcnn,
    panoptic_deeplab,
    rcf,
    segformer,
    stardist,
    swiftnet,
    unet,
    unet3d,
    vit,
)
from .base import (
    ModelInfo,
    SegmentationModel,
    fuse_batch_norms,
    get_model,
    get_model_info,
    list_models,
    on_device,
    register_model,
)
from .maskrcnn import MaskRCNN
from .panoptic_deeplab import PanopticDeepLab, PanopticOutput, PanopticPrediction, group_instances

__all__ = [
    "MaskRCNN",
    "ModelInfo",
    "PanopticDeepLab",
    "PanopticOutput",
    "PanopticPrediction",
    "SegmentationModel",
    "fuse_batch_norms",
    "get_model",
    "get_model_info",
    "group_instances",
    "list_models",
    "on_device",
    "register_model",
]
