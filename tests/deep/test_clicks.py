"""Click models (``click_unet``): their windows and inputs, simulated training samples, training
through the task-adapter trainer, and following prompts through ``segscope.prompt``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _configs import config_of
from skimage.draw import ellipse

import segscope
from segscope.io import write_label_png
from segscope.models.clicks import FIRST_WINDOW, MARGIN, MIN_WINDOW, prompt_window, window_input
from segscope.train import train
from segscope.train.clicks import ClickSamples, click_loss, perturb_mask

TINY = {"base_width": 8, "depth": 2}


def _scene(seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A textured grey ground with three to five non-overlapping bright ellipses of random colour,
    and their instance map."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    image = rng.integers(20, 70, (size, size, 3)).astype(np.float64)
    for k in range(1, int(rng.integers(3, 6)) + 1):
        for _ in range(20):
            centre = rng.integers(12, size - 12, 2)
            rr, cc = ellipse(*centre, rng.uniform(6, 14), rng.uniform(6, 14), labels.shape,
                             rotation=rng.uniform(0, np.pi))
            if not labels[rr, cc].any():
                labels[rr, cc] = k
                image[rr, cc] = rng.integers(140, 255, 3)
                break
    return image.astype(np.uint8), labels


def _folder(root: Path, count: int, seed: int = 0) -> tuple[Path, Path]:
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for k in range(count):
        image, instance_map = _scene(seed + k)
        segscope.imwrite(images / f"{k:02d}.png", image)
        write_label_png(labels / f"{k:02d}.png", instance_map)
    return images, labels


def test_the_window_is_fixed_around_a_first_click_and_follows_a_previous_mask():
    shape = (400, 500)
    click = np.zeros(shape, bool)
    click[200, 250] = True
    assert prompt_window(click, shape, has_previous=False) == (136, 264, 186, 314)  # FIRST_WINDOW = 128
    mask = np.zeros(shape, bool)
    mask[100:200, 100:150] = True  # 100 rows: the window adds MARGIN of that on each side
    r0, r1, c0, c1 = prompt_window(mask, shape, has_previous=True)
    assert r1 - r0 == c1 - c0 == round(100 * (1 + 2 * MARGIN)) and (r0 + r1) // 2 == 150
    small = np.zeros(shape, bool)
    small[5:15, 490:500] = True  # a small mask in a corner: the smallest window, moved inside the image
    assert prompt_window(small, shape, has_previous=True) == (0, MIN_WINDOW, 500 - MIN_WINDOW, 500)
    assert prompt_window(click[:100, :100] | True, (100, 100), has_previous=False) == (0, 100, 0, 100)
    assert FIRST_WINDOW > MIN_WINDOW
    with pytest.raises(ValueError, match="positive mark or a previous mask"):
        prompt_window(np.zeros(shape, bool), shape, has_previous=False)


def test_window_input_keeps_every_mark_however_far_the_window_shrinks():
    side = 512
    image = torch.zeros(3, side, side)
    positive, negative, previous = (torch.zeros(side, side, dtype=torch.bool) for _ in range(3))
    positive[100, 100] = True  # one pixel, shrunk 8 times
    negative[400, 300] = True
    previous[200:300, 200:300] = True
    x = window_input(image, positive, negative, previous, 64)
    assert x.shape == (6, 64, 64)
    assert x[3].sum() == 1 and x[3, 12, 12] == 1
    assert x[4].sum() == 1 and x[4, 50, 37] == 1
    assert x[5].sum() == pytest.approx((300 // 8 - 200 // 8) ** 2, abs=30)


@pytest.mark.parametrize("seed", range(8))
def test_a_perturbed_mask_is_wrong_but_never_empty(seed):
    _, labels = _scene(seed)
    truth = labels == 1
    rng = np.random.default_rng(seed)
    found = [perturb_mask(truth, rng) for _ in range(10)]
    assert all(m.any() for m in found)
    assert sum(not np.array_equal(m, truth) for m in found) >= 8
    # Wrong, but about the object: it overlaps the truth in all but rare shifted cases.
    assert np.mean([(m & truth).any() for m in found]) >= 0.8


def test_training_samples_click_inside_their_object_and_see_it_in_the_window(tmp_path):
    from segscope.train.data import input_statistics, pair_by_stem

    images, labels = _folder(tmp_path, 4)
    pairs = pair_by_stem(images, labels)
    inputs = input_statistics([p for p, _ in pairs], crop=64)
    samples = ClickSamples(pairs, inputs=inputs, ignore_index=None, side=64, augment=None)
    torch.manual_seed(0)
    inside, seen = [], []
    for k in range(40):
        x, truth, labelled, radius = samples[k % 4]
        assert x.shape == (6, 64, 64) and truth.shape == labelled.shape == (64, 64) and radius > 0
        positive = x[3] > 0
        inside.append(float((positive & (truth > 0)).sum() / positive.sum()))
        seen.append(bool(truth.any()))
    assert all(seen)
    assert np.mean(inside) > 0.9  # the clicks' discs lie on the object (the correction's may touch its edge)


def test_the_loss_ignores_unlabelled_pixels():
    logits = torch.zeros(1, 8, 8)
    truth = torch.zeros(1, 8, 8)
    labelled = torch.ones(1, 8, 8, dtype=torch.bool)
    wrong = logits.clone()
    wrong[0, :4] = 10.0  # confidently wrong in the top half
    assert click_loss(wrong, truth, labelled) > click_loss(logits, truth, labelled)
    labelled[0, :4] = False  # ... which is not labelled: only the Dice term (no object) is left
    expected = float(click_loss(logits, truth, labelled))
    assert click_loss(wrong, truth, labelled) == pytest.approx(expected, abs=1e-3)


def test_a_click_model_overfits_one_batch(tmp_path):
    from segscope.models import get_model
    from segscope.train.data import input_statistics, pair_by_stem

    images, labels = _folder(tmp_path, 2)
    pairs = pair_by_stem(images, labels)
    samples = ClickSamples(pairs, inputs=input_statistics([p for p, _ in pairs], crop=64), ignore_index=None,
                           side=64, augment=None)
    torch.manual_seed(0)
    batch = [samples[k % 2] for k in range(4)]
    x, truth, labelled = (torch.stack([b[i] for b in batch]) for i in range(3))
    model = get_model("click_unet", **TINY)
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(100):
        loss = click_loss(model(x)[:, 0], truth, labelled)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.25 * losses[0], losses[::10]


def test_a_click_model_trains_and_follows_prompts_through_segscope_prompt(tmp_path):
    train_images, train_labels = _folder(tmp_path / "train", 6)
    config = config_of(model="click_unet", model_options=TINY, train_images=str(train_images),
                       train_labels=str(train_labels), num_classes=1, holdout=2, crop=64, batch_size=4,
                       epochs=2, output=str(tmp_path / "run"), normalise="percentile")
    result = train(config)
    assert result.metric == "val_click_iou" and 0 <= result.best_score <= 1
    checkpoint = result.checkpoint
    image, labels = _scene(99)
    rows, cols = np.nonzero(labels == 1)
    click = (int(rows.mean()), int(cols.mean()), 1)
    seg = segscope.prompt(image, points=[click], method=str(checkpoint))
    assert seg.kind == "instance" and seg.labels.shape == labels.shape and set(seg.ids.tolist()) <= {1}
    # A previous mask and a negative click refine it; two objects come back with their own ids.
    other = np.nonzero(labels == 2)
    second = (int(other[0].mean()), int(other[1].mean()), 2)
    both = segscope.prompt(image, points=[click, second, (2, 2, 0)], mask=seg, method=str(checkpoint))
    assert set(both.ids.tolist()) <= {1, 2}
    with pytest.raises(ValueError, match="click model"):
        segscope.segment(image, checkpoint)
    with pytest.raises(ValueError, match="follows points, scribbles, mask; not boxes"):
        segscope.prompt(image, boxes=[(0, 0, 10, 10)], method=str(checkpoint))


def test_a_model_without_prompts_is_refused_as_a_prompted_method(tmp_path):
    from segscope.resolve import resolve_prompted

    with pytest.raises(ValueError, match="click models: clicks"):
        resolve_prompted("no_such_method")
    with pytest.raises(ValueError, match=r"follows no prompts; prompted methods: .*grabcut"):
        resolve_prompted("street")


def test_the_zoos_click_model_takes_an_object_from_one_click_and_corrects_it_with_more():
    # Known answers on a scene it never saw: a bright ellipse on a textured ground beside a second
    # one; one click gives the clicked ellipse, not its neighbour; a negative click removes a leak.
    from segscope.metrics.clicks import click_iou, next_click

    image, labels = _scene(7, size=160)
    truth = labels == 1
    first = next_click(np.zeros_like(truth), truth)
    seg = segscope.prompt(image, points=[(first[0], first[1], 1)], method="clicks")
    found = seg.labels == 1
    assert click_iou(found, truth) > 0.8
    assert not (found & (labels > 1)).any()
    leaked = found | (labels == 2)  # a previous result that took the neighbour too
    second = next_click(leaked, truth)
    assert second is not None and not second[2]  # the user's next click is a negative one
    points = [(first[0], first[1], 1), (second[0], second[1], 0)]
    fixed = segscope.prompt(image, points=points, mask=leaked.astype(np.int32), method="clicks").labels == 1
    assert click_iou(fixed, truth) > click_iou(leaked, truth) + 0.2
