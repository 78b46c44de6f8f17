"""Panoptic fusion: one panoptic result from any semantic result and any instance result."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .result import Provenance, Segmentation

__all__ = ["fuse"]


def fuse(
    semantic: Segmentation,
    instances: Segmentation,
    *,
    things: Iterable[int],
    overlap_threshold: float = 0.5,
    score_threshold: float = 0.5,
    min_stuff_area: int = 4096,
) -> Segmentation:
    """Combine a semantic and an instance result into a panoptic result.

    Instances are placed first, best score first: each one claims the pixels no better instance
    has taken, and is dropped when more than ``overlap_threshold`` of its mask is already taken
    or its score is below ``score_threshold`` (unscored instances are kept, after the scored
    ones, in their own order). The remaining pixels take the semantic class where it is stuff,
    one segment per class, dropped when smaller than ``min_stuff_area``. Pixels of a thing class
    that no instance claimed, and dropped stuff, are void (0).

    Parameters
    ----------
    semantic : Segmentation
        A ``semantic`` result (its categories index the same classes as the instances').
    instances : Segmentation
        An ``instance`` result; its full masks are used where held, so overlaps are resolved here.
    things : iterable of int
        The categories that are countable things; every other semantic category is stuff.
    overlap_threshold : float
        Largest fraction of an instance that may already be taken for it still to be placed.
    score_threshold : float
        Instances scoring below this are left out.
    min_stuff_area : int
        Smallest stuff segment kept, in pixels.

    Returns
    -------
    Segmentation
        ``panoptic``: things carry their instance's category and score; stuff has no score.

    References
    ----------
    .. [1] Kirillov, He, Girshick, Rother and Dollar, "Panoptic Segmentation", CVPR 2019
           (the heuristic combination of Section 7).

    Examples
    --------
    >>> import numpy as np
    >>> sem = Segmentation.from_class_map(np.array([[0, 0, 1, 1]] * 2), num_classes=2)
    >>> inst = Segmentation.from_masks(np.array([[[0, 0, 1, 1]] * 2], bool), categories=[1],
    ...                                scores=[0.9])
    >>> pan = fuse(sem, inst, things=[1], min_stuff_area=1)
    >>> pan.categories.tolist(), pan.is_thing.tolist()
    ([1, 0], [True, False])
    """
    if not isinstance(semantic, Segmentation) or semantic.kind != "semantic":
        raise TypeError(f"semantic must be a semantic Segmentation, got {_describe(semantic)}")
    if not isinstance(instances, Segmentation) or instances.kind != "instance":
        raise TypeError(f"instances must be an instance Segmentation, got {_describe(instances)}")
    if semantic.shape != instances.shape:
        raise ValueError(f"semantic result is {semantic.shape}, instance result is {instances.shape}")
    if not 0.0 <= overlap_threshold <= 1.0:
        raise ValueError(f"overlap_threshold must be in [0, 1], got {overlap_threshold}")
    if min_stuff_area < 0:
        raise ValueError(f"min_stuff_area must be non-negative, got {min_stuff_area}")
    thing_set = {int(c) for c in things}

    labels = np.zeros(semantic.shape, np.int32)
    taken = np.zeros(semantic.shape, bool)
    ids: list[int] = []
    categories: list[int] = []
    scores: list[float] = []
    is_thing: list[bool] = []
    masks = instances.instance_masks()
    score_of = instances.scores
    scored = np.flatnonzero(~np.isnan(score_of))
    order = [*scored[np.argsort(-score_of[scored], kind="stable")], *np.flatnonzero(np.isnan(score_of))]
    for k in order:
        if score_of[k] < score_threshold:  # False for NaN: unscored instances stay
            continue
        mask = masks[k]
        area = int(np.count_nonzero(mask))
        if area == 0:
            continue
        free = mask & ~taken
        free_area = int(np.count_nonzero(free))
        if free_area == 0 or (area - free_area) / area > overlap_threshold:
            continue
        ids.append(len(ids) + 1)
        labels[free] = ids[-1]
        taken |= free
        categories.append(int(instances.categories[k]))
        scores.append(float(score_of[k]))
        is_thing.append(True)

    class_map = semantic.class_map(void=-1)
    for category in semantic.categories:
        if int(category) in thing_set:
            continue
        region = (class_map == category) & ~taken
        if np.count_nonzero(region) < max(min_stuff_area, 1):
            continue
        ids.append(len(ids) + 1)
        labels[region] = ids[-1]
        categories.append(int(category))
        scores.append(float("nan"))
        is_thing.append(False)

    parameters = {"things": sorted(thing_set), "overlap_threshold": overlap_threshold,
                  "score_threshold": score_threshold, "min_stuff_area": min_stuff_area}
    return Segmentation(
        labels, "panoptic", ids=ids, categories=categories, scores=scores, is_thing=is_thing,
        class_names=semantic.class_names or instances.class_names,
        provenance=Provenance("panoptic.fuse", parameters=parameters),
    )


def _describe(value: object) -> str:
    return f"a {value.kind} Segmentation" if isinstance(value, Segmentation) else type(value).__name__
