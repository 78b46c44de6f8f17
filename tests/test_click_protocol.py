"""The simulated user of ``benchmarks/interactive.py`` (Xu et al. 2016's protocol): where it clicks,
what it scores, and when it stops. The benchmark's figures rest on these."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def protocol():
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


def test_the_first_click_is_the_objects_deepest_point(protocol):
    truth = _square()
    nothing = np.zeros_like(truth)
    assert protocol.next_click(nothing, truth, nothing) == (15, 25, True)


def test_the_next_click_goes_into_the_largest_error_with_its_sign(protocol):
    truth = _square()
    ignore = np.zeros_like(truth)
    leak = truth.copy()
    leak[30:39, 0:9] = True  # an 81-pixel leak, larger than the 9-pixel miss below
    leak[10:13, 20:23] = False
    assert protocol.next_click(leak, truth, ignore) == (34, 4, False)
    leak[30:39, 0:9] = False  # only the miss is left: a positive click at its deepest pixel
    assert protocol.next_click(leak, truth, ignore) == (11, 21, True)


def test_unlabelled_pixels_are_neither_errors_nor_scored(protocol):
    truth = _square()
    ignore = np.zeros_like(truth)
    ignore[0:5, :] = True
    prediction = truth.copy()
    prediction[0:5, 0:10] = True  # a "leak" only into unlabelled pixels
    with pytest.raises(ValueError, match="no error left"):
        protocol.next_click(prediction, truth, ignore)
    assert protocol.iou(prediction, truth, ignore) == 1.0
    assert protocol.iou(prediction, truth, np.zeros_like(truth)) == pytest.approx(121 / 171)


def test_a_session_stops_at_090_or_after_20_clicks_and_noc_counts_it(protocol):
    truth = _square()
    ignore = np.zeros_like(truth)
    seen = []

    def oracle(image, clicks, previous):
        seen.append(list(clicks))
        return truth.copy()

    ious, seconds = protocol.simulate(oracle, np.zeros(truth.shape, np.uint8), truth, ignore)
    assert ious == [1.0] and len(seconds) == 1 and seen == [[(15, 25, True)]]
    stuck, _ = protocol.simulate(lambda image, clicks, previous: previous, np.zeros(truth.shape, np.uint8),
                                 truth, ignore)
    assert len(stuck) == protocol.MAX_CLICKS == 20 and max(stuck) == 0.0
    assert protocol.noc([0.5, 0.86, 0.95], 0.85) == 2 and protocol.noc([0.5, 0.86, 0.95], 0.90) == 3
    assert protocol.noc(stuck, 0.85) == 20


def test_the_peers_are_driven_by_the_same_clicks(protocol):
    # A bright disc on a dark, lightly textured ground: one click is enough for GrabCut alone.
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:60, :80]
    truth = (yy - 30) ** 2 + (xx - 40) ** 2 <= 12**2
    image = np.where(truth[..., None], 200, 40) + rng.integers(0, 20, (60, 80, 3))
    image = image.astype(np.uint8)
    clicks = [protocol.next_click(np.zeros_like(truth), truth, np.zeros_like(truth))]
    found = protocol.grabcut_alone(image, clicks, np.zeros_like(truth))
    assert protocol.iou(found, truth, np.zeros_like(truth)) > 0.9
