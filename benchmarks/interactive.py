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

Objects (the first ``--limit`` of each set, in name order, that are large enough): the
held-out sources of the ``clicks`` zoo card (:mod:`segscope.zoo.objects`), which the click model
never trained on:

* CamVid val: connected components of the car and pedestrian classes, at least 400 pixels;
* DSB2018 nuclei (``dsb2018/train``, every fifth image): two objects of at least 200 pixels each;
* the VOC 2011 fixture's objects (``format_fixtures/labelme_voc2011``);
* Dubai aerial buildings of tile 1: connected components of the building colour, at least 400
  pixels, in 512x512 crops around them.

Beside segscope's prompted methods and click models (``segscope.prompt``), in the same run and with the same
clicks: OpenCV's GrabCut alone (its mask initialised to probable background, the clicks' discs
sure object or sure background) and scikit-image's random walker alone (the clicks' discs and
the image's frame as seeds), as a user of those libraries would drive them. ``--speed`` times one
click on a 1-megapixel image (a 1000x1000 Dubai crop).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segscope.infer.clicks import click_discs
from segscope.metrics.clicks import MAX_CLICKS, Click, Run, noc, simulate

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RADIUS = 3
Item = tuple[str, np.ndarray, np.ndarray, np.ndarray]
"""An object: its name, the image, its mask, and the pixels left unlabelled (not scored)."""


def held_out_sources() -> dict[str, dict[str, object]]:
    """The object sets, by name: the ``clicks`` zoo card's held-out sources (its split), so the
    card's figures and this benchmark's are measured on the same objects."""
    from segscope.zoo import zoo_card

    return {spec["name"]: spec for spec in zoo_card("clicks").training["split"]["held_out"]}


def objects(name: str, limit: int) -> Iterator[Item]:
    from segscope.zoo.objects import objects_from

    for item in objects_from(held_out_sources()[name], DATA, limit=limit):
        yield item.name, item.image, item.mask, item.ignore


# -------------------------------------------------------------------------------- methods
def ours(method: str, *, refine: bool = True, **options: object) -> Run:
    """segscope.prompt with every click so far and, with ``refine``, the previous mask (the
    iterative correction interactive tools do); the ``clicks`` card is scored the same way."""
    from segscope.zoo.build import prompt_session

    run: Run = prompt_session(method, refine=refine, click_radius=RADIUS, **options)
    return run


def grabcut_alone(image: np.ndarray, clicks: list[Click], previous: np.ndarray) -> np.ndarray:
    """OpenCV's GrabCut on the whole image, its mask probable background but for the clicks."""
    import cv2

    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    rgb = np.ascontiguousarray(rgb[..., :3]).astype(np.uint8)
    positive, negative = click_discs(rgb.shape[:2], clicks, RADIUS)
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
    positive, negative = click_discs(image.shape[:2], clicks, RADIUS)
    markers = np.zeros(image.shape[:2], np.int32)
    markers[[0, -1], :] = 1
    markers[:, [0, -1]] = 1
    markers[negative] = 1
    markers[positive] = 2
    labels = random_walker(
        data, markers, beta=130, mode="cg_j", tol=1e-3, channel_axis=-1 if data.ndim == 3 else None
    )
    return labels == 2


def _score(label: str, refine: bool, items: list[Item]) -> dict[str, list[float]]:
    """One method's clicks on every object: NoC@85, NoC@90 (also by set) and seconds per click."""
    run = PEERS[label] if label in PEERS else ours(label.removeprefix("segscope "), refine=refine)
    rows: dict[str, list[float]] = {"noc85": [], "noc90": [], "seconds": []}
    for name, image, truth, ignore in items:
        ious, seconds = simulate(run, image, truth, ignore)
        rows["noc85"].append(noc(ious, 0.85))
        rows["noc90"].append(noc(ious, 0.90))
        rows["seconds"].extend(seconds)
        rows.setdefault(f"noc90_{name.split('/')[0]}", []).append(noc(ious, 0.90))
    sets = ", ".join(f"{k[6:]} {np.mean(v):.2f}" for k, v in rows.items() if k.startswith("noc90_"))
    print(f"{label}: NoC@85 {np.mean(rows['noc85']):.2f}, NoC@90 {np.mean(rows['noc90']):.2f}, "
          f"{np.mean(rows['seconds']):.3f} s per click; NoC@90 by set {sets}", flush=True)
    return rows


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


PEERS: dict[str, Run] = {
    "OpenCV GrabCut alone": grabcut_alone,
    "scikit-image random walker alone": random_walker_alone,
}


def main() -> None:
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=15, help="objects per set")
    parser.add_argument("--sets", default=",".join(held_out_sources()))
    parser.add_argument("--methods", default="clicks,geodesic,grabcut,random_walker,watershed,region_growing",
                        help="prompted methods or click models (zoo names, checkpoints)")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give segscope's methods the previous mask with the clicks (default)",
    )
    parser.add_argument("--speed", action="store_true", help="also time one click on a 1-megapixel image")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--jobs", type=int, default=1,
                        help="methods scored at once, one process each (seconds per click then shared)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="The probability range is outside")
    runs: dict[str, Run] = {
        f"segscope {m}": ours(m, refine=args.refine) for m in args.methods.split(",") if m
    }
    if args.peers:
        runs.update(PEERS)
    items = [o for name in args.sets.split(",") for o in objects(name, args.limit)]
    print(
        f"{len(items)} objects: "
        + ", ".join(f"{s} {sum(o[0].startswith(s) for o in items)}" for s in args.sets.split(",")),
        flush=True,
    )
    table: dict[str, dict[str, list[float]]] = {}
    if args.jobs > 1:  # one method per process; each process's seconds are then shared-CPU figures
        from concurrent.futures import ProcessPoolExecutor

        labels = sorted(runs, key=lambda label: label not in PEERS)  # the slow whole-image peers first
        with ProcessPoolExecutor(args.jobs, initializer=_one_thread) as pool:
            done = pool.map(_score, labels, [args.refine] * len(labels), [items] * len(labels))
            found = dict(zip(labels, done, strict=True))
        table = {label: found[label] for label in runs}
    else:
        table = {label: _score(label, args.refine, items) for label in runs}
    sets = sorted({n.split("/")[0] for n, *_ in items})
    peer_best = min((np.mean(table[p]["noc90"]) for p in PEERS if p in table), default=None)
    print(f"\n{len(items)} objects, at most {MAX_CLICKS} clicks (Xu et al.'s protocol)\n")
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
