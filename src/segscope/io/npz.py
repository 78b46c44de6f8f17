"""segscope's own lossless format: a :class:`~segscope.Segmentation` as one ``.npz`` file.

Every field is kept (labels, per-segment facts, instance masks bit-packed, probabilities, class
names, provenance); nothing is pickled, so loading a file runs no code.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..result import Provenance, Segmentation
from .formats import Format, register_format

__all__ = ["FORMAT_VERSION", "load_segmentation", "save_segmentation"]

FORMAT_VERSION = 1


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)


def save_segmentation(segmentation: Segmentation, path: str | os.PathLike[str]) -> None:
    """Save a result losslessly to a ``.npz`` file (written atomically); read it back with
    :func:`load_segmentation`.

    Examples
    --------
    >>> import tempfile, os
    >>> seg = Segmentation.from_labels(np.array([[0, 1], [2, 2]]))
    >>> path = os.path.join(tempfile.mkdtemp(), "seg.npz")
    >>> save_segmentation(seg, path)
    >>> load_segmentation(path) == seg
    True
    """
    seg = segmentation
    meta = {
        "format": "segscope.Segmentation",
        "format_version": FORMAT_VERSION,
        "kind": seg.kind,
        "class_names": None if seg.class_names is None else list(seg.class_names),
        "provenance": None if seg.provenance is None else seg.provenance.to_dict(),
        "spacing": None if seg.spacing is None else list(seg.spacing),
    }
    arrays: dict[str, np.ndarray] = {
        "labels": seg.labels,
        "ids": seg.ids,
        "categories": seg.categories,
        "scores": seg.scores,
        "is_thing": seg.is_thing,
        "meta": np.frombuffer(json.dumps(meta, default=_json_default).encode(), np.uint8),
    }
    if seg.masks is not None:
        arrays["masks"] = np.packbits(seg.masks, axis=-1)
        arrays["masks_width"] = np.array(seg.masks.shape[-1])
    if seg.probabilities is not None:
        arrays["probabilities"] = seg.probabilities
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buffer.getvalue())


def load_segmentation(path: str | os.PathLike[str]) -> Segmentation:
    """Load a result written by :func:`save_segmentation`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != "segscope.Segmentation":
                raise ValueError("not a segscope Segmentation file")
            if int(meta.get("format_version", 0)) > FORMAT_VERSION:
                raise ValueError(f"format version {meta['format_version']} is newer than this segscope reads")
            masks = None
            if "masks" in data:
                width = int(data["masks_width"])
                masks = np.unpackbits(data["masks"], axis=-1, count=width).astype(bool)
            prov = meta.get("provenance")
            return Segmentation(
                data["labels"], meta["kind"], ids=data["ids"], categories=data["categories"],
                scores=data["scores"], is_thing=data["is_thing"], masks=masks,
                probabilities=data.get("probabilities"),
                class_names=meta.get("class_names"),
                provenance=None if prov is None else Provenance(**prov),
                spacing=meta.get("spacing"),
            )
    except Exception as exc:  # zipfile, zlib and NumPy raise many types on a damaged archive
        raise ValueError(f"{path}: cannot read a segscope Segmentation ({type(exc).__name__}: {exc})"
                         ) from exc


register_format(Format(
    "npz", "one segscope .npz per image (every field of the result, lossless)", suffixes=(".npz",),
    read_file=lambda path, context: load_segmentation(path), priority=3,
    write_file=lambda seg, folder, stem: save_segmentation(seg, folder / f"{stem}.npz")))
