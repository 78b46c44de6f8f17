"""Losses for semantic segmentation, computed outside the model: cross-entropy, Dice, focal, sums."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LOSSES", "SegmentationLoss", "median_frequency_weights"]

LOSSES = ("ce", "dice", "focal")


def median_frequency_weights(counts: Sequence[float]) -> list[float]:
    """Class weights ``median(freq) / freq_c`` (Eigen and Fergus 2015; SegNet's CamVid weights).

    Classes never seen get weight 0 rather than infinity.
    """
    freq = np.asarray(counts, np.float64)
    freq = freq / max(freq.sum(), 1.0)
    seen = freq > 0
    weights = np.zeros_like(freq)
    weights[seen] = np.median(freq[seen]) / freq[seen]
    return weights.tolist()


class SegmentationLoss(nn.Module):
    """A sum of losses named like ``"ce"``, ``"dice"``, ``"focal"`` or ``"ce+dice"``.

    Parameters
    ----------
    spec : str
        Loss terms joined by ``+``, each weighted equally.
    num_classes : int
    ignore_index : int
        Label value that contributes to no term.
    class_weights : sequence of float, optional
        Per-class weights of the cross-entropy and focal terms.
    focal_gamma : float
        Focusing exponent of the focal term (Lin et al. 2017).
    """

    def __init__(
        self,
        spec: str = "ce",
        *,
        num_classes: int,
        ignore_index: int = 255,
        class_weights: Sequence[float] | None = None,
        focal_gamma: float = 2.0,
    ) -> None:
        super().__init__()
        self.terms = [t.strip() for t in spec.split("+") if t.strip()]
        unknown = [t for t in self.terms if t not in LOSSES]
        if unknown or not self.terms:
            raise ValueError(f"loss terms must be among {LOSSES} joined by '+', got {spec!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.focal_gamma = focal_gamma
        weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        if weight is not None and weight.shape != (num_classes,):
            raise ValueError(f"class_weights needs {num_classes} values, got {tuple(weight.shape)}")
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = logits.new_zeros(())
        for term in self.terms:
            if term == "ce":
                total = total + F.cross_entropy(
                    logits, target, weight=self.weight, ignore_index=self.ignore_index
                )
            elif term == "focal":
                total = total + self._focal(logits, target)
            else:
                total = total + self._dice(logits, target)
        return total

    def _focal(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        p = torch.exp(-ce)
        loss = (1 - p) ** self.focal_gamma * ce
        valid = target != self.ignore_index
        if self.weight is not None:
            loss = loss * self.weight[target.clamp(0, self.num_classes - 1)]
        return loss[valid].sum() / valid.sum().clamp(min=1)

    def _dice(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = (target != self.ignore_index).unsqueeze(1)
        probs = logits.float().softmax(1) * valid
        onehot = F.one_hot(target.clamp(0, self.num_classes - 1), self.num_classes).movedim(-1, 1)
        onehot = onehot * valid
        axes = (0, *range(2, logits.ndim))  # every axis but the classes': images and volumes alike
        inter = (probs * onehot).sum(axes)
        denom = probs.sum(axes) + onehot.sum(axes)
        present = onehot.sum(axes) > 0
        dice = (2 * inter + 1) / (denom + 1)
        # Soft Dice over the classes present in the batch (absent ones would only add noise).
        return 1 - dice[present].mean() if present.any() else logits.sum() * 0
