"""Single objects from annotated datasets, for training and scoring click models.

A click model learns from objects and is scored object by object. A card's split names object
sources, each a kind of annotation (:data:`SOURCES`) with its options, and both the zoo build and
``benchmarks/interactive.py`` draw objects from them with :func:`objects_from`, so the card's
held-out objects are the benchmark's by construction:

* ``class_components``: label PNGs of classes (CamVid); each connected component of one of
  ``classes`` is an object;
* ``instances``: instance label PNGs (DSB2018), optionally every ``every``-th image from
  ``offset`` only (``keep="held"``) or all but those (``keep="rest"``);
* ``palette_instances``: VOC ``SegmentationObject`` palette PNGs beside ``JPEGImages`` (255 void);
* ``colour_components``: colour masks (the Dubai aerial set's ``tile_*/masks``); each connected
  component of ``colour`` is an object, seen in a ``window``-pixel crop around it.

Each object comes with the pixels its dataset leaves unlabelled (``ignore``), which are neither
scored nor clicked on.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SOURCES", "AnnotatedObject", "objects_from"]


@dataclass(frozen=True)
class AnnotatedObject:
    """One object of a dataset: its image, its mask and the unlabelled pixels."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    ignore: np.ndarray

    @property
    def source(self) -> str:
        """The first part of its name: the dataset it comes from."""
        return self.name.split("/")[0]


def _components(mask: np.ndarray, minimum: int) -> Iterator[np.ndarray]:
    """Each connected component of ``mask`` of at least ``minimum`` pixels, one full-size mask at a
    time (an image may hold hundreds)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())
    return (labels == k for k in range(1, count + 1) if sizes[k] >= minimum)


def _class_components(spec: dict[str, Any], data: Path) -> Iterator[AnnotatedObject]:
    from segscope import imread
    from segscope.io import read_label_png

    images = data / spec["images"]
    ignore_value = spec.get("ignore")
    for path in sorted((data / spec["labels"]).glob("*.png")):
        label = read_label_png(path)
        image = imread(next(images.glob(f"{path.stem}.*")))
        ignore = label == ignore_value if ignore_value is not None else np.zeros(label.shape, bool)
        for cls in spec["classes"]:
            for k, mask in enumerate(_components(label == cls, int(spec.get("min_size", 1)))):
                yield AnnotatedObject(f"{spec['name']}/{path.stem}/{cls}/{k}", image, mask, ignore)


def _instances(spec: dict[str, Any], data: Path) -> Iterator[AnnotatedObject]:
    from segscope import imread
    from segscope.io import read_label_png

    paths = sorted((data / spec["labels"]).glob("*.png"))
    every = int(spec.get("every", 1))
    held = set(paths[int(spec.get("offset", every - 1))::every]) if every > 1 else set(paths)
    keep = spec.get("keep", "all")
    per_image = spec.get("per_image")
    for path in paths:
        if (keep == "held" and path not in held) or (keep == "rest" and path in held):
            continue
        label = read_label_png(path)
        image = imread(next((data / spec["images"]).glob(f"{path.stem}.*")))
        ids, sizes = np.unique(label[label > 0], return_counts=True)
        chosen = ids[sizes >= int(spec.get("min_size", 1))]
        for obj in chosen[:per_image] if per_image else chosen:
            yield AnnotatedObject(f"{spec['name']}/{path.stem}/{obj}", image, label == obj,
                                  np.zeros(label.shape, bool))


def _palette_instances(spec: dict[str, Any], data: Path) -> Iterator[AnnotatedObject]:
    from segscope import imread
    from segscope.io.labels import read_palette_png

    root = data / spec["root"]
    for path in sorted((root / "SegmentationObject").glob("*.png")):
        objects, _ = read_palette_png(path)
        image = imread(next((root / "JPEGImages").glob(f"{path.stem}.*")))
        for obj in [v for v in np.unique(objects) if 0 < v < 255]:
            mask = objects == obj
            if mask.sum() >= int(spec.get("min_size", 1)):
                yield AnnotatedObject(f"{spec['name']}/{path.stem}/{obj}", image, mask, objects == 255)


def _colour(code: str) -> tuple[int, int, int]:
    value = int(code.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def _colour_components(spec: dict[str, Any], data: Path) -> Iterator[AnnotatedObject]:
    from segscope import imread

    colour = _colour(spec["colour"])
    void = _colour(spec["ignore_colour"]) if "ignore_colour" in spec else None
    side = int(spec.get("window", 512))
    per_image = spec.get("per_image")
    for area in spec["areas"]:
        folder = data / spec["root"] / area
        for mask_path in sorted((folder / "masks").glob("*.png")):
            rgb = imread(mask_path)[..., :3]
            inside = np.all(rgb == colour, axis=-1)
            unlabelled = np.all(rgb == void, axis=-1) if void else np.zeros(inside.shape, bool)
            image = imread(next((folder / "images").glob(f"{mask_path.stem}.*")))
            found = _components(inside, int(spec.get("min_size", 1)))
            for k, mask in enumerate(itertools.islice(found, per_image or None)):
                rows, cols = np.nonzero(mask)
                r0 = max(0, min(int(rows.mean()) - side // 2, mask.shape[0] - side))
                c0 = max(0, min(int(cols.mean()) - side // 2, mask.shape[1] - side))
                window = (slice(r0, r0 + side), slice(c0, c0 + side))
                name = f"{spec['name']}/{area}/{mask_path.stem}/{k}"
                yield AnnotatedObject(name, image[window], mask[window], unlabelled[window])


SOURCES: dict[str, Callable[[dict[str, Any], Path], Iterator[AnnotatedObject]]] = {
    "class_components": _class_components, "instances": _instances,
    "palette_instances": _palette_instances, "colour_components": _colour_components}
"""Kinds of object source, by the name a card's split gives in ``kind``."""


def objects_from(spec: dict[str, Any], data: Path, *, limit: int | None = None) -> Iterator[AnnotatedObject]:
    """The objects of one source (``spec["kind"]`` in :data:`SOURCES`, ``spec["name"]`` its name
    in results; paths relative to ``data``), in name order, at most ``limit`` (or ``spec["limit"]``)."""
    if spec["kind"] not in SOURCES:
        raise ValueError(f"object source {spec.get('name')!r}: unknown kind {spec['kind']!r}; kinds: "
                         f"{sorted(SOURCES)}")
    limit = limit if limit is not None else spec.get("limit")
    for count, item in enumerate(SOURCES[spec["kind"]](spec, data)):
        if limit is not None and count >= int(limit):
            return
        yield item
