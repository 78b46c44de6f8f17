"""Choose the region methods' defaults on BSDS500 train; report them on BSDS500 val.

    python benchmarks/bsds_tuning.py [--data ../shared/data] [--train-images 50] [--jobs 2]

Each method runs over a small grid of its scale parameters on a subset of the train images
(every k-th image, so the subset spans the whole split). The setting with the best mean
segmentation covering on train becomes the default. Covering is the primary BSDS region measure:
PRI rewards over-segmentation and VOI under-segmentation. The chosen settings are then scored
once on all val images, which play no part in the choice. Scores use the BSDS definitions
(``segscope.metrics``): PRI and VOI are averaged over the image's annotators, and covering pools
them. Peer figures, from Arbelaez et al. 2011 (on BSDS500 test, at the dataset-best scale):
Felzenszwalb-Huttenlocher covering 0.52, PRI 0.80, VOI 2.21; mean shift 0.54 / 0.79 / 1.85.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

GRIDS: dict[str, dict[str, list[Any]]] = {
    "felzenszwalb": {"scale": [100, 200, 300, 500, 800, 1200], "min_size": [50, 200]},
    "slic": {"n_segments": [4, 8, 16, 32, 64, 128, 400], "compactness": [10.0, 30.0]},
    "watershed": {"h": [0.05, 0.1, 0.15, 0.25, 0.4, 0.6]},
    # kmeans stays a semantic result (k colour classes) by default: only k is tuned.
    "kmeans": {"k": [2, 3, 4, 5, 6, 8]},
    "region_merging": {"threshold": [15.0, 30.0, 45.0, 70.0]},
    "mean_shift": {"color_radius": [12.0, 20.0, 30.0], "min_size": [100, 300, 1000]},
}
# The slow methods are tuned on fewer images.
SLOW = {"region_merging": 2, "mean_shift": 2}


def _score(job: tuple[str, dict[str, Any], str, str]) -> tuple[str, str, str, dict[str, float]]:
    method, params, image_path, truth_path = job
    import segscope
    from segscope.io import read_bsds_groundtruth
    from segscope.metrics import covering, probabilistic_rand_index, variation_of_information

    image = segscope.imread(image_path)
    truth = [s.labels for s in read_bsds_groundtruth(truth_path).segmentations]
    start = time.perf_counter()
    seg = segscope.segment(image, method, **params)
    seconds = time.perf_counter() - start
    labels = seg.labels
    scores = {
        "pri": probabilistic_rand_index(labels, truth),
        "voi": float(np.mean([variation_of_information(labels, t) for t in truth])),
        "covering": covering(labels, truth),
        "regions": float(len(seg.ids)),
        "seconds": seconds,
    }
    return method, json.dumps(params, sort_keys=True), Path(image_path).stem, scores


def _pairs(data: Path, split: str) -> list[tuple[str, str]]:
    images = sorted((data / "bsds500" / "images" / split).glob("*.jpg"))
    return [(str(p), str(data / "bsds500" / "groundTruth" / split / f"{p.stem}.mat")) for p in images]


def _run(jobs: list, workers: int) -> dict[tuple[str, str], list[dict[str, float]]]:
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    # Not multiprocessing.Pool: its daemonic workers cannot start the helper process that reads
    # BSDS .mat files (segscope.io.bsds).
    with ProcessPoolExecutor(workers) as pool:
        for method, params, _, scores in pool.map(_score, jobs, chunksize=4):
            results.setdefault((method, params), []).append(scores)
    return results


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--train-images", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--methods", default=",".join(GRIDS))
    parser.add_argument("--json", type=Path, help="write every score here")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    train = _pairs(args.data, "train")
    val = _pairs(args.data, "val")
    if not train or not val:
        raise SystemExit(f"BSDS500 not found under {args.data}")

    jobs = []
    for method in methods:
        count = args.train_images // SLOW.get(method, 1)
        subset = train[:: max(1, len(train) // count)][:count]
        grid = GRIDS[method]
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values, strict=True))
            jobs.extend((method, params, img, gt) for img, gt in subset)
    print(f"tuning: {len(jobs)} runs on BSDS500 train", flush=True)
    tuned = _run(jobs, args.jobs)

    best: dict[str, dict[str, Any]] = {}
    header = f"{'PRI':>6s} {'VOI':>6s} {'cover':>6s} {'regions':>8s} {'s/img':>6s}"
    print(f"\n{'method':15s} {'parameters':45s} {header}")
    for method in methods:
        rows = sorted(
            ((json.loads(p), _mean(r)) for (m, p), r in tuned.items() if m == method),
            key=lambda item: -item[1]["covering"],
        )
        for params, s in rows:
            print(
                f"{method:15s} {json.dumps(params):45s} {s['pri']:6.3f} {s['voi']:6.3f} "
                f"{s['covering']:6.3f} {s['regions']:8.1f} {s['seconds']:6.2f}"
            )
        best[method] = rows[0][0]

    jobs = [(m, best[m], img, gt) for m in methods for img, gt in val]
    print(f"\nvalidation: {len(jobs)} runs on BSDS500 val ({len(val)} images), chosen settings", flush=True)
    checked = _run(jobs, args.jobs)
    print(f"\n{'method':15s} {'chosen on train':45s} {header}")
    report = {}
    for method in methods:
        s = _mean(checked[(method, json.dumps(best[method], sort_keys=True))])
        report[method] = {"parameters": best[method], "val": s}
        print(
            f"{method:15s} {json.dumps(best[method]):45s} {s['pri']:6.3f} {s['voi']:6.3f} "
            f"{s['covering']:6.3f} {s['regions']:8.1f} {s['seconds']:6.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
