"""Segmentation by clicking: the number of clicks each method needs, with simulated users.

    python benchmarks/interactive.py [--limit 15] [--methods geodesic,grabcut,...] [--speed]

The protocol of Xu et al. (2016), as interactive segmentation papers use it: the first click goes
at the object's interior point farthest from its boundary; each next click at the point farthest
from the boundary of the largest error region, positive where the object was missed, negative
where the result leaked; at most 20 clicks. NoC@85 and NoC@90 are the mean number of clicks to
reach IoU 0.85 and 0.90 (20 when never reached). Pixels a dataset leaves unlabelled (CamVid's
"unlabelled", VOC's void band along object outlines, Dubai's "unlabeled") count neither in the IoU
nor as errors to click on, as the evaluations of Xu et al. and of RITM (Sofiiuk et al. 2022) treat
the GrabCut set's unknown band.

Objects (the first ``--limit`` of each set, in name order, that are large enough):

* CamVid val: connected components of the car and pedestrian classes, at least 400 pixels;
* DSB2018 nuclei (``dsb2018/train``, every fifth image): objects of at least 200 pixels;
* the VOC 2011 fixture's objects (``format_fixtures/labelme_voc2011``);
* Dubai aerial buildings: connected components of the building colour, at least 400 pixels,
  in 512x512 crops around them.

Beside segscope's prompted methods (``segscope.prompt``), in the same run and with the same
clicks: OpenCV's GrabCut alone (its mask initialised to probable background, the clicks' discs
sure object or sure background) and scikit-image's random walker alone (the clicks' discs and
the image's frame as seeds), as a user of those libraries would drive them. ``--speed`` times one
click on a 1-megapixel image (a 1000x1000 Dubai crop).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_CLICKS = 20
RADIUS = 3
Click = tuple[int, int, bool]
Run = Callable[[np.ndarray, list[Click], np.ndarray], np.ndarray]
Item = tuple[str, np.ndarray, np.ndarray, np.ndarray]
"""An object: its name, the image, its mask, and the pixels left unlabelled (not scored)."""
"""``run(image, clicks, previous) -> mask``: the clicks so far, and the mask the last click gave."""


# ------------------------------------------------------------------------------------ objects
def _components(mask: np.ndarray, minimum: int) -> list[np.ndarray]:
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())
    return [labels == k for k in range(1, count + 1) if sizes[k] >= minimum]


def camvid(limit: int) -> Iterator[Item]:
    import segscope
    from segscope.io import read_label_png

    found = 0
    for path in sorted((DATA / "camvid" / "valannot").glob("*.png")):
        label = read_label_png(path)
        image = segscope.imread(DATA / "camvid" / "val" / path.name)
        for cls in (8, 9):  # car, pedestrian
            for k, mask in enumerate(_components(label == cls, 400)):
                yield f"camvid/{path.stem}/{cls}/{k}", image, mask, label == 11  # unlabelled
                found += 1
                if found >= limit:
                    return


def nuclei(limit: int) -> Iterator[Item]:
    import segscope
    from segscope.io import read_label_png

    found = 0
    paths = sorted((DATA / "dsb2018" / "train" / "labels").glob("*.png"))[4::5]
    for path in paths:
        label = read_label_png(path)
        image = segscope.imread(DATA / "dsb2018" / "train" / "images" / path.name)
        ids, sizes = np.unique(label[label > 0], return_counts=True)
        for obj in ids[sizes >= 200][:2]:  # two per image, so the set spans many images
            yield f"dsb2018/{path.stem}/{obj}", image, label == obj, np.zeros(label.shape, bool)
            found += 1
            if found >= limit:
                return


def voc(limit: int) -> Iterator[Item]:
    import segscope
    from segscope.io.labels import read_palette_png

    root = DATA / "format_fixtures" / "labelme_voc2011" / "voc_instances"
    found = 0
    for path in sorted((root / "SegmentationObject").glob("*.png")):
        objects, _ = read_palette_png(path)
        image = segscope.imread(root / "JPEGImages" / f"{path.stem}.jpg")
        for obj in [v for v in np.unique(objects) if 0 < v < 255]:
            mask = objects == obj
            if mask.sum() >= 400:
                yield f"voc/{path.stem}/{obj}", image, mask, objects == 255  # void
                found += 1
                if found >= limit:
                    return


def dubai(limit: int) -> Iterator[Item]:
    import segscope

    found = 0
    for tile in sorted((DATA / "dubai_aerial").glob("tile_*")):
        for mask_path in sorted((tile / "masks").glob("*.png")):
            rgb = segscope.imread(mask_path)[..., :3].astype(np.int64)
            building = (rgb[..., 0] == 0x3C) & (rgb[..., 1] == 0x10) & (rgb[..., 2] == 0x98)
            unlabelled = (rgb[..., 0] == 0x9B) & (rgb[..., 1] == 0x9B) & (rgb[..., 2] == 0x9B)
            image = segscope.imread(next((tile / "images").glob(f"{mask_path.stem}.*")))
            for k, mask in enumerate(_components(building, 400)[:3]):
                rows, cols = np.nonzero(mask)
                r0 = max(0, min(int(rows.mean()) - 256, mask.shape[0] - 512))
                c0 = max(0, min(int(cols.mean()) - 256, mask.shape[1] - 512))
                window = (slice(r0, r0 + 512), slice(c0, c0 + 512))
                yield (
                    f"dubai/{tile.name}/{mask_path.stem}/{k}",
                    image[window],
                    mask[window],
                    unlabelled[window],
                )
                found += 1
                if found >= limit:
                    return


SETS = {"camvid": camvid, "dsb2018": nuclei, "voc": voc, "dubai": dubai}


# ------------------------------------------------------------------------------ the user
def next_click(prediction: np.ndarray, truth: np.ndarray, ignore: np.ndarray) -> Click:
    """At the point farthest from the boundary of the largest error region: positive for a miss.
    Unlabelled pixels are no error."""
    from scipy import ndimage

    best: tuple[int, Click] | None = None
    for positive, error in ((True, truth & ~prediction & ~ignore), (False, prediction & ~truth & ~ignore)):
        labels, count = ndimage.label(error)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        largest = int(np.argmax(sizes))
        if best is None or sizes[largest] > best[0]:
            region = np.pad(labels == largest, 1)
            depth = ndimage.distance_transform_edt(region)[1:-1, 1:-1]
            row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
            best = (int(sizes[largest]), (int(row), int(col), positive))
    if best is None:
        raise ValueError("no error left")
    return best[1]


def iou(a: np.ndarray, b: np.ndarray, ignore: np.ndarray) -> float:
    """IoU of the labelled pixels."""
    union = ((a | b) & ~ignore).sum()
    return float((a & b & ~ignore).sum() / union) if union else 1.0


def simulate(
    run: Run, image: np.ndarray, truth: np.ndarray, ignore: np.ndarray
) -> tuple[list[float], list[float]]:
    """IoU after each click, and seconds per click."""
    prediction = np.zeros_like(truth)
    clicks: list[Click] = []
    ious, seconds = [], []
    for _ in range(MAX_CLICKS):
        clicks.append(next_click(prediction, truth, ignore))
        start = time.perf_counter()
        prediction = run(image, clicks, prediction)
        seconds.append(time.perf_counter() - start)
        ious.append(iou(prediction, truth, ignore))
        if ious[-1] >= 0.90:
            break
    return ious, seconds


def noc(ious: list[float], target: float) -> int:
    return next((k + 1 for k, v in enumerate(ious) if v >= target), MAX_CLICKS)


# -------------------------------------------------------------------------------- methods
def ours(method: str, *, refine: bool = True, **options: object) -> Run:
    """segscope.prompt with every click so far and, with ``refine``, the previous mask (the
    iterative correction interactive tools do)."""
    import segscope

    def run(image: np.ndarray, clicks: list[Click], previous: np.ndarray) -> np.ndarray:
        points = [(r, c, 1 if positive else 0) for r, c, positive in clicks]
        mask = previous.astype(np.int32) if refine and previous.any() else None
        seg = segscope.prompt(image, points=points, mask=mask, method=method, click_radius=RADIUS, **options)
        return seg.labels == 1

    return run


def _discs(shape: tuple[int, ...], clicks: list[Click]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    positive, negative = np.zeros(shape[:2], bool), np.zeros(shape[:2], bool)
    for r, c, is_positive in clicks:
        disc = (yy - r) ** 2 + (xx - c) ** 2 <= RADIUS**2
        (positive if is_positive else negative)[disc] = True
    return positive, negative


def grabcut_alone(image: np.ndarray, clicks: list[Click], previous: np.ndarray) -> np.ndarray:
    """OpenCV's GrabCut on the whole image, its mask probable background but for the clicks."""
    import cv2

    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    rgb = np.ascontiguousarray(rgb[..., :3]).astype(np.uint8)
    positive, negative = _discs(rgb.shape, clicks)
    mask = np.full(rgb.shape[:2], cv2.GC_PR_BGD, np.uint8)
    mask[negative] = cv2.GC_BGD
    mask[positive] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(rgb, mask, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def random_walker_alone(image: np.ndarray, clicks: list[Click], previous: np.ndarray) -> np.ndarray:
    """scikit-image's random walker on the whole image: the clicks' discs, and the frame as
    background."""
    from skimage.segmentation import random_walker

    data = image.astype(np.float64)
    positive, negative = _discs(image.shape, clicks)
    markers = np.zeros(image.shape[:2], np.int32)
    markers[[0, -1], :] = 1
    markers[:, [0, -1]] = 1
    markers[negative] = 1
    markers[positive] = 2
    labels = random_walker(
        data, markers, beta=130, mode="cg_j", tol=1e-3, channel_axis=-1 if data.ndim == 3 else None
    )
    return labels == 2


PEERS: dict[str, Run] = {
    "OpenCV GrabCut alone": grabcut_alone,
    "scikit-image random walker alone": random_walker_alone,
}


def main() -> None:
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=15, help="objects per set")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--methods", default="geodesic,grabcut,random_walker,watershed,region_growing")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give segscope's methods the previous mask with the clicks (default)",
    )
    parser.add_argument("--speed", action="store_true", help="also time one click on a 1-megapixel image")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="The probability range is outside")
    runs: dict[str, Run] = {
        f"segscope {m}": ours(m, refine=args.refine) for m in args.methods.split(",") if m
    }
    if args.peers:
        runs.update(PEERS)
    objects = [o for name in args.sets.split(",") for o in SETS[name](args.limit)]
    print(
        f"{len(objects)} objects: "
        + ", ".join(f"{s} {sum(o[0].startswith(s) for o in objects)}" for s in args.sets.split(",")),
        flush=True,
    )
    table: dict[str, dict[str, list[float]]] = {}
    for label, run in runs.items():
        rows: dict[str, list[float]] = {"noc85": [], "noc90": [], "seconds": []}
        by_set: dict[str, list[int]] = {}
        for name, image, truth, ignore in objects:
            ious, seconds = simulate(run, image, truth, ignore)
            rows["noc85"].append(noc(ious, 0.85))
            rows["noc90"].append(noc(ious, 0.90))
            rows["seconds"].extend(seconds)
            by_set.setdefault(name.split("/")[0], []).append(noc(ious, 0.90))
        table[label] = {**rows, **{f"noc90_{k}": v for k, v in by_set.items()}}  # type: ignore[dict-item]
        print(
            f"{label}: NoC@85 {np.mean(rows['noc85']):.2f}, NoC@90 {np.mean(rows['noc90']):.2f}, "
            f"{np.mean(rows['seconds']):.3f} s per click; NoC@90 by set "
            + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in by_set.items()),
            flush=True,
        )
    sets = sorted({n.split("/")[0] for n, *_ in objects})
    peer_best = min((np.mean(table[p]["noc90"]) for p in PEERS if p in table), default=None)
    print(f"\n{len(objects)} objects, at most {MAX_CLICKS} clicks (Xu et al.'s protocol)\n")
    print(
        "| method | NoC@85 | NoC@90 | "
        + " | ".join(f"NoC@90 {s}" for s in sets)
        + " | s/click |"
        + (" NoC@90 / best peer |" if peer_best else "")
    )
    print("| --- " * (4 + len(sets) + (1 if peer_best else 0)) + "|")
    for label, rows in table.items():
        ratio = f" {np.mean(rows['noc90']) / peer_best:.2f} |" if peer_best else ""
        print(
            f"| {label} | {np.mean(rows['noc85']):.2f} | {np.mean(rows['noc90']):.2f} | "
            + " | ".join(f"{np.mean(rows.get(f'noc90_{s}', [np.nan])):.2f}" for s in sets)
            + f" | {np.mean(rows['seconds']):.3f} |{ratio}"
        )
    if args.speed:
        import segscope

        image = segscope.imread(sorted((DATA / "dubai_aerial" / "tile_7" / "images").glob("*"))[0])[
            :1000, :1000
        ]
        clicks = [(500, 500, True), (520, 540, True), (430, 470, False)]
        print("\nseconds per click on a 1000x1000 image (three clicks given):")
        empty = np.zeros(image.shape[:2], bool)
        for label, run in runs.items():
            run(image, clicks, empty)
            start = time.perf_counter()
            run(image, clicks, empty)
            print(f"  {label}: {time.perf_counter() - start:.3f}")
    if args.json:
        args.json.write_text(
            json.dumps({k: {m: float(np.mean(v)) for m, v in r.items()} for k, r in table.items()}, indent=2)
        )


if __name__ == "__main__":
    main()
