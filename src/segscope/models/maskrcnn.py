"""Mask R-CNN on torchvision's detection framework (its RPN, RoIAlign and heads, not rewritten).

torchvision's model returns losses in training mode and detections in evaluation mode. The wrapper
here separates the two: ``model(images)`` always returns detections, ``model.losses(images,
targets)`` always returns the loss dict, whatever the mode; the mode only governs batch norm.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backbones import RESNETS, _adapt_first_conv, load_weights
from .base import register_model

__all__ = ["BACKBONES", "MaskRCNN", "maskrcnn"]

BACKBONES = (*tuple(f"{name}_fpn" for name in RESNETS), "mobilenet_v3_fpn")
Detections = list[dict[str, torch.Tensor]]


def _keep_size_transform(transform: nn.Module) -> nn.Module:
    """Make torchvision's transform leave image sizes alone (it still batches and pads them)."""

    def resize(image: torch.Tensor, target: dict[str, torch.Tensor] | None = None) -> Any:
        return image, target

    transform.resize = resize
    return transform


def _backbone(name: str, in_channels: int, weights_backbone: Any) -> tuple[nn.Module, list[str]]:
    """A feature pyramid on a torchvision classifier, and the names of the levels RoIAlign reads."""
    import torchvision.models as tvm
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor
    from torchvision.ops import misc

    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {name!r}")
    # Frozen batch norm only makes sense on pretrained statistics; from scratch it must learn.
    norm = misc.FrozenBatchNorm2d if weights_backbone is not None else nn.BatchNorm2d
    if name.startswith("resnet"):
        body = getattr(tvm, name.removesuffix("_fpn"))(weights=None, norm_layer=norm)
        load_weights(body, weights_backbone, what=name)
        body.conv1 = _adapt_first_conv(body.conv1, in_channels)
        return _resnet_fpn_extractor(body, 5), ["0", "1", "2", "3"]
    body = tvm.mobilenet_v3_large(weights=None, norm_layer=norm)
    load_weights(body, weights_backbone, what=name)
    first = body.features[0][0]
    body.features[0][0] = _adapt_first_conv(first, in_channels)
    stages = [0] + [i for i, b in enumerate(body.features) if getattr(b, "_is_cn", False)]
    stages.append(len(body.features) - 1)
    # Strides 8, 16 and 32: the default pyramid (16 and 32 only) misses small objects.
    returned = [len(stages) - 3, len(stages) - 2, len(stages) - 1]
    pyramid = _mobilenet_extractor(body, True, len(stages), returned_layers=returned)
    return pyramid, ["0", "1", "2"]


class MaskRCNN(nn.Module):
    """Mask R-CNN (He et al. 2017): region proposals, RoIAlign, box and mask heads, on an FPN.

    Parameters
    ----------
    num_classes : int
        Object categories, background not counted; detections carry ``labels`` 0..num_classes-1.
    in_channels : int
        Input bands; the first convolution is adapted, pretrained filters averaged.
    backbone : str
        ``"resnet50_fpn"`` (the paper's), ``"resnet18_fpn"``, ``"resnet34_fpn"``, ``"resnet101_fpn"``
        or ``"mobilenet_v3_fpn"`` (light).
    anchor_sizes : sequence of int, optional
        One anchor size per pyramid level, in input pixels (default 32, 64, 128, 256, 512; nuclei
        want 8 to 128).
    input_size : int or None
        Shorter side images are resized to; None keeps every image at its own size.
    max_size : int
        Longest side allowed after that resize (torchvision's rule; unused when ``input_size`` is
        None).
    proposals : int
        Region proposals kept per image, before and after the RPN's non-maximum suppression, in
        training and inference (torchvision: 2000 in training, 1000 in inference). The box head
        runs once per proposal, so this sets most of the cost of a step.
    max_detections : int
        Most detections per image.
    score_threshold : float
        Detections scoring below this are dropped.
    weights : str or torchvision weights, optional
        A local state-dict file, or (for ``resnet50_fpn``) a ``MaskRCNN_ResNet50_FPN_Weights``
        name such as ``"DEFAULT"``, which torchvision downloads. Layers whose shapes differ (the
        class-specific predictors) are left as built.
    weights_backbone : str or torchvision weights, optional
        Weights of the classifier under the pyramid.
    """

    memory_format = torch.contiguous_format
    """As :class:`~segscope.models.SegmentationModel` declares; torchvision's detection heads
    (RoIAlign, box and mask heads) were not measured in channels last, so they keep the default."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 3,
        backbone: str = "resnet50_fpn",
        anchor_sizes: Sequence[int] | None = None,
        input_size: int | None = 800,
        max_size: int = 1333,
        proposals: int = 1000,
        max_detections: int = 100,
        score_threshold: float = 0.05,
        weights: Any = None,
        weights_backbone: Any = None,
    ) -> None:
        super().__init__()
        from torchvision.models.detection import MaskRCNN as TorchvisionMaskRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.ops import MultiScaleRoIAlign

        if num_classes < 1 or in_channels < 1 or proposals < 1:
            raise ValueError(
                f"num_classes, in_channels and proposals must be positive, "
                f"got {num_classes}, {in_channels}, {proposals}"
            )
        features, levels = _backbone(backbone, in_channels, weights_backbone)
        count = len(levels) + 1  # the FPN adds a pooled level above the last
        sizes = tuple(anchor_sizes) if anchor_sizes is not None else (32, 64, 128, 256, 512)[:count]
        if len(sizes) != count:
            raise ValueError(
                f"{backbone} has {count} pyramid levels; give {count} anchor sizes, got {list(sizes)}"
            )
        anchors = AnchorGenerator(tuple((int(s),) for s in sizes), ((0.5, 1.0, 2.0),) * count)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.config: dict[str, Any] = {}
        self.detector = TorchvisionMaskRCNN(
            features,
            num_classes=num_classes + 1,
            min_size=input_size or 1,
            max_size=max_size,
            image_mean=[0.0] * in_channels,  # images arrive normalised
            image_std=[1.0] * in_channels,
            rpn_anchor_generator=anchors,
            rpn_pre_nms_top_n_train=proposals,
            rpn_post_nms_top_n_train=proposals,
            rpn_pre_nms_top_n_test=proposals,
            rpn_post_nms_top_n_test=proposals,
            box_roi_pool=MultiScaleRoIAlign(levels, output_size=7, sampling_ratio=2),
            mask_roi_pool=MultiScaleRoIAlign(levels, output_size=14, sampling_ratio=2),
            box_detections_per_img=max_detections,
            box_score_thresh=score_threshold,
        )
        if input_size is None:
            _keep_size_transform(self.detector.transform)
        if weights is not None:
            self._load(weights, backbone)

    def _load(self, weights: Any, backbone: str) -> None:
        if isinstance(weights, str) and not Path(weights).exists():
            if backbone != "resnet50_fpn":
                raise ValueError(f"torchvision's pretrained Mask R-CNN weights need backbone resnet50_fpn, "
                                 f"not {backbone}")
            from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights as Enum

            if weights != "DEFAULT" and weights not in Enum.__members__:
                raise ValueError(f"Mask R-CNN weights {weights!r}: neither an existing file nor one of "
                                 f"{['DEFAULT', *Enum.__members__]}")
            weights = Enum.DEFAULT if weights == "DEFAULT" else Enum[weights]
        if isinstance(weights, str | Path):
            state = torch.load(Path(weights), map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
        else:
            state = weights.get_state_dict(progress=True)
        own = self.detector.state_dict()
        prefix = "detector." if any(k.startswith("detector.") for k in state) else ""
        state = {k.removeprefix(prefix): v for k, v in state.items()}
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not fitting:
            raise ValueError(f"Mask R-CNN weights {weights!r}: no layer fits this model")
        self.detector.load_state_dict(fitting, strict=False)

    def _run(self, images: torch.Tensor | Sequence[torch.Tensor], targets: Any, want_losses: bool) -> Any:
        detector = self.detector
        parts = (detector.rpn, detector.roi_heads, detector.transform)
        modes = [part.training for part in parts]
        for part in parts:  # these flags choose losses or detections; batch norm keeps its own mode
            part.training = want_losses
        try:
            batch = list(images)
            for image in batch:
                if image.ndim != 3 or image.shape[0] != self.in_channels:
                    raise ValueError(
                        f"expected images of shape ({self.in_channels}, H, W), got {tuple(image.shape)}"
                    )
            original = [tuple(image.shape[-2:]) for image in batch]
            padded, targets = detector.transform(batch, targets)
            features = detector.backbone(padded.tensors)
            proposals, rpn_losses = detector.rpn(padded, features, targets)
            detections, head_losses = detector.roi_heads(features, proposals, padded.image_sizes, targets)
            if want_losses:
                return {**rpn_losses, **head_losses}
            # Pastes the masks into full images (it does nothing while the transform is training).
            detections = detector.transform.postprocess(detections, padded.image_sizes, original)
        finally:
            for part, mode in zip(parts, modes, strict=True):
                part.training = mode
        for found in detections:
            found["labels"] = found["labels"] - 1  # back to 0-based categories
        return detections

    def forward(self, images: torch.Tensor | Sequence[torch.Tensor]) -> Detections:
        """Detections per image: ``boxes`` (x0, y0, x1, y1), ``labels``, ``scores`` and ``masks``
        ((K, 1, H, W) probabilities), in training and evaluation mode alike."""
        return self._run(images, None, want_losses=False)

    def losses(
        self, images: torch.Tensor | Sequence[torch.Tensor], targets: Sequence[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """The RPN and head losses for ``targets`` (``boxes``, 0-based ``labels``, ``masks`` per image)."""
        shifted = [{**t, "labels": t["labels"] + 1} for t in targets]
        return self._run(images, shifted, want_losses=True)


@register_model("maskrcnn", task="instance", adapter="detection")
def maskrcnn(
    *,
    num_classes: int,
    in_channels: int = 3,
    backbone: str = "resnet50_fpn",
    anchor_sizes: Sequence[int] | None = None,
    input_size: int | None = 800,
    max_size: int = 1333,
    proposals: int = 1000,
    max_detections: int = 100,
    score_threshold: float = 0.05,
    weights: Any = None,
    weights_backbone: Any = None,
) -> MaskRCNN:
    """Mask R-CNN (He et al. 2017) on torchvision's RPN, RoIAlign and heads, with an FPN backbone."""
    return MaskRCNN(
        num_classes=num_classes,
        in_channels=in_channels,
        backbone=backbone,
        anchor_sizes=anchor_sizes,
        input_size=input_size,
        max_size=max_size,
        proposals=proposals,
        max_detections=max_detections,
        score_threshold=score_threshold,
        weights=weights,
        weights_backbone=weights_backbone,
    )
