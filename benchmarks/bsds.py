"""Hierarchies and learned edges on BSDS500, scored by the BSDS protocol (``segscope.metrics``).

    python benchmarks/bsds.py [--split val] [--limit N] [--jobs 2] [--model edges] [--picture]

Side by side on the same images (val by default; train to choose the levels):

* ``ucm (sobel)``: the hierarchy of a Sobel gradient (the classical baseline), swept;
* ``ucm (learned)``: the hierarchy of the learned edge map (``--model``, the zoo's ``edges``), swept;
* ``ucm (OPERATOR; option=value; ...)``: any other setting of ``image_hierarchy`` (``oriented``,
  ``min_size``), to compare or tune them;
* ``edges (learned)``: the learned edge map thinned to its crests, thresholded (boundaries only);
* ``felzenszwalb`` and ``mean_shift`` at their defaults (tuned on train by ``bsds_tuning.py``),
  one segmentation each, so ODS and OIS coincide.

Reported, as the official benchmark reduces them: boundary ODS, OIS and AP; region covering, PRI
and VOI at the dataset's best level (ODS) and each image's best (OIS); the level each reaches its
ODS covering at (what the ``ucm`` defaults are chosen from, on train, with ``--regions-only``);
seconds per image, measured in a separate pass of ``--speed`` images run one at a time (the
scoring pass runs ``--jobs`` processes). gPb-owt-ucm's published BSDS500 test figures are
printed for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

GPB_OWT_UCM = {"boundary ODS": 0.726, "boundary OIS": 0.760, "boundary AP": 0.727, "covering ODS": 0.588,
               "covering OIS": 0.647, "PRI ODS": 0.827, "VOI ODS": 1.690}


def _sweeps(method: str, image: np.ndarray, model: str, thresholds: int) -> list[Any]:
    """One image's sweep steps for ``method``."""
    import segscope
    from segscope.classical import edges, image_hierarchy
    from segscope.metrics import sweep_segmentations, sweep_soft_boundaries

    if method.startswith("ucm ("):  # "ucm (OPERATOR; option=value; ...)": image_hierarchy's options
        from segscope.textvalues import convert_all

        operator, *settings = (part.strip() for part in method[len("ucm ("):].rstrip(")").split(";"))
        options = convert_all(dict(item.split("=", 1) for item in settings), image_hierarchy, what=method)
        hierarchy = image_hierarchy(image, operator=operator, model=model, **options)
        return list(hierarchy.sweep(thresholds))
    if method == "edges (learned)":
        return sweep_soft_boundaries(edges(image, operator="learned", model=model), thresholds)
    return sweep_segmentations([segscope.segment(image, method).labels])


def _split_methods(text: str) -> list[str]:
    """``--methods`` split at the commas outside parentheses, so an option's value may hold
    commas: ``"ucm (learned; scales=0.5,1),felzenszwalb"`` is two methods.

    >>> _split_methods("ucm (learned; scales=0.5,1),felzenszwalb")
    ['ucm (learned; scales=0.5,1)', 'felzenszwalb']
    """
    methods, depth, start = [], 0, 0
    for k, char in enumerate(text + ","):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            methods.append(text[start:k].strip())
            start = k + 1
    return [m for m in methods if m]


METHODS = ("ucm (sobel)", "ucm (learned)", "edges (learned)", "felzenszwalb", "mean_shift")
BOUNDARIES_ONLY = {"edges (learned)"}


def _count(job: tuple[str, str, Any, str, int, bool]) -> tuple[str, Any]:
    method, image_path, truth, model, thresholds, boundaries = job
    import torch

    torch.set_num_threads(1)
    import segscope
    from segscope.metrics import bsds_image

    steps = _sweeps(method, segscope.imread(image_path), model, thresholds)
    return method, bsds_image(steps, truth, boundaries=boundaries, regions=method not in BOUNDARIES_ONLY)


def _seconds(method: str, paths: list[str], model: str) -> float:
    """Seconds per image to make the method's result (the swept hierarchy, or the map)."""
    import segscope

    images = [segscope.imread(p) for p in paths]
    _sweeps(method, images[0], model, 1)  # warm-up: loads the network, compiles kernels
    start = time.perf_counter()
    for image in images:
        _sweeps(method, image, model, 1)
    return (time.perf_counter() - start) / len(images)


def _row(summary: Any) -> dict[str, float]:
    row = {}
    if summary.boundary:
        row = {"boundary ODS": summary.boundary["ods_f"], "boundary OIS": summary.boundary["ois_f"],
               "boundary AP": summary.boundary["ap"]}
    if summary.covering:
        row.update({"covering ODS": summary.covering["ods"], "covering OIS": summary.covering["ois"],
                    "PRI ODS": summary.rand_voi["pri_ods"], "VOI ODS": summary.rand_voi["voi_ods"],
                    "covering level": summary.covering["ods_threshold"]})
    return row


def picture(data: Path, stem: str, model: str, levels: list[float], path: Path) -> None:
    """One val image's learned hierarchy cut at ``levels``, beside its annotators' boundaries."""
    import segscope
    from segscope.classical import image_hierarchy
    from segscope.io import read_bsds_groundtruth

    image = segscope.imread(data / "bsds500" / "images" / "val" / f"{stem}.jpg")
    truth = read_bsds_groundtruth(data / "bsds500" / "groundTruth" / "val" / f"{stem}.mat")
    agreement = np.mean([b.astype(float) for b in truth.boundaries], axis=0)
    hierarchy = image_hierarchy(image, operator="learned", model=model)
    tiles = [segscope.viz.to_display(image),
             (255 * (1 - np.clip(agreement * 2, 0, 1))).astype(np.uint8)]
    titles = [stem, f"{len(truth.boundaries)} annotators' boundaries"]
    for level in levels:
        labels = hierarchy.cut(level=level)
        tiles.append(segscope.viz.boundaries(image, labels, color=(255, 40, 40)))
        titles.append(f"level {level:g}: {labels.max()} regions")
    segscope.panel(tiles, titles=titles, columns=len(tiles), path=path)
    print(f"picture: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--limit", type=int, help="the first N images only (a quick check)")
    parser.add_argument("--every", type=int, default=1, help="every N-th image (train subsets for tuning)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--thresholds", type=int, default=99)
    parser.add_argument("--model", default="edges",
                        help="the learned edge network: a zoo name or a checkpoint")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--regions-only", action="store_true",
                        help="skip the boundary matching (choosing the levels on train needs only regions)")
    parser.add_argument("--speed", type=int, default=5, help="images timed one at a time per method")
    parser.add_argument("--picture", default="", help="a val image id: draw its hierarchy at three levels")
    parser.add_argument("--levels", default="0.3,0.5,0.69", help="the picture's three cut levels")
    parser.add_argument("--out", type=Path, default=Path("bench_out/bsds"))
    args = parser.parse_args()
    images = sorted((args.data / "bsds500" / "images" / args.split).glob("*.jpg"))
    images = images[:: args.every][: args.limit]
    if not images:
        raise SystemExit(f"no BSDS500 {args.split} images under {args.data}")
    truth = args.data / "bsds500" / "groundTruth" / args.split
    methods = [m for m in _split_methods(args.methods) if not (args.regions_only and m in BOUNDARIES_ONLY)]
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"BSDS500 {args.split}: {len(images)} images, {args.thresholds} thresholds, model {args.model}")

    from segscope.io import read_bsds_groundtruth

    # Read here, once: the reader's helper process is not started from inside the workers.
    truths = {p.stem: read_bsds_groundtruth(truth / f"{p.stem}.mat") for p in images}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    jobs = [(m, str(p), truths[p.stem], args.model, args.thresholds, not args.regions_only)
            for m in methods for p in images]
    counts: dict[str, list[Any]] = {m: [] for m in methods}
    with ProcessPoolExecutor(args.jobs) as pool:
        for method, found in pool.map(_count, jobs, chunksize=2):
            counts[method].append(found)

    from segscope.metrics import bsds_summary

    rows = {m: _row(bsds_summary(counts[m])) for m in methods}
    for m in methods if args.speed > 0 else []:
        rows[m]["s/img"] = _seconds(m, [str(p) for p in images[: args.speed]], args.model)
    columns = ["boundary ODS", "boundary OIS", "boundary AP", "covering ODS", "covering OIS", "PRI ODS",
               "VOI ODS", "covering level", "s/img"]
    print(f"\n{'method':26s}" + "".join(f"{c:>15s}" for c in columns))
    for name, row in [*rows.items(), ("gPb-owt-ucm (published, test)", GPB_OWT_UCM)]:
        print(f"{name:26s}" + "".join(f"{row[c]:15.3f}" if c in row else f"{'-':>15s}" for c in columns))
    (args.out / f"bsds_{args.split}.json").write_text(json.dumps(rows, indent=2))
    if args.picture:
        levels = [float(v) for v in args.levels.split(",")]
        picture(args.data, args.picture, args.model, levels, args.out / f"hierarchy_{args.picture}.png")


if __name__ == "__main__":
    main()
