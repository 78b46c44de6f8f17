"""Label images as PNG: plain 8/16-bit label PNGs and VOC-style palette PNGs."""

from __future__ import annotations

import io as _io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..result import Segmentation
from .formats import Format, ReadContext, register_format
from .limits import ImageReadError, check_decoded_size, open_pil, pil_decoded_shape, require_regular_file

__all__ = [
    "VOC_VOID",
    "apply_label_map",
    "read_label_png",
    "read_palette_png",
    "voc_palette",
    "write_label_png",
    "write_palette_png",
]

#: The value VOC's palette PNGs use for "void" (object borders, ambiguous pixels).
VOC_VOID = 255


def voc_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map: (n, 3) uint8, index 0 black, 255 cream (void)."""
    palette = np.zeros((n, 3), np.uint8)
    for index in range(n):
        c, r, g, b = index, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[index] = (r, g, b)
    return palette


def write_label_png(path: str | os.PathLike[str], labels: np.ndarray) -> None:
    """Write a label image as a greyscale PNG: 8-bit when every value fits, else 16-bit.

    Raises ValueError for negative labels or labels above 65535 (PNG's limit).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a label image is 2-D, got shape {labels.shape}")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{path}: labels must be integers, got dtype {labels.dtype}")
    lo, hi = int(labels.min(initial=0)), int(labels.max(initial=0))
    if lo < 0 or hi > 65535:
        raise ValueError(
            f"{path}: label values [{lo}, {hi}] do not fit a PNG (0..65535); save the "
            "Segmentation with segscope.io.save_segmentation or as TIFF instead"
        )
    from PIL import Image

    array = labels.astype(np.uint8 if hi <= 255 else np.uint16)
    buffer = _io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=3)
    atomic_write_bytes(path, buffer.getvalue())


def read_label_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a label PNG (8-bit, 16-bit or palette indices) as an int32 array."""
    from PIL import UnidentifiedImageError

    path = require_regular_file(path)
    try:
        with open_pil(path) as img:
            shape, itemsize = pil_decoded_shape(img)
            check_decoded_size(path, shape, itemsize)
            img.load()
            if img.mode in ("RGB", "RGBA"):
                raise ImageReadError(
                    f"{path}: a colour image, not a label image (for COCO panoptic PNGs use "
                    "segscope.io.read_coco_panoptic)"
                )
            array = np.asarray(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not a recognised image file") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode label image ({exc})") from exc
    if array.ndim != 2:
        raise ImageReadError(f"{path}: a label image is 2-D, got shape {array.shape}")
    if array.size == 0:
        raise ImageReadError(f"{path}: image has no pixels")
    return array.astype(np.int32)


def write_palette_png(
    path: str | os.PathLike[str], class_map: np.ndarray, *, palette: np.ndarray | None = None
) -> None:
    """Write a class index image (0..255, 255 = void) as a palette PNG, VOC style.

    The file shows in colour in any viewer and still stores the indices.
    """
    class_map = np.asarray(class_map)
    if class_map.ndim != 2:
        raise ValueError(f"{path}: a class map is 2-D, got shape {class_map.shape}")
    if not np.issubdtype(class_map.dtype, np.integer):
        raise TypeError(f"{path}: class indices must be integers, got dtype {class_map.dtype}")
    if class_map.size and (class_map.min() < 0 or class_map.max() > 255):
        raise ValueError(
            f"{path}: palette PNGs hold indices 0..255, got [{class_map.min()}, {class_map.max()}]"
        )
    pal = voc_palette() if palette is None else np.asarray(palette, np.uint8)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] > 256:
        raise ValueError(f"palette must be (n <= 256, 3), got shape {pal.shape}")
    from PIL import Image

    img = Image.fromarray(class_map.astype(np.uint8))
    # putpalette turns an "L" image into "P" and keeps its values as the indices.
    img.putpalette(pal.ravel().tolist())
    buffer = _io.BytesIO()
    img.save(buffer, format="PNG", compress_level=3)
    atomic_write_bytes(path, buffer.getvalue())


def apply_label_map(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``labels`` with each value ``source`` of ``mapping`` replaced by its ``target`` (ISBI's
    {255: 1}); other values unchanged.

    >>> apply_label_map(np.array([[0, 255]]), {255: 1}).tolist()
    [[0, 1]]
    """
    if not mapping:
        return labels
    lut = np.arange(max(int(labels.max(initial=0)), *mapping) + 1)
    for source, target in mapping.items():
        lut[source] = target
    return lut[labels]


def read_palette_png(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a palette PNG: the (H, W) index image (int32) and its (n, 3) palette."""
    indices = read_label_png(path)
    with open_pil(Path(path)) as img:
        if img.mode != "P":
            raise ImageReadError(f"{path}: not a palette PNG (mode {img.mode})")
        raw = img.getpalette() or []
    palette = np.asarray(raw, np.uint8).reshape(-1, 3)
    return indices, palette


def _read_labels(path: Path, context: ReadContext) -> Any:
    array = read_label_png(path)
    if context.task == "instance":
        return Segmentation.from_labels(array, kind="instance",
                                        categories=dict.fromkeys(np.unique(array).tolist(), 0))
    return array


def _write_labels(seg: Segmentation, folder: Path, stem: str) -> None:
    if seg.kind == "semantic" and int(seg.categories.max(initial=0)) < 255:
        write_palette_png(folder / f"{stem}.png", seg.class_map(void=255))
    else:
        write_label_png(folder / f"{stem}.png", seg.labels)


register_format(Format(
    "png", "one label PNG per image (semantic: palette PNG, 255 void; others: segment ids)",
    suffixes=(".png", ".tif", ".tiff"), read_file=_read_labels, priority=2, write_file=_write_labels))
