"""Scale benchmark: a 20000 x 20000 image segmented tile by tile in bounded memory, on Dask.

The benchmark makes its own image (nuclei-like discs on a noisy background, written tile by tile
as a compressed, tiled BigTIFF, so that the image itself never sits in memory), then segments it
with ``otsu``, ``watershed_instances`` and a deep model (FCN, ResNet-18, trained for one epoch on
crops of the same image). Each runs on a cluster of local worker processes that the benchmark
starts and addresses by its scheduler address, exactly as a remote cluster would be, first with
one worker and then with two. It prints throughput in megapixels per second, the speed-up of two
workers over one, and the peak memory of all processes together (the benchmark, the scheduler,
nannies and workers), which must stay under 2 GiB.

Peers, in the same run:
- ``otsu``: the whole image read into memory and thresholded by OpenCV (what a user does when it
  fits): compare its peak memory.
- ``watershed_instances``: ``dask.array.map_overlap`` over the same tiles with the same per-tile
  pipeline (what a user writes with Dask and scikit-image): labels are not unique across tiles and
  objects on seams are cut. The table counts seam objects that come out in two pieces.

Run: ``python benchmarks/scale.py`` (about 70 minutes on 2 cores, most of it the deep model on
one worker; ``--deep-workers 2`` skips that run); ``--size 4096`` for a quick look, which also
checks every tiled result against the untiled one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

TILE = 1024
OVERLAP = 128
GIB = 1024**3


# ------------------------------------------------------------------------------- the image
def disc_centres(size: int, *, seed: int = 0) -> np.ndarray:
    """(row, col, radius, brightness) of one disc per ~2500 pixels, anywhere, seams included."""
    rng = np.random.default_rng(seed)
    count = size * size // 2500
    return np.stack([rng.integers(0, size, count), rng.integers(0, size, count),
                     rng.integers(5, 16, count), rng.integers(140, 240, count)], axis=1)


def image_tiles(size: int, discs: np.ndarray, tile: int) -> Iterator[np.ndarray]:
    """The image, tile by tile in raster order (padded to full tiles, as TIFF stores them)."""
    bucket = {}
    for k, (r, c, rad, _) in enumerate(discs.tolist()):
        for tr in range((r - rad) // tile, (r + rad) // tile + 1):
            for tc in range((c - rad) // tile, (c + rad) // tile + 1):
                bucket.setdefault((tr, tc), []).append(k)
    yy, xx = np.mgrid[:tile, :tile]
    for tr in range((size + tile - 1) // tile):
        for tc in range((size + tile - 1) // tile):
            rng = np.random.default_rng(tr * 100003 + tc)
            block = rng.normal(40, 10, (tile, tile)).astype(np.float32)
            for k in bucket.get((tr, tc), []):
                r, c, rad, value = discs[k]
                r0, c0 = r - tr * tile, c - tc * tile
                lo_r, hi_r = max(r0 - rad, 0), min(r0 + rad + 1, tile)
                lo_c, hi_c = max(c0 - rad, 0), min(c0 + rad + 1, tile)
                if lo_r >= hi_r or lo_c >= hi_c:
                    continue
                dy, dx = yy[lo_r:hi_r, lo_c:hi_c] - r0, xx[lo_r:hi_r, lo_c:hi_c] - c0
                inside = dy * dy + dx * dx <= rad * rad
                block[lo_r:hi_r, lo_c:hi_c][inside] = value + rng.normal(0, 10, int(inside.sum()))
            block[size - tr * tile:] = 0  # outside the image (last tiles): padding
            block[:, size - tc * tile:] = 0
            yield np.clip(block, 0, 255).astype(np.uint8)


def make_image(path: Path, size: int) -> None:
    import tifffile

    discs = disc_centres(size)
    tifffile.imwrite(path, image_tiles(size, discs, TILE), shape=(size, size), dtype=np.uint8,
                     tile=(TILE, TILE), bigtiff=True, compression="zlib", photometric="minisblack")


# ------------------------------------------------------------------------------ measuring
class PeakMemory:
    """Peak memory of a process and all its children (scheduler, nannies, workers), sampled.

    Each process counts its proportional set size (PSS): pages shared between processes (the
    libraries every worker maps) are split between them rather than counted once per process.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def total(self) -> int:
        import psutil

        total = 0
        with contextlib.suppress(psutil.Error):
            for p in [self.process, *self.process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_full_info().pss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.total())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _child(queue: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        queue.put(("ok", fn(*args)))
    except BaseException as exc:  # reported to the parent, which raises it
        queue.put(("error", repr(exc)))


def in_own_process(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """Run ``fn(*args)`` in a fresh process; return its value and the peak memory of that process
    and everything it started (each job pays for its own cluster, none inherits another's)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, fn, args))
    process.start()
    with PeakMemory(process.pid) as memory:
        status, value = queue.get()
        process.join()
    if status != "ok":
        raise RuntimeError(f"{fn.__name__}{args}: {value}")
    return value, memory.peak


def tiled_job(image: Path, target: str, out: Path, workers: int) -> dict[str, Any]:
    """One segscope run on a cluster of ``workers`` local processes, reached by its address:
    the code path of a remote cluster. Times the job, not the cluster's start."""
    from distributed import LocalCluster

    from segscope.tiled import segment_tiled

    shutil.rmtree(out, ignore_errors=True)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=None) as cluster:
        start = time.perf_counter()
        result = segment_tiled(image, target, out, tile=TILE, overlap=OVERLAP,
                               scheduler=cluster.scheduler_address, progress=False)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "objects": result.objects,
            "class_pixels": result.details.get("class_pixels")}


def map_overlap_job(image: Path, out: Path, workers: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit=None) as cluster, Client(cluster.scheduler_address) as client:
        start = time.perf_counter()
        peer_map_overlap(image, out, client)
        return {"seconds": time.perf_counter() - start}


def in_memory_job(image: Path) -> dict[str, Any]:
    start = time.perf_counter()
    peer_otsu_in_memory(image)
    return {"seconds": time.perf_counter() - start}


# ------------------------------------------------------------------------------- the model
def train_model(image_path: Path, folder: Path) -> Path:
    """FCN (ResNet-18) trained one epoch on 24 crops of the image, with Otsu masks as labels."""
    import tifffile

    import segscope
    from segscope.io import write_label_png
    from segscope.train import TrainConfig, train

    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    with tifffile.TiffFile(image_path) as tif:
        store = tif.series[0].aszarr()
        import zarr

        array = zarr.open_array(store, mode="r")
        rng = np.random.default_rng(1)
        for k in range(24):
            r, c = rng.integers(0, array.shape[0] - 256, 2)
            crop = np.asarray(array[r:r + 256, c:c + 256])
            segscope.imwrite(folder / "images" / f"crop{k}.png", crop)
            write_label_png(folder / "labels" / f"crop{k}.png", segscope.segment(crop, "otsu").class_map())
    config = TrainConfig.from_dict({
        "model": {"name": "fcn"},
        "data": {"train_images": str(folder / "images"), "train_labels": str(folder / "labels"),
                 "num_classes": 2, "class_names": ["background", "nucleus"], "crop": 256},
        "optim": {"batch_size": 4, "lr": 1e-3}, "schedule": {"epochs": 1},
        "output": str(folder / "run"), "seed": 0})
    return train(config, progress=False).checkpoint


# --------------------------------------------------------------------------------- peers
def peer_otsu_in_memory(path: Path) -> int:
    import cv2
    import tifffile

    image = tifffile.imread(path)
    _, mask = cv2.threshold(image, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return int(mask.sum())


def _peer_block(block: np.ndarray) -> np.ndarray:
    import segscope

    return np.asarray(segscope.segment(block, "watershed_instances").labels, np.int32)


class _Sliceable:
    """A lazily read TIFF as dask.array.from_array wants it (pickles as its path)."""

    def __init__(self, path: Path) -> None:
        from segscope.io.large import LargeImage

        self.image = LargeImage(path)
        self.shape, self.dtype, self.ndim = self.image.shape, self.image.dtype, 2

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        return self.image.read(*key)


def peer_map_overlap(path: Path, out: Path, client: Any) -> None:
    """dask.array.map_overlap with the per-tile pipeline, labels written to Zarr; no stitching."""
    import dask.array as da

    image = da.from_array(_Sliceable(path), chunks=(TILE, TILE), asarray=True)
    labels = image.map_overlap(_peer_block, depth=OVERLAP, boundary="none", dtype=np.int32, trim=True)
    client.compute(labels.to_zarr(str(out), overwrite=True, compute=False)).result()


def cut_objects(path: Path, size: int, *, window: int = 4096) -> tuple[int, int]:
    """Discs across a seam (in the first window x window pixels) whose two sides got two labels.

    Read along the disc's centre row (vertical seams) or column (horizontal seams), one pixel on
    each side of the seam; a whole object has one label on both.
    """
    import zarr

    node = zarr.open(str(path), mode="r")
    labels = np.asarray((node["labels"] if isinstance(node, zarr.Group) else node)[:window, :window])
    crossing = cut = 0
    for r, c, radius, _ in disc_centres(size).tolist():
        if r >= window - 1 or c >= window - 1:
            continue
        for seam in range(TILE, window, TILE):
            for a, b in ((labels[r, seam - 1], labels[r, seam]) if abs(c - seam) < radius - 1 else (0, 0),
                         (labels[seam - 1, c], labels[seam, c]) if abs(r - seam) < radius - 1 else (0, 0)):
                if a and b:
                    crossing += 1
                    cut += int(a != b)
    return crossing, cut


def untiled_agreement(image: Path, size: int, rows: list[Any], model: Path | None) -> dict[Any, str]:
    """For images that fit in memory: does each tiled output equal the untiled result?"""
    import tifffile
    import zarr

    import segscope

    whole = tifffile.imread(image)
    answers: dict[Any, str] = {}
    for method, _impl, _, _, _, _, out in rows:
        if out is None:
            continue
        node = zarr.open(str(out), mode="r")
        tiled = np.asarray((node["labels"] if isinstance(node, zarr.Group) else node)[...])
        target = str(model) if method == "fcn" else method
        untiled = segscope.segment(whole, target)
        if untiled.kind == "semantic":
            # Seams would show as disagreement concentrated next to them.
            near = np.zeros(tiled.shape, bool)
            for seam in range(TILE, size, TILE):
                near[seam - 8:seam + 8] = near[:, seam - 8:seam + 8] = True
            differ = tiled != untiled.class_map()
            answers[out] = (f"{100 * np.mean(~differ):.3f}% of pixels (differ: "
                            f"{100 * differ[near].mean():.2f}% within 8 px of a seam, "
                            f"{100 * differ[~near].mean():.2f}% elsewhere)")
        else:
            labels = np.asarray(untiled.labels)
            # Map each tiled object to the untiled object it overlaps most; count what disagrees.
            pairs, counts = np.unique(np.stack([tiled.ravel(), labels.ravel()]), axis=1, return_counts=True)
            best: dict[int, tuple[int, int]] = {}
            for (a, b), n in zip(pairs.T.tolist(), counts.tolist(), strict=True):
                if n > best.get(a, (0, 0))[0]:
                    best[a] = (n, b)
            agree = sum(n for n, _ in best.values())
            objects = (len(np.unique(tiled)) - 1, len(np.unique(labels)) - 1)
            answers[out] = (f"{objects[0]} vs {objects[1]} objects, {tiled.size - agree} pixels "
                            f"({100 * (tiled.size - agree) / tiled.size:.4f}%) differ")
    return answers


def _busiest_corner(size: int, half: int) -> tuple[int, int]:
    """The tile corner (in the first 4096^2) with the most discs lying across its two seams."""
    discs = disc_centres(size)
    best, where = -1, (TILE, TILE)
    for row in range(TILE, min(size, 4096), TILE):
        for col in range(TILE, min(size, 4096), TILE):
            r, c, rad = discs[:, 0], discs[:, 1], discs[:, 2]
            across = ((np.abs(r - row) < rad) & (np.abs(c - col) < half)) | \
                     ((np.abs(c - col) < rad) & (np.abs(r - row) < half))
            if across.sum() > best:
                best, where = int(across.sum()), (row, col)
    return where


def border_picture(image: Path, ours: Path, peer: Path, path: Path, *, size: int, half: int = 128) -> None:
    """Objects around a tile corner: Dask map_overlap (cut at the seams) against segscope (whole)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import zarr

    import segscope
    from segscope.io.large import LargeImage

    row, col = _busiest_corner(size, half)
    window = (slice(row - half, row + half), slice(col - half, col + half))
    pixels = LargeImage(image).read(*window)
    panels = []
    for store in (peer, ours):
        node = zarr.open(str(store), mode="r")
        labels = np.asarray((node["labels"] if isinstance(node, zarr.Group) else node)[window])
        picture = segscope.overlay(pixels, labels.astype(np.int64), alpha=0.6)
        picture[half, ::4] = picture[::4, half] = (255, 40, 40)  # the seams, dotted
        panels.append(picture)
    figure, axes = plt.subplots(1, 2, figsize=(12, 6.3))
    titles = ("dask map_overlap + per-tile watershed: objects on seams cut in two",
              "segscope tiled watershed_instances: objects on seams whole")
    for axis, picture, title in zip(axes, panels, titles, strict=True):
        axis.imshow(picture, interpolation="nearest")
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    figure.suptitle(f"{2 * half} x {2 * half} pixels around the tile corner at ({row}, {col}); dotted red: "
                    f"tile seams (tile {TILE}, overlap {OVERLAP}); one colour per label", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ----------------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20000, help="image side in pixels (default 20000)")
    parser.add_argument("--out", default="bench_out/scale", help="work folder (image, outputs)")
    parser.add_argument("--methods", default="otsu,watershed_instances,fcn")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare")
    parser.add_argument("--deep-workers", default="1,2",
                        help="worker counts for the deep model (its 1-worker run is the longest)")
    parser.add_argument("--picture", help="write the seam picture here (e.g. docs/figures/tiled_seams.png)")
    args = parser.parse_args()

    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    image = work / f"synthetic_{args.size}.tif"
    megapixels = args.size * args.size / 1e6
    if not image.exists():
        start = time.perf_counter()
        make_image(image, args.size)
        print(f"made {image}: {args.size}x{args.size} ({megapixels:.0f} MP), "
              f"{image.stat().st_size / 1e6:.0f} MB on disk, {time.perf_counter() - start:.0f} s")
    methods = args.methods.split(",")
    model = None
    if "fcn" in methods:
        model, _ = in_own_process(train_model, image, Path(tempfile.mkdtemp(prefix="scale_model_")))
        print(f"trained fcn one epoch on 24 crops -> {model}")

    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        for method in methods:
            if method == "fcn" and str(workers) not in args.deep_workers.split(","):
                continue
            target = str(model) if method == "fcn" else method
            out = work / f"{method}_{workers}w.zarr"
            done, peak = in_own_process(tiled_job, image, target, out, workers)
            seconds = done["seconds"]
            if done["objects"] is not None:
                found = f"{done['objects']} objects"
            else:  # the first class is the background
                background = next(iter(done["class_pixels"].values()))
                found = f"{100 * (1 - background / args.size ** 2):.1f}% foreground"
            rows.append((method, "segscope", workers, seconds, peak, found, out))
            print(f"{method:22s} {workers} worker(s): {seconds:7.1f} s, "
                  f"{megapixels / seconds:6.2f} MP/s, peak {peak / GIB:.2f} GiB, {found}", flush=True)
        if "watershed_instances" in methods:
            out = work / f"peer_map_overlap_{workers}w.zarr"
            done, peak = in_own_process(map_overlap_job, image, out, workers)
            rows.append(("watershed_instances", "dask map_overlap (peer)", workers, done["seconds"], peak,
                         "", out))
            print(f"{'peer map_overlap':22s} {workers} worker(s): {done['seconds']:7.1f} s, "
                  f"{megapixels / done['seconds']:6.2f} MP/s, peak {peak / GIB:.2f} GiB", flush=True)
    if "otsu" in methods:
        done, peak = in_own_process(in_memory_job, image)
        rows.append(("otsu", "OpenCV, whole image in memory (peer)", 1, done["seconds"], peak, "", None))

    equal = untiled_agreement(image, args.size, rows, model) if args.size <= 8192 else {}
    print(f"\n## {args.size} x {args.size} ({megapixels:.0f} MP), tile {TILE}, overlap {OVERLAP}, "
          f"{os.cpu_count()} cores\n")
    print("| method | implementation | workers | s | MP/s | speed-up vs 1 worker | peak GiB (all processes) "
          "| seam discs cut in two (first 4096^2) | found | same as untiled |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    one = {(m, impl): s for m, impl, w, s, *_ in rows if w == 1}
    for method, impl, workers, seconds, peak, found, out in rows:
        speedup = one.get((method, impl), seconds) / seconds
        cut = ""
        if method == "watershed_instances" and out is not None:
            crossing, pieces = cut_objects(out, args.size)
            cut = f"{pieces} of {crossing}"
        print(f"| {method} | {impl} | {workers} | {seconds:.1f} | {megapixels / seconds:.2f} | "
              f"{speedup:.2f}x | {peak / GIB:.2f} | {cut} | {found} | {equal.get(out, '')} |")
    if args.picture and "watershed_instances" in methods:
        last = max(int(w) for w in args.workers.split(","))
        border_picture(image, work / f"watershed_instances_{last}w.zarr",
                       work / f"peer_map_overlap_{last}w.zarr", Path(args.picture), size=args.size)
        print(f"picture -> {args.picture}")
    under = all(row[4] < 2 * GIB for row in rows if row[1] == "segscope")
    print(f"\npeak memory of every segscope run under 2 GiB: {under}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
