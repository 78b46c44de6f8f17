"""What every reader checks before it allocates: a regular file, and a bounded decoded size.

One limit serves every reader (images, label images, TIFF stacks, COCO masks, panoptic PNGs): the
number of bytes the decoded arrays would take, counted over every page, sample and byte. A small
file that claims a huge image (a decompression bomb) is refused before anything is allocated.

The limit is :data:`DEFAULT_MAX_BYTES` (4 GiB), or the ``SEGSCOPE_MAX_DECODED_BYTES`` environment
variable, or what :func:`set_max_decoded_bytes` sets; a reader's ``max_bytes`` option overrides it
for one call.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_MAX_BYTES", "ImageReadError", "check_decoded_size", "check_page_chain",
           "max_decoded_bytes", "open_pil", "pil_decoded_shape", "require_regular_file",
           "set_max_decoded_bytes"]


class ImageReadError(ValueError):
    """A file exists but cannot be read: not an image, truncated, too large, empty, not a file."""


DEFAULT_MAX_BYTES = 1 << 32
"""Decoded bytes a reader may allocate unless told otherwise (4 GiB)."""

_limit: int | None = None


def set_max_decoded_bytes(limit: int | None) -> None:
    """Set the limit for every reader of this process (None: back to the default or the
    ``SEGSCOPE_MAX_DECODED_BYTES`` environment variable)."""
    global _limit
    if limit is not None and limit < 1:
        raise ValueError(f"the decoded-size limit must be positive, got {limit}")
    _limit = limit


def max_decoded_bytes() -> int:
    """The limit in force."""
    if _limit is not None:
        return _limit
    text = os.environ.get("SEGSCOPE_MAX_DECODED_BYTES")
    if text:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"SEGSCOPE_MAX_DECODED_BYTES must be a number of bytes, got {text!r}") from None
        if value < 1:
            raise ValueError(f"SEGSCOPE_MAX_DECODED_BYTES must be positive, got {value}")
        return value
    return DEFAULT_MAX_BYTES


def check_decoded_size(path: os.PathLike[str] | str, shape: Iterable[int], itemsize: int, *,
                       what: str = "image", max_bytes: int | None = None) -> None:
    """Refuse, before allocating, an array of ``shape`` x ``itemsize`` bytes over the limit.

    >>> check_decoded_size("a.tif", (20, 100_000, 100_000), 1, max_bytes=1 << 30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segscope.io.limits.ImageReadError: a.tif: the image would decode to 200000000000 bytes ...
    """
    dims = tuple(int(s) for s in shape)
    if any(s < 0 for s in dims):
        raise ImageReadError(f"{path}: the {what} claims a negative size {dims}")
    total = int(np.prod(dims, dtype=object)) * int(itemsize)
    limit = max_decoded_bytes() if max_bytes is None else max_bytes
    if total > limit:
        raise ImageReadError(
            f"{path}: the {what} would decode to {total} bytes (shape {dims}, {itemsize} byte(s) each), "
            f"over the limit of {limit} bytes; raise it with max_bytes= or "
            "segscope.io.set_max_decoded_bytes if you trust the file")


def require_regular_file(path: os.PathLike[str] | str) -> Path:
    """``path`` as a Path, if it names a regular file (not a folder, FIFO, device or socket, which
    could block or never end)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise ImageReadError(f"{path}: not a regular file (a FIFO, device or socket); segscope reads files")
    return path


_pillow_lock = threading.Lock()
_pillow_readers = 0
_pillow_limit: Any = None


@contextlib.contextmanager
def open_pil(path: Path) -> Iterator[Any]:
    """``PIL.Image.open(path)`` for a reader that checks segscope's limit before it loads.

    Pillow's own pixel-count limit (a warning at 89 MP, an error at 179 MP, bands and bytes not
    counted) is lifted while any segscope reader has a file open: one limit serves every reader.
    The lift is counted, so concurrent readers in threads never restore it under one another.
    """
    from PIL import Image

    global _pillow_readers, _pillow_limit
    with _pillow_lock:
        if _pillow_readers == 0:
            _pillow_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _pillow_readers += 1
    try:
        with Image.open(path) as img:
            yield img
    except Image.DecompressionBombError as exc:  # a plugin that checks on its own: still a clear error
        raise ImageReadError(f"{path}: refused by Pillow as a decompression bomb ({exc})") from exc
    finally:
        with _pillow_lock:
            _pillow_readers -= 1
            if _pillow_readers == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_limit


def pil_decoded_shape(img: Any) -> tuple[tuple[int, ...], int]:
    """The shape and item size of the array a Pillow image decodes to (palettes expand to RGBA,
    every frame of an animation counted), read from its header."""
    width, height = img.size
    bands = 4 if img.mode in ("P", "PA") else len(img.getbands())
    itemsize = 4 if img.mode in ("I", "F") else 2 if img.mode.startswith("I;16") else 1
    frames = int(getattr(img, "n_frames", 1) or 1)
    return (frames, height, width, bands), itemsize


def check_page_chain(path: Path) -> None:
    """Walk a TIFF's chain of pages (IFDs) before tifffile does: a chain that loops back on itself
    (a damaged or hostile file) would keep a reader going forever."""
    import struct

    with open(path, "rb") as handle:
        head = handle.read(16)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return  # not a TIFF header: tifffile says what is wrong
        order = "<" if head[:2] == b"II" else ">"
        magic = struct.unpack(order + "H", head[2:4])[0]
        if magic == 42:
            count_fmt, entry, offset_fmt = "H", 12, "I"
            offset = struct.unpack(order + "I", head[4:8])[0]
        elif magic == 43 and len(head) >= 16:
            count_fmt, entry, offset_fmt = "Q", 20, "Q"
            offset = struct.unpack(order + "Q", head[8:16])[0]
        else:
            return
        size = path.stat().st_size
        seen: set[int] = set()
        while offset:
            if offset in seen:
                raise ImageReadError(f"{path}: its chain of pages loops back to byte {offset} (damaged)")
            if offset >= size:
                return  # a bad offset: tifffile reports it
            seen.add(offset)
            handle.seek(offset)
            raw = handle.read(struct.calcsize(count_fmt))
            if len(raw) < struct.calcsize(count_fmt):
                return
            tags = struct.unpack(order + count_fmt, raw)[0]
            handle.seek(offset + len(raw) + tags * entry)
            raw = handle.read(struct.calcsize(offset_fmt))
            if len(raw) < struct.calcsize(offset_fmt):
                return
            offset = struct.unpack(order + offset_fmt, raw)[0]
