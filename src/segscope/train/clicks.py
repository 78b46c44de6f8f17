"""Training click models (``click_unet``): simulated users on annotated objects.

Each sample is one object of a training image (an instance label PNG: 0 background, ids above,
the recipe's ``ignore_index`` unlabelled). As in RITM (Sofiiuk et al. 2022), the prompts are
simulated: a first click inside the object (at its interior point farthest from the edge, as the
benchmark's user clicks, or near it); then, for most samples, a previous mask made from the truth
by a random error (eroded, dilated, cut by a line, leaking into a blob, shifted), with the
correction the simulated user would click for it. The window around those prompts is the one
prediction would take (:func:`~segscope.models.clicks.prompt_window`, jittered), resized to the
crop side. Each step then lets the network correct itself for up to three rounds without
gradients (its own mask becomes the previous mask, the user's next click is added), as RITM's
iterative training does, before the loss: binary cross-entropy plus Dice over labelled pixels.
Validation drives :class:`~segscope.infer.clicks.ClickPredictor` with the benchmark's simulated
user (:mod:`segscope.metrics.clicks`) on held-out objects: the mean IoU over the first clicks.
Once training ends, the object probability a pixel must pass is chosen on the same objects (as
StarDist's thresholds are chosen after training) and stored in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..checkpoint import InputSpec
from ..infer.clicks import click_discs
from ..infer.predictor import normalise_image
from ..io.images import imread
from ..io.labels import read_label_png
from ..metrics.clicks import next_click, simulate
from ..models import get_model, on_device
from ..models.clicks import PROMPT_CHANNELS, prompt_window, window_input
from ..prompting import click_disc
from ..trainconfig import TrainConfig
from .adapters import Prepared, augment_of, refuse_semantic_options, register_adapter, training_items
from .data import Augment, pair_by_stem

__all__ = ["ClickAdapter", "ClickSamples", "perturb_mask"]

CLICK_RADIUS = 3
"""Clicks' discs in image pixels, as :func:`segscope.prompt` draws them by default."""
MIN_OBJECT = 100
"""Objects smaller than this (pixels) are not trained on."""
FIRST_CLICK_ONLY = 0.35
"""Share of samples with a first click and no previous mask."""
ROUNDS = (0.4, 0.2, 0.2, 0.2)
"""Probabilities of 0, 1, 2 or 3 rounds of self-correction before a step's loss."""
VAL_OBJECTS = 48
"""Held-out objects the validation clicks on (two per image at most, of at least 200 pixels)."""
VAL_CLICKS = 8
"""Clicks per validation object: the score is the mean IoU over them."""
THRESHOLDS = tuple(round(0.3 + 0.05 * k, 2) for k in range(11))
"""The object probabilities tried when the decision threshold is chosen (0.3 to 0.8)."""


def _rng() -> np.random.Generator:
    """A NumPy generator drawn from torch's, so that the trainer's seed fixes every sample."""
    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, ())))


def perturb_mask(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong answer for ``truth`` (bool): eroded, dilated, cut by a line, leaking
    into a blob at its edge, or shifted, by amounts relative to the object's size; sometimes two
    of these. Never empty when ``truth`` is not."""
    from scipy import ndimage

    out = truth.copy()
    extent = max(2.0, float(np.sqrt(truth.sum())))
    rows, cols = np.nonzero(truth)
    yy, xx = np.ogrid[: truth.shape[0], : truth.shape[1]]
    for _ in range(1 if rng.random() < 0.7 else 2):
        kind = rng.integers(5)
        amount = max(1.0, rng.uniform(0.05, 0.25) * extent)
        if kind == 0:
            out = ndimage.distance_transform_edt(out) > amount
        elif kind == 1:
            out = ndimage.distance_transform_edt(~out) <= amount
        elif kind == 2:
            k = rng.integers(rows.size)
            angle = rng.uniform(0, 2 * np.pi)
            offset = rng.normal(0, 0.1 * extent)
            side = (yy - rows[k] + offset) * np.cos(angle) + (xx - cols[k]) * np.sin(angle)
            out = out & (side < 0)
        elif kind == 3:
            edge = np.nonzero(out ^ ndimage.binary_erosion(out))
            if edge[0].size:
                k = rng.integers(edge[0].size)
                ry, rx = rng.uniform(0.15, 0.5, 2) * extent
                out = out | (((yy - edge[0][k]) / ry) ** 2 + ((xx - edge[1][k]) / rx) ** 2 <= 1)
        else:
            dy, dx = (rng.uniform(-0.2, 0.2, 2) * extent).round().astype(int)
            out = ndimage.shift(out, (dy, dx), order=0, mode="constant", cval=False)
    return out if out.any() else truth.copy()


def first_click(truth: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """The first click: half the time where the benchmark's user puts it (the interior point
    farthest from the edge), else anywhere at least half as deep."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(np.pad(truth, 1))[1:-1, 1:-1]
    if rng.random() < 0.5:
        row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
        return int(row), int(col)
    rows, cols = np.nonzero(depth >= 0.5 * depth.max())
    k = rng.integers(rows.size)
    return int(rows[k]), int(cols[k])


def _draw_disc(plane: torch.Tensor, row: int, col: int, radius: float) -> None:
    rows, cols, disc = click_disc(tuple(plane.shape), row, col, max(1, round(radius)))
    plane[rows, cols][torch.from_numpy(disc)] = 1.0


class ClickSamples(Dataset):
    """Training samples for a click model: one random object of image ``index`` per item, its
    simulated prompts and window (module docstring). Items are ``(x, truth, labelled, radius)``:
    the network's (C + 3, side, side) input, the object and the labelled pixels at that size, and
    a click's radius there."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], *, inputs: InputSpec, ignore_index: int | None,
                 side: int, augment: Augment | None) -> None:
        self.pairs = list(pairs)
        self.inputs = inputs
        self.ignore_index = ignore_index
        self.side = side
        self.augment = augment
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, list[tuple[int, Any]]]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, Any]]]:
        """The normalised image (C, H, W) float32, its instance map, and its trainable objects
        (id, bounding slices)."""
        if index in self._cache:
            return self._cache[index]
        from scipy import ndimage

        image_path, label_path = self.pairs[index]
        image = imread(image_path)
        x = normalise_image(image, self.inputs)
        labels = read_label_png(label_path)
        if labels.shape != image.shape[:2]:
            raise ValueError(f"{label_path}: labels are {labels.shape}, image {image_path} is "
                             f"{image.shape[:2]}")
        objects = labels if self.ignore_index is None else np.where(labels == self.ignore_index, 0, labels)
        sizes = np.bincount(objects.ravel())
        found = [(k + 1, box) for k, box in enumerate(ndimage.find_objects(objects))
                 if box is not None and sizes[k + 1] >= MIN_OBJECT]
        self._cache[index] = (x, labels, found)
        return self._cache[index]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = _rng()
        for _ in range(20):
            x, labels, objects = self.load(index)
            if objects:
                break
            index = int(rng.integers(len(self)))
        else:
            raise ValueError(f"no object of at least {MIN_OBJECT} pixels in 20 training images drawn, "
                             f"e.g. {self.pairs[index][1]}")
        obj, (rows, cols) = objects[int(rng.integers(len(objects)))]
        height, width = labels.shape
        extent = max(rows.stop - rows.start, cols.stop - cols.start)
        reach = max(128, int(1.5 * extent))
        region = (slice(max(0, rows.start - reach), min(height, rows.stop + reach)),
                  slice(max(0, cols.start - reach), min(width, cols.stop + reach)))
        local = labels[region]
        truth = local == obj
        ignore = local == self.ignore_index if self.ignore_index is not None else np.zeros_like(truth)
        clicks = [(*first_click(truth, rng), True)]
        previous = np.zeros_like(truth)
        if rng.random() >= FIRST_CLICK_ONLY:
            previous = perturb_mask(truth, rng)
            correction = next_click(previous, truth, ignore) if rng.random() < 0.7 else None
            if correction is not None:
                clicks.append(correction)
        positive, negative = click_discs(truth.shape, clicks, CLICK_RADIUS)
        positive &= ~negative
        r0, r1, c0, c1 = prompt_window(positive | previous, truth.shape, has_previous=bool(previous.any()),
                                       scale=float(rng.uniform(0.85, 1.2)))
        shift = [int(v) for v in rng.normal(0, 0.08 * (r1 - r0), 2).round()]
        r0, r1 = _moved(r0, r1, shift[0], truth.shape[0])
        c0, c1 = _moved(c0, c1, shift[1], truth.shape[1])
        image = torch.from_numpy(x[:, region[0], region[1]][:, r0:r1, c0:c1].copy())
        stacked = np.stack([positive, negative, previous, truth, ~ignore])
        masks = torch.from_numpy(stacked[:, r0:r1, c0:c1].copy())
        if self.augment is not None:
            if self.augment.hflip and rng.random() < 0.5:
                image, masks = image.flip(-1), masks.flip(-1)
            if self.augment.vflip and rng.random() < 0.5:
                image, masks = image.flip(-2), masks.flip(-2)
            image = self.augment.intensity(image)
        inputs = window_input(image, masks[0], masks[1], masks[2], self.side)
        targets = F.interpolate(masks[3:].float()[None], size=(self.side, self.side), mode="area")[0] >= 0.5
        radius = torch.tensor(CLICK_RADIUS * self.side / max(r1 - r0, c1 - c0), dtype=torch.float32)
        return inputs, targets[0].float(), targets[1], radius


def _moved(start: int, stop: int, by: int, size: int) -> tuple[int, int]:
    """[start, stop) moved by ``by``, kept inside [0, size)."""
    length = stop - start
    start = max(0, min(start + by, size - length))
    return start, min(size, start + length)


def self_correct(model: torch.nn.Module, x: torch.Tensor, truth: torch.Tensor, labelled: torch.Tensor,
                 radius: torch.Tensor, rounds: int) -> torch.Tensor:
    """``x`` after ``rounds`` of the network's own answers (no gradients): each becomes the
    previous mask, and the simulated user's next click on it is drawn."""
    if rounds == 0:
        return x
    x = x.clone()
    channels = x.shape[1] - PROMPT_CHANNELS
    truth_np = truth.cpu().numpy() > 0.5
    ignore_np = ~labelled.cpu().numpy()
    with torch.no_grad():
        for _ in range(rounds):
            found = model(x)[:, 0] > 0
            found_np = found.cpu().numpy()
            x[:, channels + 2] = found.to(x.dtype)
            for b in range(x.shape[0]):
                click = next_click(found_np[b], truth_np[b], ignore_np[b])
                if click is not None:
                    row, col, positive = click
                    _draw_disc(x[b, channels + (0 if positive else 1)], row, col, float(radius[b]))
    return x


def click_loss(logits: torch.Tensor, truth: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice over the labelled pixels."""
    weight = labelled.float()
    bce = (F.binary_cross_entropy_with_logits(logits, truth, reduction="none") * weight).sum()
    bce = bce / weight.sum().clamp(min=1)
    p = torch.sigmoid(logits) * weight
    t = truth * weight
    dice = 1 - (2 * (p * t).sum((1, 2)) + 1) / (p.sum((1, 2)) + t.sum((1, 2)) + 1)
    return bce + dice.mean()


def validation_objects(pairs: Sequence[tuple[Path, Path]], ignore_index: int | None
                       ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(image, object mask, unlabelled pixels) of up to :data:`VAL_OBJECTS` held-out objects: the
    first two of at least 200 pixels in each image."""
    found = []
    for image_path, label_path in pairs:
        image = imread(image_path)
        labels = read_label_png(label_path)
        ignore = labels == ignore_index if ignore_index is not None else np.zeros(labels.shape, bool)
        ids, sizes = np.unique(labels[(labels > 0) & ~ignore], return_counts=True)
        for obj in ids[sizes >= 200][:2]:
            found.append((image, labels == obj, ignore))
        if len(found) >= VAL_OBJECTS:
            break
    return found[:VAL_OBJECTS]


def mean_click_iou(predictor: Any, objects: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> float:
    """The simulated user on each object for :data:`VAL_CLICKS` clicks: the mean IoU over them (a
    session that has nothing left to correct keeps its last IoU), averaged over the objects."""
    scores = []
    for image, truth, ignore in objects:
        ious, _ = simulate(predictor.follow, image, truth, ignore, max_clicks=VAL_CLICKS, stop_at=None)
        ious += [ious[-1] if ious else 1.0] * (VAL_CLICKS - len(ious))
        scores.append(float(np.mean(ious)))
    return float(np.mean(scores))


def choose_threshold(predictor: Any, objects: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]
                     ) -> dict[str, float]:
    """The object probability with the best :func:`mean_click_iou` on the validation objects (the
    family's 0.5 unless another does strictly better); none without validation objects."""
    if not objects:
        return {}
    predictor.model.eval()
    best = (-1.0, 0.5)
    for threshold in sorted(THRESHOLDS, key=lambda t: t != 0.5):
        predictor.threshold = threshold
        score = mean_click_iou(predictor, objects)
        if score > best[0]:
            best = (score, threshold)
    predictor.threshold = 0.5
    return {"threshold": best[1]}


@register_adapter("clicks")
class ClickAdapter:
    """Click models: objects of instance label PNGs, simulated prompts, iterative training;
    validated by the simulated user (``val_click_iou``: mean IoU over the first
    :data:`VAL_CLICKS` clicks); the decision threshold is then chosen on the same objects."""

    def prepare(self, config: TrainConfig, device: torch.device) -> Prepared:
        from ..infer.clicks import ClickPredictor

        refuse_semantic_options(config, "click model")
        data = config.data
        pairs, val_pairs, inputs = training_items(config, pair_by_stem, lambda pair: pair[0])
        train_set = ClickSamples(pairs, inputs=inputs, ignore_index=data.ignore_index, side=data.crop,
                                 augment=augment_of(config))
        val_objects = validation_objects(val_pairs, data.ignore_index)
        options = {**config.model.options, "num_classes": 1, "in_channels": inputs.channels + PROMPT_CHANNELS}
        model = on_device(get_model(config.model.name, **options), device)
        predictor = ClickPredictor(model, class_names=["object"], inputs=inputs, device=device,
                                   name="validation", architecture=config.model.name)

        def batch_loss(batch: Any) -> torch.Tensor:
            x, truth, labelled, radius = (t.to(device, non_blocking=True) for t in batch)
            x = x.contiguous(memory_format=torch.channels_last)
            rounds = int(np.searchsorted(np.cumsum(ROUNDS), float(torch.rand(())), side="right"))
            x = self_correct(model, x, truth, labelled, radius, min(rounds, len(ROUNDS) - 1))
            return click_loss(model(x)[:, 0], truth, labelled)

        def validate() -> dict[str, float]:
            if not val_objects:
                return {}
            model.eval()
            return {"val_click_iou": mean_click_iou(predictor, val_objects)}

        return Prepared(model, train_set, None, inputs, ["object"], "val_click_iou", batch_loss, validate,
                        tune=partial(choose_threshold, predictor, val_objects))
