"""Volumes beyond memory, in 3-D blocks, with the tiling strategies the methods declare.

A block is a cube of ``block`` voxels (smaller at the far edges) read with a halo of ``overlap``
voxels of context. What runs in each block is decided by the method's declared strategy
(:mod:`segscope.tiling`), as for images:

* ``HistogramThreshold``: the grey histograms of every block (of a float volume, over the whole
  volume's value range, found first) are summed, the method's own rule chooses its thresholds on
  the sum, and every block is classified with them: the very answer of the whole volume.
* ``LocalWindow``: each block runs the method with a halo of its declared reach, and keeps its core.
* A 3-D network (a model whose predictor takes volumes, such as the zoo's ``hippocampus``): each
  block runs the network's own sliding windows with a halo of one window and keeps its core, so
  every voxel is predicted with the context it has in the whole volume (the Gaussian blending
  near a block's edge differs, which can move a voxel whose classes are nearly tied).

Other strategies (objects joined across seams, clusters) are refused with a message naming the
method; they run on volumes that fit in memory (:func:`segscope.segment`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io.volumes import VolumeSource, open_volume
from ..registry import bind_parameters, get_method
from ..resolve import ModelFile, resolve
from ..tiling import GreyHistogram, HistogramThreshold, LocalWindow, grey, grey_histogram, value_range
from .executors import open_executor

__all__ = ["Block", "TiledVolume", "block_grid", "segment_volume_tiled"]

Slices = tuple[slice, slice, slice]


@dataclass(frozen=True)
class Block:
    """One block: its core (written) and its window read with the halo (clipped to the volume)."""

    index: int
    core: Slices
    padded: Slices

    @property
    def core_in_padded(self) -> Slices:
        a, b, c = (
            slice(k.start - p.start, k.stop - p.start) for k, p in zip(self.core, self.padded, strict=True)
        )
        return a, b, c


def block_grid(shape: tuple[int, int, int], *, block: int, overlap: int) -> list[Block]:
    """Cubes of ``block`` voxels covering a (Z, Y, X) volume, in raster order, each with a halo.

    Examples
    --------
    >>> blocks = block_grid((3, 5, 4), block=2, overlap=1)
    >>> len(blocks), blocks[-1].core, blocks[-1].padded[0]
    (12, (slice(2, 3, None), slice(4, 5, None), slice(2, 4, None)), slice(1, 3, None))
    """
    if block < 1:
        raise ValueError(f"block must be at least 1 voxel, got {block}")
    if overlap < 0:
        raise ValueError(f"overlap must be non-negative, got {overlap}")
    blocks: list[Block] = []
    starts = [range(0, n, block) for n in shape]
    for z in starts[0]:
        for y in starts[1]:
            for x in starts[2]:
                core = tuple(slice(s, min(s + block, n)) for s, n in zip((z, y, x), shape, strict=True))
                padded = tuple(
                    slice(max(c.start - overlap, 0), min(c.stop + overlap, n))
                    for c, n in zip(core, shape, strict=True)
                )
                blocks.append(Block(len(blocks), core, padded))  # type: ignore[arg-type]
    return blocks


@dataclass(frozen=True)
class TiledVolume:
    """A finished block job: where its labels are and what the method decided."""

    path: Path
    shape: tuple[int, int, int]
    method: str
    blocks: int
    seconds: float
    class_names: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def read(self) -> np.ndarray:
        """The whole label volume (only for outputs that fit in memory)."""
        import zarr

        labels: Any = zarr.open_group(str(self.path), mode="r")["labels"]
        return np.asarray(labels[...])


# ---------------------------------------------------------------------------------- block work
def _grey_block(source: VolumeSource, window: Slices) -> np.ndarray:
    return grey(source.read(window), spacing=source.spacing)


def _block_range(job: tuple[str, Slices]) -> tuple[float, float]:
    path, window = job
    return value_range(_grey_block(open_volume(path), window))


def _block_histogram(job: tuple[str, Slices, int, tuple[float, float] | None]) -> GreyHistogram:
    path, window, nbins, span = job
    return grey_histogram(_grey_block(open_volume(path), window), span=span, nbins=nbins)


def _classify_block(job: tuple[str, str, Block, dict[str, Any], list[float] | None, str]) -> int:
    """Run one block and write its core; returns the block's index."""
    import zarr

    path, method, block, params, thresholds, output = job
    source = open_volume(path)
    resolved = resolve(method)
    if isinstance(resolved, ModelFile):
        from ..io.volumes import Volume

        padded = Volume(source.read(block.padded), source.spacing)
        classes = resolved.segment(padded, **params).class_map()[block.core_in_padded]
        labels_out: Any = zarr.open_group(output, mode="r+")["labels"]
        labels_out[block.core] = np.asarray(classes, np.uint8)
        return block.index
    info = get_method(method)
    tiling = info.tiling
    if isinstance(tiling, HistogramThreshold) and thresholds is not None:
        classes = tiling.apply(_grey_block(source, block.core), thresholds)
    else:
        result = info.function(source.read(block.padded), **{**params, "spacing": source.spacing})
        classes = result.class_map()[block.core_in_padded]
    labels: Any = zarr.open_group(output, mode="r+")["labels"]
    labels[block.core] = np.asarray(classes, np.uint8)
    return block.index


def _sum(histograms: Iterator[GreyHistogram] | list[GreyHistogram]) -> GreyHistogram:
    total: GreyHistogram | None = None
    for h in histograms:
        total = h if total is None else total + h
    if total is None:
        raise ValueError("an empty volume")
    return total


# ------------------------------------------------------------------------------------- the job
def segment_volume_tiled(
    volume: str | os.PathLike[str],
    method: str,
    output: str | os.PathLike[str],
    *,
    params: dict[str, Any] | None = None,
    block: int = 128,
    overlap: int | None = None,
    workers: int | None = 1,
) -> TiledVolume:
    """Segment a volume (a Zarr volume read block by block, or a NIfTI / TIFF stack) into a Zarr
    array of class indices, in blocks of ``block`` voxels.

    Parameters
    ----------
    volume : path
        The volume (:func:`segscope.io.volumes.open_volume`): its spacing goes to the method.
    method : str
        A registered method that takes volumes and declares a ``HistogramThreshold`` or
        ``LocalWindow`` tiling.
    output : path
        A ``.zarr`` folder; its array ``labels`` holds the class indices, chunked like the blocks.
    params : dict, optional
        The method's options.
    block : int
        Side of the blocks, in voxels.
    overlap : int or None
        Halo around each block; None takes what the method declares (0 for thresholds, its
        window's reach for local ones). A smaller one than declared is refused.
    workers : int or None
        Local processes (1 runs here).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from segscope.io import write_volume
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_volume(folder / "v.zarr", np.arange(4 * 6 * 8, dtype=np.uint8).reshape(4, 6, 8))
    >>> done = segment_volume_tiled(folder / "v.zarr", "otsu", folder / "out.zarr", block=3)
    >>> done.blocks, int(done.read().sum())
    (12, 96)
    """
    import zarr

    start = time.perf_counter()
    output = Path(output)
    if output.suffix.lower() != ".zarr":
        raise ValueError(f"{output}: a tiled volume is written to a .zarr folder")
    if isinstance(resolve(method), ModelFile):
        return _network_blocks(
            volume,
            method,
            output,
            params=params or {},
            block=block,
            overlap=overlap,
            workers=workers,
            start=start,
        )
    info = get_method(method)
    if not info.takes_volumes:
        raise ValueError(f"method {method!r} segments 2-D images, not volumes")
    tiling = info.tiling
    if not isinstance(tiling, (HistogramThreshold, LocalWindow)):
        raise ValueError(
            f"method {method!r} declares {type(tiling).__name__ if tiling else 'no'} tiling: volumes "
            "are tiled for thresholds and local windows; segment this volume whole"
        )
    bound = bind_parameters(info, {k: v for k, v in (params or {}).items() if k != "spacing"})
    bound.pop("spacing", None)
    refusal = tiling.refuse(bound)
    if refusal:
        raise ValueError(refusal)
    source = open_volume(volume)
    z, y, x = source.shape[:3]
    shape = (z, y, x)
    needed = tiling.reach(bound) if isinstance(tiling, LocalWindow) else 0
    halo = needed if overlap is None else overlap
    if isinstance(tiling, LocalWindow) and halo < needed:
        raise ValueError(
            f"overlap {halo} is smaller than the {needed} voxels {method}'s {tiling.parameter} reaches"
        )
    blocks = block_grid(shape, block=block, overlap=halo)
    path = str(volume)
    thresholds: list[float] | None = None
    names = tiling.class_names(bound)
    with open_executor(workers=workers) as running:
        if isinstance(tiling, HistogramThreshold):
            if not tiling.floats and np.dtype(source.dtype).kind == "f":
                raise ValueError(
                    f"{method} chooses a float volume's threshold from every voxel, not from a "
                    "histogram: segment this volume whole, or convert it to integers"
                )
            span = None
            if np.dtype(source.dtype).kind == "f":
                ranges = list(
                    running.map(_block_range, [(path, b.core) for b in blocks], desc="range", unit="block")
                )
                span = (min(r[0] for r in ranges), max(r[1] for r in ranges))
            jobs = [(path, b.core, tiling.nbins(bound), span) for b in blocks]
            total = _sum(list(running.map(_block_histogram, jobs, desc="histogram", unit="block")))
            thresholds = [float(t) for t in tiling.choose(total, bound)]
        group = zarr.open_group(str(output), mode="w")
        group.create_array(
            "labels",
            shape=shape,
            chunks=(min(block, shape[0]), min(block, shape[1]), min(block, shape[2])),
            dtype=np.uint8,
            fill_value=0,
        )
        group.attrs.update(
            {
                "method": method,
                "class_names": list(names),
                "spacing": list(source.spacing),
                "thresholds": thresholds,
            }
        )
        jobs2 = [(path, method, b, bound, thresholds, str(output)) for b in blocks]
        for _ in running.map(_classify_block, jobs2, desc=method, unit="block"):
            pass
    details = {"thresholds": thresholds} if thresholds is not None else {}
    return TiledVolume(output, shape, method, len(blocks), time.perf_counter() - start, tuple(names), details)


def _network_blocks(
    volume: str | os.PathLike[str],
    method: str,
    output: Path,
    *,
    params: dict[str, Any],
    block: int,
    overlap: int | None,
    workers: int | None,
    start: float,
) -> TiledVolume:
    """A 3-D network in blocks, each read with a halo of one sliding window (default)."""
    import zarr

    model = resolve(method)
    predictor = model.predictor()  # type: ignore[union-attr]
    if not getattr(predictor, "takes_volumes", False):
        raise ValueError(f"{method}: a model of 2-D images, not volumes")
    window = int(predictor.inputs.crop or 0)
    halo = window if overlap is None else overlap
    source = open_volume(volume)
    z, y, x = source.shape[:3]
    shape = (z, y, x)
    blocks = block_grid(shape, block=block, overlap=halo)
    names = tuple(predictor.class_names)
    group = zarr.open_group(str(output), mode="w")
    group.create_array(
        "labels",
        shape=shape,
        chunks=(min(block, z), min(block, y), min(block, x)),
        dtype=np.uint8,
        fill_value=0,
    )
    group.attrs.update({"method": method, "class_names": list(names), "spacing": list(source.spacing)})
    jobs = [(str(volume), method, b, params, None, str(output)) for b in blocks]
    with open_executor(workers=workers) as running:
        for _ in running.map(_classify_block, jobs, desc=method, unit="block"):
            pass
    return TiledVolume(
        output,
        shape,
        method,
        len(blocks),
        time.perf_counter() - start,
        names,
        {"halo": halo, "window": window},
    )
