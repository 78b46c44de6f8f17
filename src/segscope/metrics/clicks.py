"""Interactive segmentation scored with simulated users: the number of clicks to a target IoU.

The protocol of Xu et al. (2016), as interactive segmentation papers use it (RITM, Sofiiuk et al.
2022): the first click goes at the object's interior point farthest from its boundary; each next
click at the point farthest from the boundary of the largest error region, positive where the
object was missed, negative where the result leaked; at most :data:`MAX_CLICKS` clicks. NoC@85
and NoC@90 are the mean number of clicks to reach IoU 0.85 and 0.90 (the maximum when never
reached). Pixels a dataset leaves unlabelled count neither in the IoU nor as errors to click on.

The same user places the clicks in the benchmark (``benchmarks/interactive.py``), in a click
model's validation while it trains, and in the zoo card's figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

__all__ = ["MAX_CLICKS", "Click", "click_iou", "next_click", "noc", "simulate"]

MAX_CLICKS = 20
"""Xu et al.'s budget of clicks per object."""
Click = tuple[int, int, bool]
"""(row, col, positive)."""


def next_click(prediction: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None) -> Click | None:
    """Where the simulated user clicks next: the point farthest from the boundary of the largest
    error region (ties: the first in row-major order), positive for a miss and negative for a
    leak; None when nothing is wrong. ``ignore`` pixels are no error.

    Examples
    --------
    >>> truth = np.zeros((7, 9), bool); truth[1:6, 1:8] = True
    >>> next_click(np.zeros_like(truth), truth)
    (3, 3, True)
    """
    from scipy import ndimage

    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    valid = ~np.asarray(ignore, bool) if ignore is not None else np.ones(truth.shape, bool)
    best: tuple[int, Click] | None = None
    for positive, error in ((True, truth & ~prediction & valid), (False, prediction & ~truth & valid)):
        labels, count = ndimage.label(error)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        largest = int(np.argmax(sizes))
        if best is None or sizes[largest] > best[0]:
            region = np.pad(labels == largest, 1)
            depth = ndimage.distance_transform_edt(region)[1:-1, 1:-1]
            row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
            best = (int(sizes[largest]), (int(row), int(col), positive))
    return None if best is None else best[1]


def click_iou(prediction: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """IoU of the labelled pixels (1 when both are empty there)."""
    prediction, truth = np.asarray(prediction, bool), np.asarray(truth, bool)
    valid = ~np.asarray(ignore, bool) if ignore is not None else np.ones(truth.shape, bool)
    union = int(((prediction | truth) & valid).sum())
    return float((prediction & truth & valid).sum() / union) if union else 1.0


Run = Callable[[np.ndarray, list[Click], np.ndarray], np.ndarray]
"""``run(image, clicks, previous) -> mask``: every click so far, and the mask the last one gave."""


def simulate(run: Run, image: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None, *,
             max_clicks: int = MAX_CLICKS, stop_at: float | None = 0.90) -> tuple[list[float], list[float]]:
    """Drive ``run`` with the simulated user on one object: the IoU after each click and the
    seconds each click took. Stops once the IoU reaches ``stop_at`` (None: never), after
    ``max_clicks``, or when nothing is left to correct."""
    truth = np.asarray(truth, bool)
    prediction = np.zeros_like(truth)
    clicks: list[Click] = []
    ious: list[float] = []
    seconds: list[float] = []
    for _ in range(max_clicks):
        click = next_click(prediction, truth, ignore)
        if click is None:
            break
        clicks.append(click)
        start = time.perf_counter()
        prediction = np.asarray(run(image, clicks, prediction), bool)
        seconds.append(time.perf_counter() - start)
        ious.append(click_iou(prediction, truth, ignore))
        if stop_at is not None and ious[-1] >= stop_at:
            break
    return ious, seconds


def noc(ious: list[float], target: float, *, max_clicks: int = MAX_CLICKS) -> int:
    """Clicks needed to reach IoU ``target`` (``max_clicks`` when never reached).

    >>> noc([0.5, 0.86, 0.91], 0.85), noc([0.5, 0.86, 0.91], 0.90), noc([0.5], 0.9)
    (2, 3, 20)
    """
    return next((k + 1 for k, v in enumerate(ious) if v >= target), max_clicks)
