"""Read a folder or file of annotations (or predictions) for evaluation, keyed by file stem.

One reader for every form a user has on disk: a folder of label PNGs (class indices or instance
ids), a folder of saved results (``.npz``), a folder of BSDS ``.mat`` files, a folder of YOLO
segmentation ``.txt`` files, a COCO JSON, or a COCO panoptic JSON with its PNG folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..result import Segmentation
from .bsds import read_bsds_groundtruth
from .coco import read_coco
from .images import image_info
from .labels import read_label_png
from .npz import load_segmentation
from .panoptic import read_coco_panoptic
from .yolo import read_yolo

__all__ = ["Annotation", "read_annotations"]

_LABEL_SUFFIXES = (".png", ".tif", ".tiff")


@dataclass
class Annotation:
    """One image's annotation (a result, or a BSDS ground truth of several annotators), crowd flags."""

    value: Any
    crowd: np.ndarray | None = None
    source: str = ""


def read_annotations(
    path: str | os.PathLike[str], *, task: str | None = None, images: str | os.PathLike[str] | None = None
) -> tuple[str, dict[str, Annotation]]:
    """Read annotations keyed by image file stem; returns the task they imply and the entries.

    Parameters
    ----------
    path : path
        A folder of label PNG/TIFF files, of ``.npz`` results or of BSDS ``.mat`` files; a COCO
        instances JSON; or a COCO panoptic JSON (its PNG folder beside it, as COCO ships it).
    task : str, optional
        How to read a folder of label images: ``semantic`` (values are class indices, the default),
        ``instance`` (values are object ids, one class) or ``regions``.
    images : path, optional
        YOLO labels are normalised by their image's size: the folder of those images (default: the
        ``images`` folder beside the labels' folder, as YOLO datasets lay them out).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise ValueError(f"{path}: expected a folder or a COCO / COCO panoptic .json file")
        return _read_json(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    mats = [p for p in files if p.suffix.lower() == ".mat"]
    npzs = [p for p in files if p.suffix.lower() == ".npz"]
    labels = [p for p in files if p.suffix.lower() in _LABEL_SUFFIXES and not p.stem.endswith("_overlay")]
    texts = [p for p in files if p.suffix.lower() == ".txt"]
    if texts and not (mats or npzs or labels):
        return "instance", _read_yolo_folder(path, texts, Path(images) if images else path.parent / "images")
    if mats:
        return "regions", {p.stem: Annotation(read_bsds_groundtruth(p), source=str(p)) for p in mats}
    if npzs:
        entries = {p.stem: Annotation(load_segmentation(p), source=str(p)) for p in npzs}
        kinds = {e.value.kind for e in entries.values()}
        return (kinds.pop() if len(kinds) == 1 else "regions"), entries
    if labels:
        kind = task or "semantic"
        out = {}
        for p in labels:
            array = read_label_png(p)
            if kind == "instance":
                value: Any = Segmentation.from_labels(
                    array, kind="instance", categories=dict.fromkeys(np.unique(array).tolist(), 0)
                )
            else:
                value = array
            out[p.stem] = Annotation(value, source=str(p))
        return kind, out
    raise ValueError(
        f"{path}: no label images (.png, .tif), results (.npz), YOLO labels (.txt) or BSDS .mat files "
        "in this folder"
    )


def _read_yolo_folder(path: Path, texts: list[Path], images: Path) -> dict[str, Annotation]:
    """YOLO label files, each read at the size of its image (found by file stem in ``images``)."""
    if not images.is_dir():
        raise ValueError(f"{path}: YOLO labels need their images' sizes; no images folder at {images} "
                         "(give it with images= / --images)")
    by_stem = {p.stem: p for p in images.iterdir() if p.is_file()}
    out = {}
    for text in texts:
        if text.stem not in by_stem:
            raise ValueError(f"{text}: no image named {text.stem}.* in {images}")
        info = image_info(by_stem[text.stem])
        height, width = info.shape[:2]
        out[text.stem] = Annotation(read_yolo(text, (height, width)), source=str(text))
    return out


def _read_json(path: Path) -> tuple[str, dict[str, Annotation]]:
    try:
        head = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from exc
    annotations = head.get("annotations") if isinstance(head, dict) else None
    if annotations and isinstance(annotations, list) and "segments_info" in annotations[0]:
        records = read_coco_panoptic(path)
        return "panoptic", {
            Path(r.file_name).stem: Annotation(r.segmentation, r.iscrowd, str(path)) for r in records
        }
    coco = read_coco(path)
    return "instance", {
        Path(r.file_name).stem: Annotation(r.segmentation, r.iscrowd, str(path)) for r in coco
    }
