"""A click model: a U-Net that takes an image window and the user's prompts, and gives the object.

Interactive models in the line of RITM (Sofiiuk et al. 2022) see, besides the image, where the user
clicked and the mask the last click gave, and learn the object's extent and its outline's
conventions from annotated objects. Here the prompts are three more input channels: the positive
marks (clicks' discs, object scribbles), the negative marks, and the previous mask. The window
around the prompts is resized to the network's side (:func:`window_input`), so that a click costs
the same on any image; training (``train/clicks.py``) and prediction (``infer/clicks.py``) build
their inputs with the same function.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .base import register_model
from .unet import UNet

__all__ = ["FIRST_WINDOW", "PROMPT_CHANNELS", "click_unet", "prompt_window", "window_input"]

PROMPT_CHANNELS = 3
"""Positive marks, negative marks, previous mask."""
FIRST_WINDOW = 128
"""The window's side, in image pixels, around clicks with no previous mask (the object's size is
not known yet)."""
MIN_WINDOW = 64
"""The smallest window around a previous mask."""
MARGIN = 0.4
"""Context on each side of the prompts' extent, as a share of it."""


def prompt_window(marks: np.ndarray, shape: tuple[int, int], *, has_previous: bool,
                  scale: float = 1.0) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1), end exclusive: the square window a click model looks at, centred
    on ``marks`` (the positive marks and the previous mask) with :data:`MARGIN` of their extent on
    each side, at least :data:`MIN_WINDOW` (:data:`FIRST_WINDOW` without a previous mask) and
    ``scale`` times that, moved inside the image of ``shape`` (and cut where the image is smaller)."""
    rows, cols = np.nonzero(marks)
    if rows.size == 0:
        raise ValueError("a click model needs a positive mark or a previous mask")
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    extent = max(r1 - r0, c1 - c0)
    side = max(FIRST_WINDOW if not has_previous else MIN_WINDOW, int(np.ceil(extent * (1 + 2 * MARGIN))))
    side = max(8, round(side * scale))
    out = []
    for start, stop, size in ((r0, r1, shape[0]), (c0, c1, shape[1])):
        first = (start + stop) // 2 - side // 2
        first = max(0, min(first, size - side))
        out += [first, min(size, first + side)]
    return out[0], out[1], out[2], out[3]


def window_input(image: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, previous: torch.Tensor,
                 side: int) -> torch.Tensor:
    """The network's input for one window: (C + 3, side, side) from a normalised (C, h, w) image
    window and three (h, w) masks of the same window. The image is resized bilinearly (antialiased
    when shrunk); a mark stays wherever any of its pixels lands, however small the scale, and the
    previous mask is resized by area and thresholded at a half."""
    size = (side, side)
    x = F.interpolate(image[None].float(), size=size, mode="bilinear", align_corners=False,
                      antialias=bool(image.shape[-1] > side or image.shape[-2] > side))[0]
    marks = torch.stack([positive, negative, previous]).float()[None]
    resized = F.interpolate(marks, size=size, mode="area")[0]
    prompts = torch.stack([resized[0] > 0, resized[1] > 0, resized[2] >= 0.5]).to(x.dtype)
    return torch.cat([x, prompts])


@register_model("click_unet", task="instance", adapter="clicks", predictor="clicks")
def click_unet(*, num_classes: int = 1, in_channels: int = 3 + PROMPT_CHANNELS, depth: int = 4,
               base_width: int = 16) -> UNet:
    """A click model: U-Net over an image window and the prompts (positive and negative marks,
    previous mask), one logit per pixel for the object."""
    if num_classes != 1:
        raise ValueError(f"click_unet segments one object at a time; num_classes is {num_classes}")
    if in_channels <= PROMPT_CHANNELS:
        raise ValueError(f"in_channels counts the image's channels and the {PROMPT_CHANNELS} prompt "
                         f"channels; got {in_channels}")
    return UNet(num_classes=1, in_channels=in_channels, depth=depth, base_width=base_width)
