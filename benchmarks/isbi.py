"""ISBI 2012 EM membranes: U-Net against the best threshold method, on held-out images.

    python benchmarks/isbi.py [--minutes 30]

Images 0-24 train, 25-29 are scored (the challenge's own test labels are hidden). Scores are the
pixel error (1 - pixel accuracy of the membrane/cell map) and the foreground-restricted Rand
F-score of the cells (their 4-connected components), as in the challenge (without its border
thinning). The threshold method is chosen among every global and local threshold of segscope by
its Rand F-score on images 0-24, then scored on 25-29 like the network. Beside segscope's U-Net,
in the same budget and loop, the peer: segmentation_models_pytorch's Unet (ResNet-18, no weights).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from deep_common import register_peer, run_in_process

THRESHOLDS = [
    "otsu",
    "li",
    "yen",
    "triangle",
    "isodata",
    "mean",
    "minimum",
    "adaptive_mean",
    "adaptive_gaussian",
    "niblack",
    "sauvola",
]


def _scores(cell_prediction: np.ndarray, truth_cells: np.ndarray) -> tuple[float, float]:
    from segscope.metrics import rand_f_score

    pixel_error = float((cell_prediction != truth_cells).mean())
    predicted = ndimage.label(cell_prediction)[0]
    truth = ndimage.label(truth_cells)[0]
    return pixel_error, rand_f_score(predicted, truth)


def _split(root: Path, out: Path) -> Path:
    """Symlinked train (0-24) and held-out (25-29) folders."""
    split = out / "split"
    for part, ids in (("train", range(25)), ("val", range(25, 30))):
        for kind in ("image", "label"):
            folder = split / part / kind
            folder.mkdir(parents=True, exist_ok=True)
            for k in ids:
                link = folder / f"{k}.png"
                if not link.exists():
                    link.symlink_to((root / kind / f"{k}.png").resolve())
    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench_out/isbi"))
    parser.add_argument("--reuse", action="store_true", help="score the runs already in --out, train none")
    args = parser.parse_args()
    root = args.data / "isbi2012"
    if not root.is_dir():
        raise SystemExit(f"ISBI 2012 not found under {args.data}")
    args.out.mkdir(parents=True, exist_ok=True)
    split = _split(root, args.out)

    import segscope
    from segscope.io import read_label_png

    def load(part: str) -> list[tuple[np.ndarray, np.ndarray]]:
        return [
            (segscope.imread(p), read_label_png(split / part / "label" / p.name) > 0)
            for p in sorted((split / part / "image").glob("*.png"))
        ]

    train_set, held_out = load("train"), load("val")
    rows = {}
    best_threshold, best_f = None, -1.0
    for method in THRESHOLDS:
        try:
            f = np.mean([_scores(segscope.segment(im, method).class_map() == 1, t)[1] for im, t in train_set])
        except ValueError as exc:  # "minimum" needs a two-peaked histogram, which EM images lack
            print(f"{method}: skipped ({exc})")
            continue
        print(f"{method}: Rand F {f:.4f} on images 0-24")
        if f > best_f:
            best_threshold, best_f = method, float(f)
    scores = [_scores(segscope.segment(im, best_threshold).class_map() == 1, t) for im, t in held_out]
    rows[f"{best_threshold} (best threshold on 0-24)"] = {
        "pixel_error": float(np.mean([s[0] for s in scores])),
        "rand_f": float(np.mean([s[1] for s in scores])),
    }

    models = ["unet"] + ([] if args.no_peer else ["smp_unet"])
    for model in models:
        config = {
            "model": {"name": model, "options": {"base_width": 32} if model == "unet" else {}},
            "data": {"train_images": str(split / "train" / "image"),
                     "train_labels": str(split / "train" / "label"),
                     "val_images": str(split / "val" / "image"), "val_labels": str(split / "val" / "label"),
                     "num_classes": 2, "class_names": ["membrane", "cell"], "label_map": {255: 1},
                     "crop": 256, "scale": (0.8, 1.25), "vflip": True, "rotation": 15.0},
            "optim": {"batch_size": 4, "lr": 1e-3, "loss": "ce+dice"},
            "schedule": {"epochs": 10_000, "max_minutes": args.minutes},
            "output": str(args.out / model),
            "seed": 0,
        }
        if model == "smp_unet":
            register_peer()  # the parent loads the peer's checkpoint too
        saved = args.out / f"{model}.json"
        if args.reuse and saved.exists():
            result = json.loads(saved.read_text())
        else:
            print(f"training {model} for {args.minutes:g} min ...", flush=True)
            result = run_in_process(config, saved, [[str(split / "val" / "image" / "25.png")]])
        segmenter = segscope.infer.Segmenter.from_checkpoint(result["checkpoint"], tile=None)
        scores = [_scores(segmenter.segment(im).class_map() == 1, t) for im, t in held_out]
        rows[model] = {
            "pixel_error": float(np.mean([s[0] for s in scores])),
            "rand_f": float(np.mean([s[1] for s in scores])),
            "steps": result["steps"],
            "images_per_second": result["images_per_second"],
            "peak_rss_mb": result["peak_rss_mb"],
        }
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{'method':40s} {'pixel error':>12s} {'Rand F':>8s}   (held-out images 25-29)")
    for name, r in rows.items():
        print(f"{name:40s} {r['pixel_error']:12.4f} {r['rand_f']:8.4f}")


if __name__ == "__main__":
    import segscope.infer  # noqa: F401  (segscope.infer.Segmenter above)

    main()
