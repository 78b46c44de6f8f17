"""Running a click model (``click_unet``): the object a user points at, refined click by click.

For each object the network sees a square window around its positive marks and its previous mask
(:func:`~segscope.models.clicks.prompt_window`), resized to the side it was trained at, with the
marks and the previous mask as three more channels, and once more mirrored (test-time flip); where
the averaged probability passes the checkpoint's threshold (chosen after training) is the object
inside the window, and the previous mask stays outside it. A click therefore costs two passes of a
small network on a fixed-size window, whatever the image's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..prompting import Seeds, click_disc
from ..result import Segmentation
from .predictor import WholeImagePredictor, normalise_image, predicts

__all__ = ["ClickPredictor", "click_discs"]

PROMPT_KINDS = ("points", "scribbles", "mask")
"""What a click model follows: clicks and scribbles are marks, a mask the previous result."""


def click_discs(shape: tuple[int, int], clicks: list[tuple[int, int, bool]], radius: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) masks of ``shape``: a disc of ``radius`` at each (row, col, positive) click."""
    positive, negative = np.zeros(shape, bool), np.zeros(shape, bool)
    for row, col, is_positive in clicks:
        rows, cols, disc = click_disc(shape, row, col, radius)
        (positive if is_positive else negative)[rows, cols] |= disc
    return positive, negative


@predicts("clicks")
class ClickPredictor(WholeImagePredictor):
    """A click model: it follows prompts (:attr:`prompt_kinds`), through :func:`segscope.prompt`."""

    task = "instance"
    expects = "a click model"
    prompt_kinds = PROMPT_KINDS
    decoded_by = ("threshold",)
    threshold = 0.5
    """The object probability a pixel must pass; a checkpoint's ``decoding`` sets the one chosen on
    its validation objects after training."""
    flip = True
    """Average the network's answer with its answer on the mirrored window (test-time flip)."""

    @property
    def side(self) -> int:
        """The network's input side: the training crop."""
        return int(self.inputs.crop or 128)

    @property
    def segment(self) -> Any:
        def refuse(image: np.ndarray, **options: Any) -> Segmentation:
            raise ValueError(f"{self.name} is a click model: it segments what a user points at, with "
                             f"segscope.prompt(image, points=..., method=...) or `segscope prompt -m`")

        return refuse

    def normalised(self, image: np.ndarray) -> Any:
        """``image`` as the network's (C, H, W) float tensor on its device; grey images are repeated
        to the channels the model was trained on."""
        import torch

        if image.ndim == 2 and self.inputs.channels > 1:
            image = np.repeat(image[..., None], self.inputs.channels, axis=-1)
        return torch.from_numpy(normalise_image(image, self.inputs)).to(self.device)

    def object_mask(self, x: Any, positive: np.ndarray, negative: np.ndarray, previous: np.ndarray
                    ) -> np.ndarray:
        """One object's mask, from the normalised image ``x`` (C, H, W), its positive and negative
        marks and its previous mask (all (H, W) bool)."""
        import torch
        import torch.nn.functional as F

        from ..models.clicks import prompt_window, window_input

        has_previous = bool(previous.any())
        r0, r1, c0, c1 = prompt_window(positive | previous, previous.shape, has_previous=has_previous)
        window = (slice(r0, r1), slice(c0, c1))
        as_tensor = [torch.from_numpy(np.ascontiguousarray(m[window])).to(self.device)
                     for m in (positive, negative, previous)]
        inputs = window_input(x[:, r0:r1, c0:c1], *as_tensor, self.side)
        with torch.inference_mode():
            logits = self.model(inputs[None])
            if self.flip:
                logits = (logits + self.model(inputs[None].flip(-1)).flip(-1)) / 2
            logits = F.interpolate(logits, size=(r1 - r0, c1 - c0), mode="bilinear", align_corners=False)
        out = previous.copy()
        out[window] = logits[0, 0].cpu().numpy() > float(np.log(self.threshold / (1 - self.threshold)))
        return out

    def follow(self, image: np.ndarray, clicks: list[tuple[int, int, bool]], previous: np.ndarray, *,
               click_radius: int = 3) -> np.ndarray:
        """One object from its clicks so far and the mask the last one gave (the simulated user's
        protocol, :func:`segscope.metrics.clicks.simulate`)."""
        positive, negative = click_discs(previous.shape, clicks, click_radius)
        return self.object_mask(self.normalised(image), positive & ~negative, negative, previous.astype(bool))

    def prompted(self, image: np.ndarray, seeds: Seeds) -> np.ndarray:
        """Label image of every prompted object (:class:`~segscope.prompting.Seeds`), each from its
        own marks, the other objects' marks as negatives, and its previous mask; where two objects
        claim a pixel, the later one takes it."""
        x = self.normalised(image)
        labels = np.zeros(seeds.sure.shape, np.int32)
        for obj in seeds.objects:
            previous = seeds.likely == obj
            positive = seeds.positive(obj)
            if not (positive.any() or previous.any()):
                continue
            labels[self.object_mask(x, positive, seeds.negative(obj), previous)] = obj
        return labels
