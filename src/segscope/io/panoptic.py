"""COCO panoptic format (RGB PNG with id = R + 256 G + 256^2 B, plus a JSON of segments_info)."""

from __future__ import annotations

import io as _io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..result import Segmentation
from .coco import load_json
from .formats import Annotation, Format, register_format
from .images import imread

__all__ = [
    "PanopticRecord",
    "ids_to_rgb",
    "read_coco_panoptic",
    "rgb_to_ids",
    "write_coco_panoptic",
]


def rgb_to_ids(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic colour to segment id: ``R + 256 G + 256**2 B`` (int32)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] < 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    rgb = rgb[..., :3].astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def ids_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids (< 2**24) to COCO panoptic colours, (H, W, 3) uint8."""
    ids = np.asarray(ids, np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 1 << 24):
        raise ValueError(f"panoptic ids must lie in [0, 2**24), got [{ids.min()}, {ids.max()}]")
    return np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1).astype(np.uint8)


@dataclass
class PanopticRecord:
    """One image of a COCO panoptic file."""

    image_id: Any
    file_name: str
    segmentation: Segmentation
    iscrowd: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def read_coco_panoptic(
    json_path: str | os.PathLike[str], png_dir: str | os.PathLike[str] | None = None
) -> list[PanopticRecord]:
    """Read COCO panoptic annotations: the JSON and its folder of PNGs.

    ``png_dir`` defaults to the folder named like the JSON without its suffix, as COCO ships it.
    Categories index ``class_names`` directly; each segment's ``isthing`` comes from its category.
    """
    json_path = Path(json_path)
    data = load_json(json_path)
    if "annotations" not in data or "categories" not in data:
        raise ValueError(f"{json_path}: not a COCO panoptic file (no annotations/categories)")
    folder = Path(png_dir) if png_dir is not None else json_path.with_suffix("")
    try:
        max_cat = max((int(c["id"]) for c in data["categories"]), default=-1)
        names = [""] * (max_cat + 1)
        thing_cats = set()
        for cat in data["categories"]:
            names[int(cat["id"])] = str(cat["name"])
            if cat.get("isthing", 0):
                thing_cats.add(int(cat["id"]))
        return _panoptic_records(json_path, data, folder, names, thing_cats)
    except (ValueError, OSError) as exc:
        if str(json_path) in str(exc):
            raise
        # A PNG's own error names the PNG; the JSON that listed it is named first.
        raise type(exc)(f"{json_path}: a COCO panoptic entry holds a bad value ({exc})") from None
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{json_path}: a COCO panoptic entry lacks or mangles {exc}") from None


def _panoptic_records(json_path: Path, data: dict[str, Any], folder: Path, names: list[str],
                      thing_cats: set[int]) -> list[PanopticRecord]:
    records = []
    root = folder.resolve()
    for ann in data["annotations"]:
        png = (folder / str(ann["file_name"])).resolve()
        if not png.is_relative_to(root):
            raise ValueError(f"{json_path}: file_name {ann['file_name']!r} leaves the PNG folder {folder}")
        rgb = imread(png)
        if rgb.ndim != 3 or rgb.shape[-1] < 3 or rgb.dtype != np.uint8:
            raise ValueError(f"{png}: a panoptic PNG is 8-bit RGB, got {rgb.shape} {rgb.dtype}")
        ids = rgb_to_ids(rgb)
        infos = ann["segments_info"]
        seg_ids = [int(s["id"]) for s in infos]
        unknown = np.setdiff1d(np.unique(ids), [0, *seg_ids])
        if unknown.size:
            raise ValueError(f"{png}: pixel ids {unknown[:5].tolist()} missing from segments_info")
        result = Segmentation(
            ids, "panoptic", ids=seg_ids,
            categories=[int(s["category_id"]) for s in infos],
            is_thing=[int(s["category_id"]) in thing_cats for s in infos],
            class_names=names,
        )
        records.append(PanopticRecord(ann.get("image_id"), str(ann["file_name"]), result,
                                      np.array([bool(s.get("iscrowd", 0)) for s in infos], bool)))
    return records


def write_coco_panoptic(
    json_path: str | os.PathLike[str],
    records: Sequence[PanopticRecord],
    *,
    png_dir: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """Write panoptic results as COCO panoptic: one RGB PNG per image and one JSON.

    Every PNG is written before the JSON, and each file atomically, so a reader never finds a JSON
    that names a missing or partial PNG.
    """
    from PIL import Image

    json_path = Path(json_path)
    folder = Path(png_dir) if png_dir is not None else json_path.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    annotations: list[dict[str, Any]] = []
    names = list(class_names) if class_names else None
    thing_of: dict[int, bool] = {}
    for record in records:
        seg = record.segmentation
        if seg.kind != "panoptic":
            raise ValueError(f"{record.file_name}: expected a panoptic result, got {seg.kind}; "
                             "convert with .to_panoptic()")
        if names is None and seg.class_names is not None:
            names = list(seg.class_names)
        buffer = _io.BytesIO()
        Image.fromarray(ids_to_rgb(seg.labels)).save(buffer, format="PNG")
        png_name = Path(record.file_name).with_suffix(".png").name
        atomic_write_bytes(folder / png_name, buffer.getvalue())
        crowd = record.iscrowd if record.iscrowd.size else np.zeros(len(seg), bool)
        infos = []
        for s, is_crowd in zip(seg.segments, crowd, strict=True):
            r0, c0, r1, c1 = s.bbox
            if s.category is None:  # unreachable for a valid panoptic result
                raise ValueError(f"{record.file_name}: segment {s.id} has no category")
            thing_of[s.category] = s.is_thing
            infos.append({"id": s.id, "category_id": s.category, "area": s.area,
                          "bbox": [c0, r0, c1 - c0, r1 - r0], "iscrowd": int(is_crowd)})
        annotations.append({"image_id": record.image_id, "file_name": png_name,
                            "segments_info": infos})
    if names is None:
        names = [f"class_{i}" for i in range(max(thing_of, default=-1) + 1)]
    categories = [{"id": i, "name": n, "isthing": int(bool(thing_of.get(i, False)))}
                  for i, n in enumerate(names) if n or i in thing_of]
    payload = {"annotations": annotations, "categories": categories}
    atomic_write_bytes(json_path, json.dumps(payload).encode())


def _is_coco_panoptic(data: Mapping[str, Any]) -> bool:
    annotations = data.get("annotations")
    return isinstance(annotations, list) and bool(annotations) and isinstance(annotations[0], dict) \
        and "segments_info" in annotations[0]


def _read_panoptic_file(path: Path) -> tuple[str, dict[str, Annotation]]:
    return "panoptic", {Path(r.file_name).stem: Annotation(r.segmentation, r.iscrowd, str(path))
                        for r in read_coco_panoptic(path)}


def _write_panoptic_file(collected: Sequence[tuple[str, Segmentation]], folder: Path) -> None:
    from .coco import with_categories

    records = [PanopticRecord(k, name, seg.to_panoptic())
               for k, (name, seg) in enumerate(with_categories(collected))]
    write_coco_panoptic(folder / "panoptic.json", records)


register_format(Format(
    "panoptic", "panoptic.json and panoptic/ PNGs: COCO panoptic for all images",
    read_all=_read_panoptic_file, recognise=_is_coco_panoptic, write_all=_write_panoptic_file))
