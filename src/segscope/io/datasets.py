"""Read a folder or file of annotations (or predictions) for evaluation, keyed by file stem.

One reader for every form a user has on disk, as the formats declare themselves
(:mod:`segscope.io.formats`): a folder of per-image files (label PNGs, ``.npz`` results, BSDS
``.mat`` files, YOLO ``.txt`` labels ...) or one JSON for all images (COCO, COCO panoptic).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..result import Segmentation
from . import bsds, coco, labels, npz, panoptic, yolo  # noqa: F401  (their formats register)
from .formats import Annotation, ReadContext, for_files, for_json, list_formats
from .volumes import file_stem

__all__ = ["Annotation", "read_annotations"]


def read_annotations(
    path: str | os.PathLike[str], *, task: str | None = None, images: str | os.PathLike[str] | None = None
) -> tuple[str, dict[str, Annotation]]:
    """Read annotations keyed by image file stem; returns the task they imply and the entries.

    Parameters
    ----------
    path : path
        A folder of per-image files of one registered format (the most specific wins when several
        are present: BSDS ``.mat``, then ``.npz``, label PNG/TIFF, YOLO ``.txt``), or one JSON
        file of a registered format (COCO instances, COCO panoptic, recognised by content).
    task : str, optional
        How to read files that do not say: label images hold class indices (``semantic``, the
        default) or object ids (``instance``).
    images : path, optional
        YOLO labels are normalised by their image's size: the folder of those images (default: the
        ``images`` folder beside the labels' folder, as YOLO datasets lay them out).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        return _read_one_file(path)
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and not p.name.startswith(".") and not p.stem.endswith("_overlay"))
    found = for_files(files)
    if found is None:
        known = "; ".join(f"{f.name}: {' '.join(f.suffixes)}" for f in list_formats()
                          if f.read_file is not None)
        raise ValueError(f"{path}: no annotation files of a known format in this folder ({known})")
    fmt, read, mine = found
    context = ReadContext(task=task, images=Path(images) if images is not None else path.parent / "images")
    entries = {file_stem(p): Annotation(read(p, context), source=str(p)) for p in mine}
    kinds = {e.value.kind for e in entries.values() if isinstance(e.value, Segmentation)}
    implied = fmt.task or task or (kinds.pop() if len(kinds) == 1 else "regions" if kinds else "semantic")
    return implied, entries


def _read_one_file(path: Path) -> tuple[str, dict[str, Annotation]]:
    if path.suffix.lower() != ".json":
        raise ValueError(f"{path}: expected a folder or a COCO / COCO panoptic .json file")
    data = coco.load_json(path)
    fmt = for_json(data)
    if fmt is None or fmt.read_all is None:
        raise ValueError(f"{path}: not a JSON of a known format (COCO instances or COCO panoptic)")
    return fmt.read_all(path)
