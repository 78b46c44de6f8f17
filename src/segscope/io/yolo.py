"""YOLO segmentation labels: one ``.txt`` per image, one instance per line, ``class x1 y1 x2 y2 ...``
with coordinates normalised by the image's width and height."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes
from ..result import Segmentation
from .coco import mask_to_polygons, polygons_to_mask
from .formats import Format, ReadContext, register_format
from .limits import check_decoded_size, require_regular_file

__all__ = ["read_yolo", "write_yolo"]


def read_yolo(
    path: str | os.PathLike[str], shape: tuple[int, int], *,
    class_names: Sequence[str] | None = None,
) -> Segmentation:
    """Read a YOLO segmentation label file: one instance per line, ``class x1 y1 x2 y2 ...``.

    Coordinates are normalised to [0, 1] by the image's width and height (``shape`` is (H, W)).
    Polygons are rasterised with pycocotools, as COCO polygons.
    """
    path = require_regular_file(path)
    height, width = shape
    check_decoded_size(path, (height, width), 1, what="YOLO label image")
    masks, cats = [], []
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a YOLO label file (not text: {exc.reason})") from None
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            cat = int(fields[0])
            coords = np.array([float(v) for v in fields[1:]])
        except ValueError as exc:
            raise ValueError(f"{path}:{line_no}: not a YOLO label line ({exc})") from exc
        if coords.size < 6 or coords.size % 2:
            raise ValueError(
                f"{path}:{line_no}: a polygon needs at least 3 x y pairs, got {coords.size} values"
            )
        if coords.min() < 0 or coords.max() > 1:
            raise ValueError(f"{path}:{line_no}: coordinates must be normalised to [0, 1]")
        xy = coords.reshape(-1, 2) * (width, height)
        masks.append(polygons_to_mask([xy.ravel().tolist()], height, width))
        cats.append(cat)
    stack = np.array(masks, bool).reshape(len(masks), height, width)
    return Segmentation.from_masks(stack, categories=cats, class_names=class_names)


def write_yolo(path: str | os.PathLike[str], segmentation: Segmentation) -> None:
    """Write instances as a YOLO segmentation label file (one polygon per instance part)."""
    height, width = segmentation.shape
    lines = []
    for mask, cat in zip(segmentation.instance_masks(), segmentation.categories, strict=True):
        if cat < 0:
            raise ValueError(f"{path}: YOLO labels need a category for every instance")
        polygons = mask_to_polygons(mask)
        if polygons is None:  # holes: keep the outer outline, as YOLO has no holes
            from scipy import ndimage

            polygons = mask_to_polygons(ndimage.binary_fill_holes(mask))
        for polygon in polygons or []:
            xy = np.asarray(polygon).reshape(-1, 2) / (width, height)
            lines.append(f"{int(cat)} " + " ".join(f"{v:.8f}" for v in xy.ravel()))
    atomic_write_bytes(path, ("\n".join(lines) + ("\n" if lines else "")).encode())


def _read_yolo_file(path: Path, context: ReadContext) -> Segmentation:
    """A YOLO label file read at the size of its image (found by stem in ``context.images``)."""
    from .images import image_info

    images = context.images if context.images is not None else path.parent.parent / "images"
    if not images.is_dir():
        raise ValueError(f"{path}: YOLO labels need their images' sizes; no images folder at {images} "
                         "(give it with images= / --images)")
    found = sorted(p for p in images.iterdir() if p.is_file() and p.stem == path.stem)
    if not found:
        raise ValueError(f"{path}: no image named {path.stem}.* in {images}")
    height, width = image_info(found[0]).shape[:2]
    return read_yolo(path, (height, width))


def _write_yolo_file(seg: Segmentation, folder: Path, stem: str) -> None:
    if seg.kind not in ("instance", "panoptic"):
        raise ValueError(f"--format yolo writes instances; {seg.kind} results have none (use png)")
    write_yolo(folder / f"{stem}.txt", seg[seg.is_thing] if seg.kind == "panoptic" else seg)


register_format(Format(
    "yolo", "one YOLO segmentation .txt per image (instances)", suffixes=(".txt",),
    read_file=_read_yolo_file, task="instance", priority=1, write_file=_write_yolo_file))
