"""Images too large for memory: read windows lazily, write labels tile by tile.

Readers: TIFF and BigTIFF (tiled, striped or pyramidal; tifffile's Zarr view reads only the tiles a
window touches), Zarr arrays, and any smaller format :func:`~segscope.io.imread` takes (read whole).
GeoTIFF georeferencing tags travel with the image so that a tiled BigTIFF output keeps them.

Writers: a Zarr array chunked like the tiles (every tile writes its own chunk, so workers never
race), and a tiled BigTIFF streamed from that array, written to a temporary file and renamed.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .images import imread, refuse_stacks
from .limits import ImageReadError

__all__ = [
    "GEOTIFF_TAGS",
    "LargeImage",
    "open_large",
    "write_tiled_tiff",
]

#: TIFF tags that carry GeoTIFF georeferencing (pixel scale, tie points, transformation, GeoKeys,
#: GDAL's no-data and metadata). They are copied verbatim from input to output.
GEOTIFF_TAGS = {
    33550: "ModelPixelScaleTag",
    33922: "ModelTiepointTag",
    34264: "ModelTransformationTag",
    34735: "GeoKeyDirectoryTag",
    34736: "GeoDoubleParamsTag",
    34737: "GeoAsciiParamsTag",
    42112: "GDAL_METADATA",
    42113: "GDAL_NODATA",
}

_TIFF_SUFFIXES = {".tif", ".tiff"}


CHUNK_CACHE_BYTES = 192 * 2**20
"""Decoded chunks a :class:`LargeImage` keeps (least recently used dropped first): for 1024 x 1024
8-bit tiles, three rows of a 20000-pixel-wide image."""


class _Squeezed:
    """A lazy array without its singleton plane axes (a one-plane TIFF series stored as (1, H, W))."""

    def __init__(self, array: Any, kept: list[int]) -> None:
        self._array, self._kept = array, kept
        self.shape = tuple(int(array.shape[k]) for k in kept)
        self.dtype = array.dtype

    def __getitem__(self, index: Any) -> Any:
        index = index if isinstance(index, tuple) else (index,)
        full: list[Any] = [0] * self._array.ndim
        for k, item in zip(self._kept, index, strict=False):
            full[k] = item
        for k in self._kept[len(index):]:
            full[k] = slice(None)
        return self._array[tuple(full)]


class LargeImage:
    """A lazily read (H, W) or (H, W, C) image; only the windows asked for are decoded.

    It pickles as its path, so that a Dask worker reopens the file instead of receiving pixels.

    Parameters
    ----------
    path : str or path-like
        A TIFF/BigTIFF file, a Zarr array (a ``.zarr`` folder holding one array, or a group with an
        ``image`` array), or a smaller PNG/JPEG/... file, which is read whole.

    Examples
    --------
    >>> import numpy as np, tempfile, os, tifffile
    >>> path = os.path.join(tempfile.mkdtemp(), "big.tif")
    >>> tifffile.imwrite(path, np.arange(64 * 48, dtype=np.uint16).reshape(64, 48), tile=(16, 16))
    >>> image = LargeImage(path)
    >>> image.shape, image.read(slice(16, 18), slice(0, 3)).tolist()
    ((64, 48), [[768, 769, 770], [816, 817, 818]])
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file")
        self._array: Any = None
        self._handle: Any = None
        self._channels_first = False
        self.georeference: dict[int, tuple[int, int, Any]] = {}
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self._cache_lock = threading.Lock()
        self._open()

    # --------------------------------------------------------------------------------- opening
    def _open(self) -> None:
        suffix = self.path.suffix.lower()
        if suffix == ".zarr" or (self.path.is_dir() and (self.path / "zarr.json").exists()):
            self._open_zarr()
        elif suffix in _TIFF_SUFFIXES:
            self._open_tiff()
        elif self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: is a folder, not an image file or Zarr array")
        else:
            self._array = imread(self.path)
        shape = tuple(int(s) for s in self._array.shape)
        if self._channels_first:
            shape = (*shape[1:], shape[0])
        if len(shape) not in (2, 3) or min(shape[:2]) == 0:
            raise ImageReadError(f"{self.path}: expected an (H, W) or (H, W, C) image, got shape {shape}")
        self.shape: tuple[int, ...] = shape
        self.dtype = np.dtype(self._array.dtype)
        if self.dtype.kind not in "buif":
            raise ImageReadError(f"{self.path}: unsupported pixel type {self.dtype}")

    def _open_tiff(self) -> None:
        import tifffile
        import zarr

        try:
            self._handle = tifffile.TiffFile(self.path)
            if not self._handle.pages:
                raise ImageReadError(f"{self.path}: TIFF has no images")
            series = self._handle.series[0]
            refuse_stacks(self.path, series.shape, series.axes)
            page = series.pages[0]
            for code in GEOTIFF_TAGS:
                tag = page.tags.get(code)
                if tag is not None:
                    self.georeference[code] = (int(tag.dtype), int(tag.count), tag.value)
            # Level 0 of a pyramid is the full resolution.
            store = series.aszarr(level=0) if len(series.levels) > 1 else series.aszarr()
            array = zarr.open_array(store, mode="r")
            kept = [k for k, a in enumerate(series.axes) if a in "YXS"]
            self._array = array if len(kept) == array.ndim else _Squeezed(array, kept)
            self._channels_first = "".join(a for a in series.axes if a in "YXS").startswith("S")
        except ImageReadError:
            raise
        except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError) as exc:
            raise ImageReadError(f"{self.path}: cannot open TIFF ({exc})") from exc

    def _open_zarr(self) -> None:
        import zarr

        try:
            node = zarr.open(self.path, mode="r")
        except (OSError, ValueError, KeyError) as exc:
            raise ImageReadError(f"{self.path}: cannot open Zarr ({exc})") from exc
        if isinstance(node, zarr.Group):
            if "image" not in node:
                names = sorted(node.array_keys())
                raise ImageReadError(f"{self.path}: Zarr group has no 'image' array (arrays: {names})")
            node = node["image"]
        self._array = node

    # ----------------------------------------------------------------------------- reading
    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The pixels of one window, channels last, exactly as stored.

        Windows of a chunked file (TIFF tiles or strips, Zarr chunks) are assembled from whole
        decoded chunks kept in a small LRU cache (:data:`CHUNK_CACHE_BYTES`), so that the
        overlapping windows of neighbouring tiles decode each chunk once rather than up to nine
        times.
        """
        if self._array is None:
            self._open()
        try:
            chunks = self._chunk_shape()
            if chunks is None:
                return self._read_direct(rows, cols)
            return self._read_chunked(rows, cols, chunks)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ImageReadError(f"{self.path}: cannot read window rows {rows.start}:{rows.stop}, "
                                 f"columns {cols.start}:{cols.stop} ({exc})") from exc

    def _read_direct(self, rows: slice, cols: slice) -> np.ndarray:
        if self._channels_first:
            return np.moveaxis(np.asarray(self._array[:, rows, cols]), 0, -1)
        return np.asarray(self._array[rows, cols])

    def _chunk_shape(self) -> tuple[int, int] | None:
        """(rows, cols) of the file's chunks, or None for an image held in memory."""
        if isinstance(self._array, np.ndarray):
            return None
        source = self._array._array if isinstance(self._array, _Squeezed) else self._array
        chunks = getattr(source, "chunks", None)
        if chunks is None:
            return None
        if isinstance(self._array, _Squeezed):
            chunks = tuple(chunks[k] for k in self._array._kept)
        if self._channels_first:
            chunks = chunks[1:]
        rows, cols = int(chunks[0]), int(chunks[1])
        bands = int(np.prod(self.shape[2:], dtype=np.int64)) if len(self.shape) > 2 else 1
        if rows * cols * bands * self.dtype.itemsize > CHUNK_CACHE_BYTES // 8:
            return None  # large chunks (a TIFF of a few big strips): read only the window
        return rows, cols

    def _read_chunked(self, rows: slice, cols: slice, chunks: tuple[int, int]) -> np.ndarray:
        top, bottom, _ = rows.indices(self.shape[0])
        left, right, _ = cols.indices(self.shape[1])
        out = np.empty((max(bottom - top, 0), max(right - left, 0), *self.shape[2:]), self.dtype)
        ch, cw = chunks
        for ci in range(top // ch, (bottom - 1) // ch + 1 if bottom > top else 0):
            for cj in range(left // cw, (right - 1) // cw + 1 if right > left else 0):
                block = self._chunk(ci, cj, chunks)
                r0, r1 = max(top, ci * ch), min(bottom, (ci + 1) * ch)
                c0, c1 = max(left, cj * cw), min(right, (cj + 1) * cw)
                out[r0 - top:r1 - top, c0 - left:c1 - left] = block[r0 - ci * ch:r1 - ci * ch,
                                                                     c0 - cj * cw:c1 - cj * cw]
        return out

    def _chunk(self, ci: int, cj: int, chunks: tuple[int, int]) -> np.ndarray:
        key = (ci, cj)
        with self._cache_lock:
            block = self._cache.get(key)
            if block is not None:
                self._cache.move_to_end(key)
                return block
        ch, cw = chunks
        block = self._read_direct(slice(ci * ch, min((ci + 1) * ch, self.shape[0])),
                                  slice(cj * cw, min((cj + 1) * cw, self.shape[1])))
        with self._cache_lock:
            self._cache[key] = block
            self._cached_bytes += block.nbytes
            while self._cached_bytes > CHUNK_CACHE_BYTES and len(self._cache) > 1:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= dropped.nbytes
        return block

    def close(self) -> None:
        with self._cache_lock:
            self._cache.clear()
            self._cached_bytes = 0
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._array = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"LargeImage({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


def open_large(path: str | os.PathLike[str]) -> LargeImage:
    """Open an image for windowed reading; see :class:`LargeImage`."""
    return LargeImage(path)


def write_tiled_tiff(path: str | os.PathLike[str], array: Any, *, tile: int,
                     georeference: dict[int, tuple[int, int, Any]] | None = None) -> None:
    """Stream a 2-D array (a Zarr array, or anything sliceable) into a tiled, compressed BigTIFF.

    Tiles are read from ``array`` one at a time, so memory stays at one tile. The file appears only
    when complete (written under a temporary name, then renamed). ``georeference`` holds GeoTIFF tags
    as ``{code: (dtype, count, value)}``, as :class:`LargeImage` reads them.
    """
    import tifffile

    path = Path(path)
    if tile % 16:
        raise ValueError(f"{path}: TIFF tiles must be a multiple of 16 pixels, got {tile}")
    height, width = (int(s) for s in array.shape)
    dtype = np.dtype(array.dtype)

    def tiles() -> Iterator[np.ndarray]:
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                block = np.asarray(array[top:top + tile, left:left + tile])
                if block.shape != (tile, tile):  # edge tiles are padded to the full tile size
                    block = np.pad(block, ((0, tile - block.shape[0]), (0, tile - block.shape[1])))
                yield block

    extratags: Sequence[tuple[int, int, int, Any, bool]] = [
        (code, dtype_code, count, value, True)
        for code, (dtype_code, count, value) in sorted((georeference or {}).items())
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tifffile.imwrite(tmp, tiles(), shape=(height, width), dtype=dtype, tile=(tile, tile),
                         bigtiff=True, compression="zlib", photometric="minisblack",
                         extratags=extratags)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
