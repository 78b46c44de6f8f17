"""Segment an image too large for memory, tile by tile, into a Zarr array or a tiled BigTIFF."""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from ..io.large import LargeImage, write_tiled_tiff
from ..resolve import ModelFile, resolve
from ..result import Provenance, Segmentation
from ..tiling import Clusters, GreyHistogram
from . import plans as _plans
from .executors import Progress, open_executor
from .grid import Tile, tile_grid
from .stitch import TileSummary, join_pieces, object_names, seam_strips

__all__ = ["TiledResult", "segment_tiled"]

_OUTPUT_SUFFIXES = (".zarr", ".tif", ".tiff")


@dataclass(frozen=True)
class TiledResult:
    """A finished tiled job: where its labels are and what it found.

    ``labels`` in the output holds class indices for semantic methods and object labels (1..n,
    0 for none) for regions and instances.
    """

    path: Path
    kind: str
    shape: tuple[int, int]
    method: str
    tiles: int
    resumed: int
    seconds: float
    executor: str
    objects: int | None = None
    class_names: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    already_complete: bool = False
    """The output held this very job, finished: nothing was run."""

    def read(self) -> np.ndarray:
        """The whole label array (only for outputs that fit in memory)."""
        if self.path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(self.path)
        import zarr

        labels: Any = zarr.open_group(self.path, mode="r")["labels"]
        return np.asarray(labels[...])

    def to_segmentation(self) -> Segmentation:
        """The result as a :class:`Segmentation` (only for outputs that fit in memory)."""
        labels = self.read()
        provenance = Provenance(self.method, details=self.details)
        if self.kind == "semantic":
            return Segmentation.from_class_map(labels, num_classes=len(self.class_names),
                                               class_names=self.class_names, provenance=provenance)
        if self.kind == "instance":
            ids = np.unique(labels)
            return Segmentation.from_labels(labels, kind="instance",
                                            categories={int(i): 0 for i in ids if i},
                                            class_names=self.class_names or ("object",),
                                            provenance=provenance)
        return Segmentation.from_labels(labels, kind="regions", provenance=provenance)


@dataclass(frozen=True)
class _Job:
    """What every worker needs: small and picklable."""

    source: str
    store: str
    plan: _plans.TilePlan
    state: dict[str, Any]
    height: int
    width: int
    label_dtype: str
    stride: int = 0  # provisional names per tile: more than the largest padded tile's pixels


def _source(path: str) -> LargeImage:
    stat = os.stat(path)
    return _open_source(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _open_source(path: str, modified: int, size: int) -> LargeImage:
    # Kept open between tiles of a job; a file rewritten under the same name is opened afresh.
    return LargeImage(path)


def _group(path: str) -> Any:
    """The job's Zarr group, opened once per process and job (a store made afresh, as by
    ``--overwrite``, has a new metadata file and is opened again)."""
    stat = os.stat(Path(path) / "zarr.json")
    return _open_group(path, stat.st_mtime_ns, stat.st_ino)


@lru_cache(maxsize=2)
def _open_group(path: str, modified: int, inode: int) -> Any:
    import zarr

    return zarr.open_group(path, mode="r+")


_STORE_FORMAT = 2
"""The layout of a job's working files (2: per-tile labels and their names); part of the job's
identity, so an unfinished job of another layout is never resumed."""


def _atomic_save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz that np.load reads, deflated at level 1: a tile's names are long runs, which the
    fastest level packs nearly as well as the default at a fifth of the time."""
    import zipfile

    tmp = path.with_name(f".{path.name}.tmp.npz")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ worker tasks
def _first_pass(tile: Tile, *, job: _Job) -> _plans.TileStatistics:
    return _plans.tile_statistics(job.plan, _source(job.source).read(*tile.core))


def _second_pass(tile: Tile, *, job: _Job, low: float, high: float) -> GreyHistogram:
    return _plans.tile_histogram(job.plan, _source(job.source).read(*tile.core), (low, high))


def _measure_pass(tile: Tile, *, job: _Job) -> list[Any]:
    return _plans.measure_tile(job.plan, _source(job.source).read(*tile.padded), tile.core_in_padded)


def _sample_pass(tile: Tile, *, job: _Job) -> dict[str, Any]:
    return _plans.sample_tile(job.plan, _source(job.source).read(*tile.core), origin=(tile.top, tile.left),
                              index=tile.index, total=job.height * job.width)


def _tile_pass(tile: Tile, *, job: _Job) -> int:
    """Segment one tile and write its core; the summary file, written last, marks it done."""
    plan = job.plan
    pixels = _source(job.source).read(*tile.padded)
    labels = _plans.segment_tile(plan, pixels, job.state, origin=(tile.pad_top, tile.pad_left))
    group = _group(job.store)
    if plan.stitches:
        # The core keeps the method's own labels (int32, small); the summary holds each label's
        # name, and the numbering pass maps labels to final numbers through it.
        lookup = object_names(labels, tile, height=job.height, width=job.width,
                              whole=not plan.joins_by_touch, stride=job.stride)
        local = labels[tile.core_in_padded]
        group["_ids"][tile.core] = local
        summary = {**TileSummary.of(local, lookup, tile, width=job.width).arrays(), "lookup": lookup}
        if not plan.joins_by_touch:
            summary.update(seam_strips(labels, lookup, tile))
    else:
        core = labels[tile.core_in_padded]
        group["labels"][tile.core] = core.astype(job.label_dtype, copy=False)
        summary = {"class_pixels": np.bincount(core.ravel().astype(np.int64),
                                               minlength=max(len(plan.class_names), 1))}
    _atomic_save(Path(job.store) / "_tiles" / f"{tile.index}.npz", summary)  # compressed: mostly runs
    return tile.index


def _relabel_pass(item: tuple[Tile, np.ndarray], *, job: _Job) -> int:
    """Write a tile's final numbers: its working labels mapped through its table (local label ->
    final number, made by the main process from the tile's names)."""
    tile, final_of_local = item
    group = _group(job.store)
    local = np.asarray(group["_ids"][tile.core])
    group["labels"][tile.core] = final_of_local[local].astype(job.label_dtype, copy=False)
    (Path(job.store) / "_relabelled" / str(tile.index)).touch()
    return tile.index


def _final_numbers(lookup: np.ndarray, names: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A tile's table from local label to final number. Labels seen only in its halo have names no
    core holds: they map to 0 (and no core pixel carries them)."""
    where = np.minimum(np.searchsorted(names, lookup), len(names) - 1)
    return np.where((names[where] == lookup) & (lookup != 0), labels[where], 0)


# ------------------------------------------------------------------------------------- job
def segment_tiled(
    image: str | os.PathLike[str],
    method: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    params: dict[str, Any] | None = None,
    tile: int = 1024,
    overlap: int = 128,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: Progress = True,
) -> TiledResult:
    """Segment an image of any size tile by tile, in bounded memory, writing labels as they come.

    The image is read one padded tile at a time (TIFF/BigTIFF and Zarr lazily), each tile is
    segmented with ``overlap`` pixels of context, and its core is written to ``output``. Results
    equal the untiled ones: exactly for pixel-wise methods; up to the numbering for connected
    components; and for regions and instances wherever objects are smaller than ``overlap``
    (objects crossing tile seams come out whole, named once). An interrupted job resumes where it
    stopped when run again with the same arguments.

    Parameters
    ----------
    image : str or path-like
        TIFF/BigTIFF (GeoTIFF tags are kept), a Zarr array, or any image :func:`segscope.imread`
        reads.
    method : str or path-like
        A method name (``segscope methods``) or a trained checkpoint / ONNX file.
    output : str or path-like
        A ``.zarr`` folder (array ``labels``, chunked like the tiles; job and results in its
        attributes) or a ``.tif``/``.tiff`` tiled BigTIFF (assembled at the end from a working
        ``<output>.parts.zarr``).
    params : dict, optional
        The method's options, as for :func:`segscope.segment`.
    tile : int
        Core tile size in pixels (also the Zarr chunk and TIFF tile size).
    overlap : int
        Context read around each tile. Local methods need at least their window's reach; object
        methods need more than the largest object.
    workers : int or None
        Local worker processes; None takes one per core; 1 runs in this process.
    scheduler : str or None
        Address of an existing ``dask.distributed`` scheduler instead of local workers.
    overwrite : bool
        Replace an output that holds a different job (by default that is an error).
    progress : bool or callable
        Show progress bars (on a terminal); or a callable told ``(pass, tiles done, tiles)``.

    Returns
    -------
    TiledResult

    Examples
    --------
    >>> import numpy as np, tifffile, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> image = np.zeros((300, 300), np.uint8); image[40:260, 100:140] = 200
    >>> tifffile.imwrite(os.path.join(folder, "big.tif"), image, tile=(64, 64))
    >>> result = segment_tiled(os.path.join(folder, "big.tif"), "connected_components",
    ...                        os.path.join(folder, "out.zarr"), tile=64, overlap=0, workers=1,
    ...                        progress=False)
    >>> result.objects  # one bar across five rows of tiles
    1
    """
    start = time.perf_counter()
    output = Path(output)
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 1:
        raise ValueError(f"tile must be a whole number of pixels, at least 1; got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Integral) or overlap < 0:
        raise ValueError(f"overlap must be a whole number of pixels, at least 0; got {overlap!r}")
    tile, overlap = int(tile), int(overlap)
    if output.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise ValueError(f"{output}: the output must end in .zarr, .tif or .tiff")
    as_tiff = output.suffix.lower() in (".tif", ".tiff")
    if as_tiff and tile % 16:
        raise ValueError(f"{output}: TIFF tiles must be a multiple of 16 pixels, got tile={tile}")
    try:
        import zarr
    except ImportError as exc:
        raise ImportError(f"tiled processing needs segscope[scale] (dask, distributed, zarr): {exc}") \
            from exc
    source = LargeImage(image)
    if as_tiff and output.exists() and not overwrite:
        raise FileExistsError(f"{output}: exists; pass overwrite=True (--overwrite) to replace it")
    # Methods are checked before any cluster starts; a model file is opened by a worker.
    resolved = resolve(method)
    method_plan = None if isinstance(resolved, ModelFile) else \
        _plans.make_plan(resolved.info, params, overlap=overlap)
    with _output_lock(output), open_executor(workers=workers, scheduler=scheduler) as executor:
        if as_tiff and output.exists() and not overwrite:  # finished while this job waited to start
            raise FileExistsError(f"{output}: exists; pass overwrite=True (--overwrite) to replace it")
        if method_plan is not None:
            plan = method_plan
        else:  # a model file: a worker reads its task, so this process never loads torch
            model = resolved.model_path
            task = next(iter(executor.map(_plans.model_task, [str(model)], progress=False)))
            plan = _plans.model_plan(model, dict(params or {}), overlap=overlap, task=task)
        try:
            result = _run(plan, source, method, output, store_for(output), executor, tile=tile,
                          overlap=overlap, overwrite=overwrite, progress=progress)
        except ValueError as exc:  # a method refusing the image's values: say which image
            if str(source.path) in str(exc):
                raise
            raise ValueError(f"{source.path}: {exc}") from exc
        result = replace(result, seconds=time.perf_counter() - start)
        if as_tiff:  # assembled from the working Zarr, which goes once the TIFF is complete
            store = store_for(output)
            write_tiled_tiff(output, zarr.open_group(store, mode="r")["labels"], tile=tile,
                             georeference=source.georeference)
            shutil.rmtree(store)
    return result


@contextmanager
def _output_lock(output: Path) -> Iterator[None]:
    """Hold ``<output>.lock`` for the whole job: a second job on the same output is refused at once
    rather than racing this one (the lock file stays; the lock goes with the process)."""
    import fcntl

    lock_path = output.with_name(output.name + ".lock")
    if not lock_path.parent.is_dir():
        raise FileNotFoundError(f"{output}: output folder {lock_path.parent} does not exist")
    handle = open(lock_path, "a+")  # noqa: SIM115 (held until the job ends)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FileExistsError(f"{output}: another segscope job is writing it now (it holds {lock_path}); "
                              "wait for it to end, or write elsewhere") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _fingerprint(source: LargeImage) -> dict[str, Any]:
    """What identifies the input: its size and modification time, and a hash of its shape, dtype,
    first bytes and nine sampled windows (a file rewritten in place is a different input)."""
    digest = hashlib.sha256(f"{source.shape} {source.dtype.str}".encode())
    path = source.path
    info = os.stat(path)
    if path.is_file():
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 16))
    height, width = source.shape[:2]
    side = 32
    for fy in (0.0, 0.5, 1.0):
        for fx in (0.0, 0.5, 1.0):
            top = int(fy * max(height - side, 0))
            left = int(fx * max(width - side, 0))
            window = source.read(slice(top, min(top + side, height)), slice(left, min(left + side, width)))
            digest.update(np.ascontiguousarray(window).tobytes())
    return {"size": info.st_size if path.is_file() else None, "modified_ns": info.st_mtime_ns,
            "sha256": digest.hexdigest()}


def store_for(output: Path) -> Path:
    """Where a job keeps its labels: the Zarr output itself, or a working Zarr beside a TIFF."""
    return output.with_name(output.name + ".parts.zarr") if output.suffix.lower() in (".tif", ".tiff") \
        else output


def _run(plan: _plans.TilePlan, source: LargeImage, method: str | os.PathLike[str], output: Path,
         store: Path, executor: Any, *, tile: int, overlap: int, overwrite: bool, progress: Progress
         ) -> TiledResult:
    """Stages 1 to 3 of a job on an open executor; the labels end in ``store``."""
    height, width = source.shape[:2]
    tiles = tile_grid(height, width, tile=tile, overlap=plan.halo)
    job_id = {"source": str(source.path.resolve()), "shape": [height, width], "method": str(method),
              "params": json.loads(json.dumps(plan.params, default=str)), "tile": tile, "overlap": overlap,
              "input": _fingerprint(source), "store_format": _STORE_FORMAT}
    group = _open_store(store, job_id, overwrite=overwrite)
    attrs = dict(group.attrs.get("segscope", {}))
    label_dtype = _label_dtype(plan)
    if "labels" not in group:
        group.create_array("labels", shape=(height, width), chunks=(tile, tile), dtype=label_dtype,
                           fill_value=0)
        if plan.stitches:
            group.create_array("_ids", shape=(height, width), chunks=(tile, tile), dtype="int32",
                               fill_value=0)
        for folder in ("_tiles", "_relabelled"):
            (store / folder).mkdir(exist_ok=True)
    if attrs.get("complete"):  # the same job, already finished: nothing to redo
        return TiledResult(output, plan.kind, (height, width), str(method), len(tiles), len(tiles),
                           0.0, "", attrs["details"].get("objects"), plan.class_names, attrs["details"],
                           already_complete=True)
    # 1. What the whole image decides (a threshold), once; kept for a resumed job.
    clock = time.perf_counter()
    stages: dict[str, float] = {}
    if "state" not in attrs:
        attrs["state"] = _jsonable(_global_state(plan, tiles, source, executor, progress))
        group.attrs["segscope"] = {**attrs, "job": job_id}
    state = {**attrs["state"], "image_pixels": height * width}
    job = _Job(str(source.path), str(store), plan, state, height, width, label_dtype,
               stride=(tile + 2 * plan.halo) ** 2 + 1)

    # 2. Every tile not done yet.
    stages["whole-image statistics"], clock = time.perf_counter() - clock, time.perf_counter()
    done = {int(p.stem) for p in (store / "_tiles").glob("*.npz")}
    todo = [t for t in tiles if t.index not in done]
    for _ in executor.map(partial(_tile_pass, job=job), todo, desc=f"{plan.method}: tiles",
                          progress=progress):
        pass
    summary_fields = ("ids", "counts", "firsts", "top", "bottom", "left", "right", "lookup") \
        if plan.stitches else ("class_pixels",)
    summaries = {t.index: _read_summary(store, t.index, summary_fields) for t in tiles}
    lookups = {i: s.pop("lookup") for i, s in summaries.items() if "lookup" in s}
    stages["tiles"], clock = time.perf_counter() - clock, time.perf_counter()

    # 3. Objects: join pieces across seams, then number them 1..n.
    details = {k: v for k, v in state.items() if k != "image_pixels"}
    objects: int | None = None
    if plan.stitches:
        names, labels, objects = _numbering(plan, tiles, summaries, store)
        stages["joining seams"], clock = time.perf_counter() - clock, time.perf_counter()
        relabelled = {int(p.name) for p in (store / "_relabelled").iterdir()}
        work = [(t, _final_numbers(lookups[t.index], names, labels)) for t in tiles
                if t.index not in relabelled]
        for _ in executor.map(partial(_relabel_pass, job=job), work, desc=f"{plan.method}: numbering",
                              progress=progress):
            pass
        details["objects"] = objects
        stages["numbering"] = time.perf_counter() - clock
    else:
        class_pixels = np.sum([summaries[t.index]["class_pixels"] for t in tiles], axis=0)
        details["class_pixels"] = {name: int(n) for name, n in
                                   zip(plan.class_names, class_pixels.tolist(), strict=False)}
    details["stage_seconds"] = {k: round(v, 2) for k, v in stages.items()}
    attrs.update({"job": job_id, "kind": plan.kind, "class_names": list(plan.class_names),
                  "details": _jsonable(details), "complete": True,
                  "georeference": {str(k): _jsonable(v) for k, v in source.georeference.items()}})
    group.attrs["segscope"] = attrs
    for folder in ("_tiles", "_relabelled"):
        shutil.rmtree(store / folder, ignore_errors=True)
    if plan.stitches and "_ids" in group:
        del group["_ids"]
    return TiledResult(output, plan.kind, (height, width), str(method), len(tiles), len(done), 0.0,
                       executor.description, objects, plan.class_names, details)


def _label_dtype(plan: _plans.TilePlan) -> str:
    if plan.kind == "semantic":
        return "uint8" if len(plan.class_names) <= 255 else "uint16"
    return "uint32"


def _open_store(store: Path, job_id: dict[str, Any], *, overwrite: bool) -> Any:
    """The output group: new, or the same job's to resume; another job's only with ``overwrite``."""
    import zarr

    if store.exists():
        try:
            group = zarr.open_group(store, mode="r+")
            recorded: Any = group.attrs.get("segscope", {})
            previous = recorded.get("job") if isinstance(recorded, dict) else None
        except (OSError, ValueError, KeyError, zarr.errors.GroupNotFoundError):
            previous = None
        if previous == job_id and not overwrite:
            return group
        if not overwrite:
            what = (f"another job ({previous.get('method')} on {Path(previous.get('source', '?')).name}, "
                    f"tile {previous.get('tile')}, overlap {previous.get('overlap')})"
                    if isinstance(previous, dict) else "something that is not a segscope output")
            raise FileExistsError(f"{store}: holds {what}; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(store) if store.is_dir() else store.unlink()
    group = zarr.open_group(store, mode="w")
    group.attrs["segscope"] = {"job": job_id}
    return group


def _global_state(plan: _plans.TilePlan, tiles: list[Tile], source: LargeImage, executor: Any,
                  progress: Progress) -> dict[str, Any]:
    """What every tile must share, decided once from the whole image as the plan declares."""
    # Statistics are read from the cores (each pixel counted once) by jobs that write nothing.
    job = _Job(str(source.path), "", plan, {}, source.height, source.width, "")
    if isinstance(plan.tiling, Clusters):
        parts = list(executor.map(partial(_sample_pass, job=job), tiles, desc=f"{plan.method}: sample",
                                  progress=progress))
        return _plans.fit_samples(plan, parts, height=source.height, width=source.width)
    state: dict[str, Any] = {}
    if plan.tile_measures:
        measures = list(executor.map(partial(_measure_pass, job=job), tiles,
                                     desc=f"{plan.method}: whole-image measures", progress=progress))
        state["params"] = _plans.combine_measures(plan, measures)
    if not plan.needs_histogram:
        return state
    stats = _plans.merge_statistics(list(executor.map(
        partial(_first_pass, job=job), tiles, desc=f"{plan.method}: histogram", progress=progress)))
    histogram = stats.histogram
    if histogram is None:  # float images: the bins need the whole image's range first
        parts = list(executor.map(partial(_second_pass, job=job, low=stats.low, high=stats.high), tiles,
                                  desc=f"{plan.method}: histogram (bins)", progress=progress))
        histogram = parts[0]
        for part in parts[1:]:
            histogram = histogram + part
    decided = _plans.decide_from_histogram(plan, stats, histogram)
    if "params" in decided:
        decided["params"] = {**state.get("params", {}), **decided["params"]}
    return {**state, **decided}


def _read_summary(store: Path, index: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Some arrays of a tile's summary file, read and the file closed (jobs have many tiles)."""
    with np.load(store / "_tiles" / f"{index}.npz") as saved:
        return {key: saved[key] for key in keys if key in saved.files}


def _numbering(plan: _plans.TilePlan, tiles: list[Tile], summaries: dict[int, Any], store: Path
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """Every name written in stage 1, sorted, and the final label (1..n, 0 dropped) of each."""
    edges = {i: TileSummary(**s) for i, s in summaries.items()}

    def strip(index: int, key: str) -> np.ndarray | None:
        # Seam strips are large (overlap x tile per side): read one at a time, when needed.
        return _read_summary(store, index, (key,)).get(key)

    found = join_pieces(edges, tiles, rule="touch" if plan.joins_by_touch else "overlap",
                        diagonal=plan.diagonal, strip=strip)
    names = np.unique(np.concatenate([e.ids for e in edges.values()] + [np.zeros(1, np.int64)]))
    roots = np.array([found.find(int(n)) for n in names.tolist()], np.int64)
    # Per object (root): its size and its first pixel in the whole image, over all its pieces.
    size_of = np.zeros(len(names), np.int64)
    first_of = np.full(len(names), np.iinfo(np.int64).max)
    for e in edges.values():
        where = np.searchsorted(names, e.ids)
        size_of[where] += e.counts
        first_of[where] = np.minimum(first_of[where], e.firsts)
    objects = np.unique(roots[names != 0])
    index = np.searchsorted(objects, roots)
    size = np.zeros(len(objects), np.int64)
    first = np.full(len(objects), np.iinfo(np.int64).max)
    real = names != 0
    np.add.at(size, index[real], size_of[real])
    np.minimum.at(first, index[real], first_of[real])
    keep = size >= plan.min_size
    # Objects are numbered 1..n in the raster order of their first pixel, as skimage.measure.label.
    number = np.zeros(len(objects), np.int64)
    order = np.argsort(first[keep], kind="stable")
    number[np.flatnonzero(keep)[order]] = np.arange(1, int(keep.sum()) + 1)
    labels = np.where(real, number[np.minimum(index, len(objects) - 1)] if len(objects) else 0, 0)
    unique_roots = objects[keep]
    return names, labels, len(unique_roots)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
