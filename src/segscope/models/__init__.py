"""Deep segmentation networks (needs ``segscope[deep]``: torch and torchvision).

Plain ``torch.nn.Module`` s with lowercase builders and a registry::

    from segscope.models import list_models, get_model
    model = get_model("unet", num_classes=2, in_channels=1)
    logits = model(images)          # (N, num_classes, H, W) for any H, W, in train and eval mode

Builders take keyword-only options and never touch the network: backbones start untrained
(``weights_backbone=None``) unless given a local state-dict file or a torchvision weights enum.
"""

from . import deeplab, fcn, segformer, unet, vit  # noqa: F401  (registers the models)
from .base import ModelInfo, SegmentationModel, get_model, get_model_info, list_models, register_model

__all__ = [
    "ModelInfo",
    "SegmentationModel",
    "get_model",
    "get_model_info",
    "list_models",
    "register_model",
]
