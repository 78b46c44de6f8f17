"""The simulated user (Xu et al. 2016's protocol, :mod:`segscope.metrics.clicks`): where it clicks,
what it scores, and when it stops. The interactive benchmark's figures, the click model's
validation and the ``clicks`` card rest on these."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from segscope.metrics.clicks import MAX_CLICKS, click_iou, next_click, noc, simulate


@pytest.fixture(scope="module")
def benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "interactive.py"
    spec = importlib.util.spec_from_file_location("interactive_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and typing resolve the module by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _square(shape=(40, 50), top=10, left=20, side=11) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_the_first_click_is_the_objects_deepest_point():
    truth = _square()
    nothing = np.zeros_like(truth)
    assert next_click(nothing, truth, nothing) == (15, 25, True)


def test_the_next_click_goes_into_the_largest_error_with_its_sign():
    truth = _square()
    ignore = np.zeros_like(truth)
    leak = truth.copy()
    leak[30:39, 0:9] = True  # an 81-pixel leak, larger than the 9-pixel miss below
    leak[10:13, 20:23] = False
    assert next_click(leak, truth, ignore) == (34, 4, False)
    leak[30:39, 0:9] = False  # only the miss is left: a positive click at its deepest pixel
    assert next_click(leak, truth, ignore) == (11, 21, True)


def test_unlabelled_pixels_are_neither_errors_nor_scored():
    truth = _square()
    ignore = np.zeros_like(truth)
    ignore[0:5, :] = True
    prediction = truth.copy()
    prediction[0:5, 0:10] = True  # a "leak" only into unlabelled pixels
    assert next_click(prediction, truth, ignore) is None  # nothing left to correct
    assert click_iou(prediction, truth, ignore) == 1.0
    assert click_iou(prediction, truth, np.zeros_like(truth)) == pytest.approx(121 / 171)


def test_a_session_stops_at_090_or_after_20_clicks_and_noc_counts_it():
    truth = _square()
    ignore = np.zeros_like(truth)
    seen = []

    def oracle(image, clicks, previous):
        seen.append(list(clicks))
        return truth.copy()

    ious, seconds = simulate(oracle, np.zeros(truth.shape, np.uint8), truth, ignore)
    assert ious == [1.0] and len(seconds) == 1 and seen == [[(15, 25, True)]]
    blank = np.zeros(truth.shape, np.uint8)
    stuck, _ = simulate(lambda image, clicks, previous: previous, blank, truth, ignore)
    assert len(stuck) == MAX_CLICKS == 20 and max(stuck) == 0.0
    assert noc([0.5, 0.86, 0.95], 0.85) == 2 and noc([0.5, 0.86, 0.95], 0.90) == 3
    assert noc(stuck, 0.85) == 20
    # Without a target, a session goes on to its budget (the click model's validation).
    always, _ = simulate(oracle, np.zeros(truth.shape, np.uint8), truth, ignore, stop_at=None, max_clicks=5)
    assert always == [1.0]  # nothing is left to correct after the first click


def test_the_peers_are_driven_by_the_same_clicks(benchmark):
    # A bright disc on a dark, lightly textured ground: one click is enough for GrabCut alone.
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:60, :80]
    truth = (yy - 30) ** 2 + (xx - 40) ** 2 <= 12**2
    image = np.where(truth[..., None], 200, 40) + rng.integers(0, 20, (60, 80, 3))
    image = image.astype(np.uint8)
    clicks = [next_click(np.zeros_like(truth), truth, np.zeros_like(truth))]
    found = benchmark.grabcut_alone(image, clicks, np.zeros_like(truth))
    assert click_iou(found, truth) > 0.9
