"""COCO instance annotations (RLE and polygons).

Masks are encoded and decoded with pycocotools, the reference implementation, so that RLE strings
and polygon rasterisation agree bit for bit with every COCO tool. Polygons are traced along pixel
edges, which pycocotools rasterises back to exactly the same mask; a mask that no polygon can express
(one with holes) is written as RLE instead, so writing never loses pixels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..atomic import atomic_write_bytes
from ..result import Segmentation
from .formats import Annotation, Format, register_format
from .limits import check_decoded_size, require_regular_file

__all__ = [
    "CocoRecord",
    "mask_to_polygons",
    "mask_to_rle",
    "polygons_to_mask",
    "read_coco",
    "rle_to_mask",
    "write_coco",
]


@dataclass
class CocoRecord:
    """One image of a COCO file: its id, file name, and its instances as a Segmentation."""

    image_id: int
    file_name: str
    segmentation: Segmentation
    iscrowd: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    """Per instance (in ``segmentation.ids`` order): a crowd region, ignored by COCO's evaluation."""


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a (H, W) bool mask, with ``counts`` as a str (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"]}


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed list counts) to a bool mask."""
    from pycocotools import mask as mask_utils

    height, width = (int(s) for s in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        if sum(counts) != height * width:
            raise ValueError(
                f"uncompressed RLE counts sum to {sum(counts)}, expected {height}x{width}"
            )
        encoded = mask_utils.frPyObjects(dict(rle), height, width)
    else:
        encoded = {"size": [height, width],
                   "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(encoded).astype(bool)


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons (lists of x, y pairs in pixel-corner coordinates) the COCO way."""
    from pycocotools import mask as mask_utils

    odd = [len(p) for p in polygons if len(p) % 2]
    if odd:
        raise ValueError(f"a polygon is a list of x, y pairs; got {odd[0]} numbers")
    valid = [list(map(float, p)) for p in polygons if len(p) >= 6]
    # pycocotools walks every edge pixel by pixel (five steps a pixel): a coordinate that is not
    # finite, or lies far outside the image, would make it allocate without bound.
    reach = 10 * max(height, width) + 10
    for polygon in valid:
        coords = np.asarray(polygon)
        if not np.isfinite(coords).all():
            raise ValueError("a polygon holds a coordinate that is not a finite number")
        if np.abs(coords).max() > reach:
            raise ValueError(f"a polygon coordinate ({np.abs(coords).max():g}) lies far outside "
                             f"the {width}x{height} image")
    if not valid:
        return np.zeros((height, width), bool)
    rles = mask_utils.frPyObjects(valid, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def mask_to_polygons(mask: np.ndarray) -> list[list[float]] | None:
    """Trace a mask's outer outlines along pixel edges, as COCO polygons.

    Returns None when the mask has holes: COCO polygons cannot express them (use RLE).
    The result rasterises back to exactly ``mask`` with :func:`polygons_to_mask`.
    """
    import cv2
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if not mask.any():
        return []
    if not np.array_equal(ndimage.binary_fill_holes(mask), mask):
        return None
    # Trace on the mask doubled in size: a boundary pixel of the doubled mask at coordinate u lies
    # on the original pixel edge ceil(u / 2), which is where the COCO rasteriser expects vertices.
    doubled = np.repeat(np.repeat(mask, 2, axis=0), 2, axis=1).astype(np.uint8)
    contours, _ = cv2.findContours(doubled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        points = np.ceil(contour.reshape(-1, 2) / 2.0)
        if len(points) >= 3:
            polygons.append(points.astype(float).ravel().tolist())
    return polygons


def _encode(mask: np.ndarray, encoding: str) -> Any:
    if encoding == "polygon":
        polygons = mask_to_polygons(mask)
        if polygons is not None and np.array_equal(
            polygons_to_mask(polygons, *mask.shape), mask
        ):
            return polygons
    return mask_to_rle(mask)


def _bbox_xywh(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1),
            float(rows[-1] - rows[0] + 1)]


def read_coco(path: str | os.PathLike[str]) -> list[CocoRecord]:
    """Read a COCO instance annotation file: one :class:`CocoRecord` per image.

    Category ids index ``class_names`` directly (gaps in the ids get empty names). Images with no
    annotation give an empty instance result.
    """
    path = Path(path)
    data = load_json(path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: not a COCO instance file (no {key!r} list)")
    try:
        return _coco_records(path, data)
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path}: a COCO entry holds a bad value ({exc})") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: a COCO entry lacks or mangles {exc}") from None


def _coco_records(path: Path, data: dict[str, Any]) -> list[CocoRecord]:
    max_cat = max((int(c["id"]) for c in data["categories"]), default=-1)
    names = [""] * (max_cat + 1)
    for cat in data["categories"]:
        names[int(cat["id"])] = str(cat["name"])
    by_image: dict[int, list[dict[str, Any]]] = {int(im["id"]): [] for im in data["images"]}
    if len(by_image) != len(data["images"]):
        ids = [int(im["id"]) for im in data["images"]]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"{path}: image ids listed twice: {twice[:5]}")
    for ann in data["annotations"]:
        image_id = int(ann["image_id"])
        if image_id not in by_image:
            raise ValueError(f"{path}: annotation {ann.get('id')} names unknown image {image_id}")
        by_image[image_id].append(ann)
    records = []
    decoded = 0
    for image in data["images"]:
        height, width = int(image["height"]), int(image["width"])
        anns = by_image[int(image["id"])]
        # Every image's masks stay in memory: their total is bounded before each is allocated.
        decoded += len(anns) * max(height, 0) * max(width, 0)
        check_decoded_size(path, (decoded,), 1, what=f"masks up to image {image['id']} ({height}x{width})")
        masks = np.zeros((len(anns), height, width), bool)
        for k, ann in enumerate(anns):
            seg = ann["segmentation"]
            try:
                masks[k] = (rle_to_mask(seg) if isinstance(seg, dict)
                            else polygons_to_mask(seg, height, width))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: annotation {ann.get('id')}: bad segmentation ({exc})"
                                 ) from exc
        scores = [ann.get("score") for ann in anns]
        result = Segmentation.from_masks(
            masks,
            categories=[int(a["category_id"]) for a in anns],
            scores=None if all(s is None for s in scores) else
            np.array([np.nan if s is None else s for s in scores], float),
            class_names=names,
        )
        records.append(CocoRecord(int(image["id"]), str(image["file_name"]), result,
                                  np.array([bool(a.get("iscrowd", 0)) for a in anns], bool)))
    return records


def write_coco(
    path: str | os.PathLike[str],
    results: Mapping[str, Segmentation] | Sequence[CocoRecord],
    *,
    encoding: Literal["rle", "polygon"] = "rle",
    class_names: Sequence[str] | None = None,
) -> None:
    """Write instance (or panoptic/semantic, via their things) results as a COCO JSON file.

    Parameters
    ----------
    path : str or path-like
        Output ``.json`` file, written atomically.
    results : mapping of file name to Segmentation, or sequence of CocoRecord
        The images and their instances. Scores, where present, are written as ``score``.
    encoding : {"rle", "polygon"}
        ``polygon`` writes pixel-exact polygons where a mask allows it and RLE where it has holes.
    class_names : sequence of str, optional
        Category names by id; default: the results' own ``class_names``.
    """
    if encoding not in ("rle", "polygon"):
        raise ValueError(f"encoding must be 'rle' or 'polygon', got {encoding!r}")
    if isinstance(results, Mapping):
        records = [CocoRecord(k, name, seg) for k, (name, seg) in enumerate(results.items())]
    else:
        records = list(results)
    names = list(class_names) if class_names is not None else None
    images, annotations = [], []
    used: set[int] = set()
    ann_id = 1
    for record in records:
        seg = record.segmentation
        if seg.kind == "regions":
            raise ValueError(f"{record.file_name}: a regions result has no categories for COCO")
        if names is None and seg.class_names is not None:
            names = list(seg.class_names)
        height, width = seg.shape
        images.append({"id": int(record.image_id), "file_name": record.file_name,
                       "height": height, "width": width})
        masks = seg.instance_masks()
        crowd = record.iscrowd if record.iscrowd.size else np.zeros(len(seg), bool)
        for k, (cat, score) in enumerate(zip(seg.categories, seg.scores, strict=True)):
            mask = masks[k]
            ann: dict[str, Any] = {
                "id": ann_id,
                "image_id": int(record.image_id),
                "category_id": int(cat),
                "segmentation": mask_to_rle(mask) if crowd[k] else _encode(mask, encoding),
                "area": float(mask.sum()),
                "bbox": _bbox_xywh(mask),
                "iscrowd": int(crowd[k]),
            }
            if not np.isnan(score):
                ann["score"] = float(score)
            annotations.append(ann)
            used.add(int(cat))
            ann_id += 1
    if names is None:
        names = [f"class_{i}" for i in range(max(used, default=-1) + 1)]
    categories = [{"id": i, "name": n} for i, n in enumerate(names) if n or i in used]
    payload = {"images": images, "annotations": annotations, "categories": categories}
    atomic_write_bytes(path, json.dumps(payload).encode())


def load_json(path: Path) -> dict[str, Any]:
    """A JSON file holding an object, read with every failure (bad UTF-8, bad syntax, nesting
    deep enough to exhaust the parser) a ValueError naming the file."""
    require_regular_file(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return data


def with_categories(collected: Sequence[tuple[str, Segmentation]]) -> list[tuple[str, Segmentation]]:
    """Results as the COCO formats hold them: a regions result (which has no categories) becomes
    instances of one category, "region"."""
    out = []
    for file_name, seg in collected:
        if seg.kind == "regions":
            seg = Segmentation.from_labels(seg.labels, kind="instance", categories=dict.fromkeys(
                seg.ids.tolist(), 0), class_names=("region",), provenance=seg.provenance)
        out.append((file_name, seg))
    return out


def _is_coco(data: Mapping[str, Any]) -> bool:
    annotations = data.get("annotations")
    return isinstance(annotations, list) and "images" in data and \
        not (annotations and isinstance(annotations[0], dict) and "segments_info" in annotations[0])


def _read_coco_file(path: Path) -> tuple[str, dict[str, Annotation]]:
    return "instance", {Path(r.file_name).stem: Annotation(r.segmentation, r.iscrowd, str(path))
                        for r in read_coco(path)}


def _write_coco_file(collected: Sequence[tuple[str, Segmentation]], folder: Path) -> None:
    write_coco(folder / "annotations.json", {name: seg if seg.kind == "instance" else seg.to_panoptic()
                                             for name, seg in with_categories(collected)})


register_format(Format(
    "coco", "annotations.json: COCO instances (RLE or polygons) for all images",
    read_all=_read_coco_file, recognise=_is_coco, write_all=_write_coco_file))
