"""Prompted segmentation: encoding clicks, boxes, scribbles and masks, and the methods behind
``segscope.prompt``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import segscope
from segscope.prompting import BACKGROUND, encode_prompts, list_prompted, register_prompted

METHODS = [m.name for m in list_prompted()]


@pytest.fixture(scope="module")
def two_blocks() -> np.ndarray:
    """Two flat blocks, bright and mid-grey, on a dark noisy background."""
    rng = np.random.default_rng(0)
    image = rng.normal(20, 3, (60, 80))
    image[15:45, 10:35] += 180
    image[15:45, 45:70] += 100
    return np.clip(image, 0, 255).astype(np.uint8)


def _truth(shape: tuple[int, int]) -> np.ndarray:
    truth = np.zeros(shape, np.int32)
    truth[15:45, 10:35] = 1
    truth[15:45, 45:70] = 2
    return truth


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_prompts_encode_into_sure_and_likely_marks():
    scribbles = np.zeros((10, 12), np.int32)
    scribbles[0, :3] = BACKGROUND
    scribbles[9, 9:] = 2
    seeds = encode_prompts(
        (10, 12), points=[(5, 5, 1), (1, 10, 0)], boxes=[(2, 2, 8, 8, 1)], scribbles=scribbles, click_radius=1
    )
    assert seeds.objects == (1, 2)
    assert seeds.sure[5, 5] == 1 and seeds.sure[4, 5] == 1 and seeds.sure[3, 5] == 0
    assert seeds.sure[1, 10] == BACKGROUND and (seeds.sure[0, :3] == BACKGROUND).all()
    assert (seeds.sure[9, 9:] == 2).all()
    assert (seeds.likely[2:8, 2:8] == 1).all() and seeds.likely.sum() == 36
    # Object 2 has no box: the outside of object 1's box is not background.
    assert not seeds.outside_boxes_is_background
    boxed = encode_prompts((10, 12), boxes=[(2, 2, 8, 8)])
    assert boxed.outside_boxes_is_background and boxed.negative(1)[0, 0] and not boxed.negative(1)[4, 4]
    markers = boxed.markers()
    # The box's centre seeds it; outside is background.
    assert (markers == 2).sum() == 1 and (markers[4:6, 4:6] == 2).any() and markers[0, 0] == 1


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ({"points": [(99, 0, 1)]}, "outside the 10x12 image"),
        ({"points": [(1, 1, -2)]}, "0 is negative"),
        ({"boxes": [(20, 20, 30, 30)]}, "covers no pixel"),
        ({"points": [(1, 1, 0)]}, "no object prompted"),
        ({"mask": np.zeros((3, 3), int)}, "differs from the image"),
        ({"scribbles": np.zeros((10, 12))}, "integer image"),
    ],
)
def test_bad_prompts_are_refused_clearly(prompt, message):
    with pytest.raises(ValueError, match=message):
        encode_prompts((10, 12), **prompt)


@pytest.mark.parametrize("method", METHODS)
def test_every_prompted_method_segments_two_objects_from_one_click_each(two_blocks, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the random walker's tolerance note
        seg = segscope.prompt(two_blocks, points=[(30, 20, 1), (30, 55, 2)], method=method)
    truth = _truth(two_blocks.shape)
    assert seg.kind == "instance" and seg.ids.tolist() == [1, 2]
    for obj in (1, 2):
        assert _iou(seg.labels == obj, truth == obj) > 0.9, (method, obj)
    assert seg.provenance.method == f"prompt:{method}"


def test_a_box_alone_finds_its_object_and_a_negative_click_removes_a_leak(two_blocks):
    seg = segscope.prompt(two_blocks, boxes=[(12, 7, 48, 38)], method="grabcut")
    truth = _truth(two_blocks.shape) == 1
    assert _iou(seg.labels == 1, truth) > 0.9
    # One click covering both blocks' gap leaks into the second; a negative click there corrects it.
    leaky = segscope.prompt(two_blocks, points=[(30, 20, 1), (30, 55, 1)], method="geodesic")
    assert (leaky.labels[15:45, 45:70] == 1).mean() > 0.9
    fixed = segscope.prompt(two_blocks, mask=leaky, points=[(30, 20, 1), (30, 57, 0)], method="geodesic")
    assert (fixed.labels[15:45, 45:70] == 1).mean() < 0.1
    assert _iou(fixed.labels == 1, truth) > 0.9


@pytest.mark.parametrize("method", ["grabcut", "geodesic_grabcut"])
def test_grabcut_with_nothing_to_model_as_background_keeps_the_prompted_extent(two_blocks, method):
    # A box over the whole image leaves GrabCut no background to model: the box is the answer,
    # not an empty result (or only the clicks).
    height, width = two_blocks.shape
    seg = segscope.prompt(two_blocks, boxes=[(0, 0, height, width)], method=method)
    assert (seg.labels == 1).all()


def test_scribbles_paint_objects_and_erase(two_blocks):
    scribbles = np.zeros(two_blocks.shape, np.int32)
    scribbles[25:35, 20] = 1
    scribbles[25:35, 55] = 1
    seg = segscope.prompt(two_blocks, scribbles=scribbles, method="random_walker")
    both = (seg.labels == 1).sum()
    scribbles[25:35, 55] = BACKGROUND  # erase the second block
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = segscope.prompt(two_blocks, scribbles=scribbles, method="random_walker")
    assert (seg.labels == 1).sum() < 0.6 * both
    assert _iou(seg.labels == 1, _truth(two_blocks.shape) == 1) > 0.9


def test_a_method_refuses_prompt_kinds_it_does_not_declare(two_blocks):
    @register_prompted("clicks_only_for_test", kinds=("points",))
    def clicks_only(image: np.ndarray, seeds, *, spread: int = 1) -> np.ndarray:
        """Objects are their clicks' marks."""
        return np.where(seeds.sure > 0, seeds.sure, 0)

    seg = segscope.prompt(two_blocks, points=[(30, 20, 1)], method="clicks_only_for_test", spread=2)
    assert seg.ids.tolist() == [1]
    with pytest.raises(ValueError, match="follows points; not boxes"):
        segscope.prompt(two_blocks, boxes=[(1, 1, 5, 5)], method="clicks_only_for_test")
    with pytest.raises(TypeError, match="has no option gamma; its options: spread"):
        segscope.prompt(two_blocks, points=[(30, 20, 1)], method="clicks_only_for_test", gamma=3)
    with pytest.raises(ValueError, match="no prompted method 'nope'"):
        segscope.prompt(two_blocks, points=[(30, 20, 1)], method="nope")


def test_prompting_works_on_the_window_around_the_prompts(two_blocks):
    big = np.zeros((600, 800), np.uint8)
    big[300:360, 400:480] = two_blocks
    seg = segscope.prompt(big, points=[(330, 420, 1)], method="geodesic")
    window = seg.provenance.details["window"]
    # One click: 80 pixels each side of its disc (Seeds.window's minimum), not the 600x800 image.
    assert window == [[330 - 3 - 80, 330 + 4 + 80], [420 - 3 - 80, 420 + 4 + 80]]
    assert _iou(seg.labels[300:360, 400:480] == 1, _truth(two_blocks.shape) == 1) > 0.8


def test_the_command_line_takes_prompts_from_json(two_blocks, tmp_path):
    import json

    from segscope.cli.main import main
    from segscope.io import read_label_png, write_label_png

    segscope.imwrite(tmp_path / "a.png", two_blocks)
    segscope.imwrite(tmp_path / "b.png", two_blocks)
    scribbles = np.zeros(two_blocks.shape, np.uint8)
    scribbles[25:35, 55] = 2
    scribbles[2, :] = 255  # background
    write_label_png(tmp_path / "b_scribbles.png", scribbles)
    (tmp_path / "prompts.json").write_text(
        json.dumps(
            {
                "a.png": {"points": [[30, 20, 1], [30, 55, 0]]},
                "b.png": {"boxes": [[12, 7, 48, 38]], "scribbles": "b_scribbles.png"},
            }
        )
    )
    assert (
        main(
            [
                "prompt",
                str(tmp_path / "a.png"),
                str(tmp_path / "b.png"),
                "--prompts",
                str(tmp_path / "prompts.json"),
                "-m",
                "grabcut",
                "-p",
                "iterations=3",
                "-o",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    truth = _truth(two_blocks.shape)
    a = read_label_png(tmp_path / "out" / "a.png")
    assert _iou(a == 1, truth == 1) > 0.9 and not (a == 2).any()
    b = read_label_png(tmp_path / "out" / "b.png")
    assert _iou(b == 1, truth == 1) > 0.9 and _iou(b == 2, truth == 2) > 0.9
    (tmp_path / "bad.json").write_text(json.dumps({"a.png": {"clicks": []}}))
    assert (
        main(
            [
                "prompt",
                str(tmp_path / "a.png"),
                "--prompts",
                str(tmp_path / "bad.json"),
                "-o",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )


def test_objects_keep_only_the_pieces_connected_to_their_prompts():
    # Two identical blocks, apart: GrabCut's colour model takes both, the prompt names one.
    image = np.full((60, 90, 3), 30, np.uint8)
    image[20:40, 10:30] = (200, 60, 60)
    image[20:40, 60:80] = (200, 60, 60)
    points = [(30, 20, 1), (5, 45, 0)]
    loose = segscope.prompt(image, points=points, method="grabcut", connected=False)
    kept = segscope.prompt(image, points=points, method="grabcut")
    assert (loose.labels[20:40, 60:80] == 1).all()  # the look-alike, without the rule
    assert (kept.labels[20:40, 10:30] == 1).all() and not (kept.labels[:, 45:] == 1).any()
    assert kept.provenance.parameters["connected"] is True
