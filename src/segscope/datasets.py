"""Datasets that need no download: :func:`synthetic_shapes`, with semantic, instance and panoptic truth.

Real datasets are read with :func:`segscope.io.read_annotations` and the readers in
:mod:`segscope.io`; this module makes small scenes whose truth is known exactly, for tests, demos
and quick checks of a training loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import Segmentation

__all__ = ["SHAPES_CLASSES", "SHAPES_THINGS", "SyntheticSample", "synthetic_shapes"]

SHAPES_CLASSES: tuple[str, ...] = ("sky", "ground", "disc", "square")
"""Category names of :func:`synthetic_shapes`, by index."""
SHAPES_THINGS: tuple[int, ...] = (2, 3)
"""The countable categories (discs and squares); sky and ground are stuff."""

_COLOURS = np.array([[120, 165, 225], [115, 95, 60], [215, 60, 50], [60, 80, 200]], np.float64)


@dataclass(frozen=True)
class SyntheticSample:
    """One synthetic scene and its truth in every task's form."""

    image: np.ndarray
    """(H, W, 3) uint8 colour image."""
    semantic: Segmentation
    """Class per pixel (no void)."""
    instances: Segmentation
    """One instance per visible disc or square: its visible (occluded-away) mask, category 2 or 3."""
    panoptic: Segmentation
    """Sky and ground as stuff, every visible shape as a thing."""


def synthetic_shapes(
    n: int, size: int | tuple[int, int] = 128, *, seed: int = 0, max_objects: int = 8, noise: float = 12.0
) -> list[SyntheticSample]:
    """Scenes of sky and ground (stuff) with overlapping discs and squares (things).

    Each scene splits sky from ground along a wavy horizon, then draws 1 to ``max_objects``
    shapes, each partly hiding those drawn before it, and adds Gaussian noise. The truth is the
    visible part of each shape, so the instance, semantic and panoptic views agree pixel for pixel,
    and shapes that end up fully hidden are left out.

    Parameters
    ----------
    n : int
        Number of scenes.
    size : int or (int, int)
        Image side, or (height, width).
    seed : int
        The same seed gives the same scenes.
    max_objects : int
        Most shapes per scene.
    noise : float
        Standard deviation of the added noise, in grey levels.

    Returns
    -------
    list of SyntheticSample
        Categories index :data:`SHAPES_CLASSES`; :data:`SHAPES_THINGS` are the countable ones.

    Examples
    --------
    >>> sample = synthetic_shapes(1, 64, seed=3)[0]
    >>> sample.image.shape, sample.panoptic.kind
    ((64, 64, 3), 'panoptic')
    >>> bool((sample.semantic.class_map() == sample.panoptic.class_map()).all())
    True
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(height, width) < 16:
        raise ValueError(f"size must be at least 16 pixels a side, got {height}x{width}")
    if max_objects < 1:
        raise ValueError(f"max_objects must be at least 1, got {max_objects}")
    rng = np.random.default_rng(seed)
    return [_scene(rng, height, width, max_objects, noise) for _ in range(n)]


def _scene(rng: np.random.Generator, height: int, width: int, max_objects: int, noise: float
           ) -> SyntheticSample:
    rows, cols = np.mgrid[:height, :width]
    horizon = height * rng.uniform(0.3, 0.6) + height * 0.06 * np.sin(
        cols * rng.uniform(2, 6) * np.pi / width + rng.uniform(0, 2 * np.pi))
    classes = np.where(rows >= horizon, 1, 0).astype(np.uint8)
    owner = np.zeros((height, width), np.int32)  # which shape (1-based, in drawing order) shows
    shape_classes: list[int] = []
    small = min(height, width)
    for k in range(int(rng.integers(1, max_objects + 1))):
        category = int(rng.choice(SHAPES_THINGS))
        radius = rng.uniform(0.06, 0.16) * small
        cy, cx = rng.uniform(radius, height - radius), rng.uniform(radius, width - radius)
        if category == 2:
            inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
        else:
            inside = (np.abs(rows - cy) <= radius) & (np.abs(cols - cx) <= radius)
        owner[inside] = k + 1
        shape_classes.append(category)
    for k, category in enumerate(shape_classes):
        classes[owner == k + 1] = category

    image = _COLOURS[classes] + rng.normal(0, noise, (height, width, 3))
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    visible = [k + 1 for k in range(len(shape_classes)) if (owner == k + 1).any()]
    masks = np.stack([owner == k for k in visible]) if visible else np.zeros((0, height, width), bool)
    thing_categories = [shape_classes[k - 1] for k in visible]
    instances = Segmentation.from_masks(masks, categories=thing_categories, class_names=SHAPES_CLASSES)

    panoptic_labels = np.zeros((height, width), np.int32)
    ids: list[int] = []
    categories: list[int] = []
    is_thing: list[bool] = []
    for stuff in (0, 1):
        region = classes == stuff  # shapes already painted their own classes over it
        if region.any():
            ids.append(len(ids) + 1)
            panoptic_labels[region] = ids[-1]
            categories.append(stuff)
            is_thing.append(False)
    for mask, category in zip(masks, thing_categories, strict=True):
        ids.append(len(ids) + 1)
        panoptic_labels[mask] = ids[-1]
        categories.append(category)
        is_thing.append(True)
    panoptic = Segmentation(panoptic_labels, "panoptic", ids=ids, categories=categories,
                            is_thing=is_thing, class_names=SHAPES_CLASSES)
    semantic = Segmentation.from_class_map(classes, num_classes=len(SHAPES_CLASSES),
                                           class_names=SHAPES_CLASSES)
    return SyntheticSample(image, semantic, instances, panoptic)
