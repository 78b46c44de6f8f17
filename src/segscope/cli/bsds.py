"""``segscope evaluate`` with the BSDS500 protocol: sweeps of boundaries and regions against the
annotators of BSDS ground-truth .mat files, reduced to ODS, OIS and AP as the official benchmark.

What a prediction folder holds decides the sweep (or ``--sweep`` names it):

* ``ucm2``: a .mat file per image with an ultrametric contour map at doubled resolution, cut at
  ``--thresholds`` levels (boundaries and regions);
* ``segs``: a .mat file per image with a ``segs`` cell, one segmentation per scale (both);
* ``scales``: one sub-folder per scale, each with a label PNG per image (both);
* ``boundaries``: a soft boundary PNG per image, thresholded (boundaries only).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
from .common import error

__all__ = ["SWEEPS", "detect_sweep", "run_bsds"]


def _ucm2(pred: Path, stem: str, thresholds: int) -> list[Any]:
    from segscope.io import read_ucm2
    from segscope.metrics import sweep_ucm

    return sweep_ucm(read_ucm2(pred / f"{stem}.mat"), thresholds)


def _segs(pred: Path, stem: str, thresholds: int) -> list[Any]:
    from segscope.io.bsds import read_bsds_segs
    from segscope.metrics import sweep_segmentations

    return sweep_segmentations(read_bsds_segs(pred / f"{stem}.mat"))


def _scales(pred: Path, stem: str, thresholds: int) -> list[Any]:
    from segscope.io import read_label_png
    from segscope.metrics import sweep_segmentations

    folders = sorted(p for p in pred.iterdir() if p.is_dir())
    return sweep_segmentations([read_label_png(folder / f"{stem}.png") for folder in folders])


def _boundaries(pred: Path, stem: str, thresholds: int) -> list[Any]:
    from segscope.io import read_boundary_png
    from segscope.metrics import sweep_soft_boundaries

    return sweep_soft_boundaries(read_boundary_png(pred / f"{stem}.png"), thresholds)


SWEEPS: dict[str, tuple[Callable[[Path, str, int], list[Any]], bool]] = {
    "ucm2": (_ucm2, True), "segs": (_segs, True), "scales": (_scales, True),
    "boundaries": (_boundaries, False)}
"""Each sweep: how one image's steps are read, and whether regions are scored too."""


def detect_sweep(pred: Path) -> str | None:
    """The sweep a prediction folder holds (see the module), or None (not a sweep: plain results)."""
    if not pred.is_dir():
        return None
    if any(p.is_dir() for p in pred.iterdir()):
        return "scales"
    mats = sorted(pred.glob("*.mat"))
    if not mats:
        return None
    from scipy.io import whosmat

    try:
        names = {name for name, _, _ in whosmat(str(mats[0]))}
    except Exception:  # not a MAT file: let the sweep's reader say so, by name
        return "ucm2"
    return "segs" if "segs" in names and "ucm2" not in names else "ucm2"


def _stems(pred: Path, sweep: str) -> set[str]:
    if sweep == "scales":
        folders = [p for p in pred.iterdir() if p.is_dir()]
        return set.intersection(*({q.stem for q in f.glob("*.png")} for f in folders)) if folders else set()
    return {p.stem for p in pred.glob("*.mat" if sweep in ("ucm2", "segs") else "*.png")}


def run_bsds(args: argparse.Namespace, sweep: str) -> int:
    """Score ``args.pred`` against the BSDS ground truth in ``args.truth`` with ``sweep``."""
    from segscope.io import read_bsds_groundtruth
    from segscope.metrics import bsds_image, bsds_summary

    from ._progress import progress

    pred, truth = Path(args.pred), Path(args.truth)
    truths = {p.stem: p for p in truth.glob("*.mat")}
    if not truths:
        return error(f"{truth}: no BSDS ground-truth .mat files")
    read, regions = SWEEPS[sweep]
    found = _stems(pred, sweep)
    missing = sorted(set(truths) - found)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        return error(f"{len(missing)} ground-truth image(s) have no {sweep} prediction in {pred}: {shown}")
    images = []
    for stem in progress(sorted(truths), desc=f"BSDS {sweep}", unit="image"):
        try:
            steps = read(pred, stem, args.thresholds)
            images.append(bsds_image(steps, read_bsds_groundtruth(truths[stem]), regions=regions))
        except (OSError, ValueError) as exc:
            return error(str(exc), code=1)
    summary = bsds_summary(images)
    print(_table(summary, sweep, len(images), args.thresholds))
    if args.json:
        try:
            report = {"sweep": sweep, "images": len(images), **summary.to_dict()}
            atomic_write_bytes(args.json, (json.dumps(report, indent=2) + "\n").encode())
        except OSError as exc:
            return error(f"cannot write {args.json}: {exc.strerror or exc}", code=1)
        print(f"wrote {args.json}")
    return 0


def _table(summary: Any, sweep: str, count: int, thresholds: int) -> str:
    cut = sweep in ("ucm2", "boundaries")
    steps = f"{thresholds} thresholds" if cut else f"{len(summary.thresholds)} scales"
    lines = [f"BSDS500 protocol: {count} images, {sweep} over {steps}"]
    b = summary.boundary
    if b:
        lines.append(f"boundaries  ODS F {b['ods_f']:.4f} (recall {b['ods_recall']:.4f}, precision "
                     f"{b['ods_precision']:.4f}, at {b['ods_threshold']:.4g})  OIS F {b['ois_f']:.4f}  "
                     f"AP {b['ap']:.4f}")
    if summary.covering:
        c, r = summary.covering, summary.rand_voi
        lines.append(f"covering    ODS {c['ods']:.4f} (at {c['ods_threshold']:.4g})  OIS {c['ois']:.4f}  "
                     f"best {c['best']:.4f}")
        lines.append(f"PRI         ODS {r['pri_ods']:.4f}  OIS {r['pri_ois']:.4f}")
        lines.append(f"VOI         ODS {r['voi_ods']:.4f}  OIS {r['voi_ois']:.4f}")
    return "\n".join(lines)
