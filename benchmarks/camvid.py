"""Train every segscope model and the peer on CamVid for the same time; report val figures.

    python benchmarks/camvid.py [--minutes 30] [--models unet,fcn,deeplabv3plus,segformer,vit]

Each model trains from scratch in its own process, for ``--minutes`` of training on this machine
(224x224 crops, batch 8, AdamW, poly schedule, scale/flip augmentation, class 11 ignored), and is
validated on CamVid val (101 images, full 480x360) after every epoch; the best epoch's figures are
reported. Beside them, in the same run, budget and loop: segmentation_models_pytorch's Unet with a
ResNet-18 encoder and no pretrained weights (``pip install segscope[bench]``). Throughput is whole
480x360 images per second at batch 1; peak memory is the training process's maximum RSS.
A picture of val predictions next to the truth is written for the best model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from deep_common import colour_panel, images_per_second, register_peer, run_in_process

CLASSES = [
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
]
MODEL_OPTIONS = {
    "unet": {"base_width": 32},
    "fcn": {"backbone": "resnet18"},
    "deeplabv3plus": {"backbone": "resnet18"},
    "segformer": {"variant": "b0"},
    "vit": {"patch_size": 16, "dim": 256, "depth": 6},
    "smp_unet": {},
}
LEARNING_RATES = {"segformer": 6e-4, "vit": 3e-4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--models", default="unet,fcn,deeplabv3plus,segformer,vit")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench_out/camvid"))
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="report the runs already in --out (throughput re-measured), train none",
    )
    args = parser.parse_args()
    root = args.data / "camvid"
    if not root.is_dir():
        raise SystemExit(f"CamVid not found under {args.data}")
    args.out.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m] + ([] if args.no_peer else ["smp_unet"])
    val_images = sorted(str(p) for p in (root / "val").glob("*.png"))
    results = {}
    for model in models:
        config = {
            "model": {"name": model, "options": MODEL_OPTIONS.get(model, {})},
            "data": {"train_images": str(root / "train"), "train_labels": str(root / "trainannot"),
                     "val_images": str(root / "val"), "val_labels": str(root / "valannot"),
                     "num_classes": 11, "class_names": CLASSES, "ignore_index": 11, "crop": args.crop,
                     "scale": (0.5, 1.5)},
            "optim": {"batch_size": args.batch_size, "lr": LEARNING_RATES.get(model, 1e-3)},
            "schedule": {"epochs": 10_000, "max_minutes": args.minutes},
            "output": str(args.out / model),
            "seed": 0,
        }
        saved = args.out / f"{model}.json"
        if args.reuse and saved.exists():
            if model == "smp_unet":
                register_peer()
            results[model] = json.loads(saved.read_text())
            results[model]["images_per_second"] = images_per_second(
                results[model]["checkpoint"], val_images[:10]
            )
        else:
            print(f"training {model} for {args.minutes:g} min ...", flush=True)
            results[model] = run_in_process(config, saved, [val_images[:10]])
        r = results[model]
        print(
            f"  {model}: val mIoU {r['best_miou']:.4f} (epoch {r['best_epoch']} of {r['epochs']}, "
            f"{r['steps']} steps), {r['images_per_second']:.2f} img/s, peak {r['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    peer = results.get("smp_unet")
    header = f"{'val mIoU':>9s} {'steps':>6s} {'img/s':>7s} {'vs peer':>8s} {'peak MB':>8s} {'params M':>9s}"
    print(f"\n{'model':15s} {header}")
    for model, r in results.items():
        ratio = f"{r['images_per_second'] / peer['images_per_second']:.2f}x" if peer else "-"
        print(
            f"{model:15s} {100 * r['best_miou']:8.1f}% {r['steps']:6d} {r['images_per_second']:7.2f} "
            f"{ratio:>8s} {r['peak_rss_mb']:8.0f} {r['parameters_m']:9.2f}"
        )
    best_model = max((m for m in results if m != "smp_unet"), key=lambda m: results[m]["best_miou"])
    print("\nper-class IoU of the best model, " + best_model + ":")
    _per_class_and_picture(results[best_model]["checkpoint"], root, args.out)


def _per_class_and_picture(checkpoint: str, root: Path, out: Path) -> None:
    from segscope import colorize, imread
    from segscope.infer import Segmenter
    from segscope.io import read_label_png
    from segscope.metrics import Evaluator

    segmenter = Segmenter.from_checkpoint(checkpoint, tile=None)  # whole images
    evaluator = Evaluator(task="semantic", num_classes=11, ignore_index=11, class_names=CLASSES)
    rows = []
    for k, image_path in enumerate(sorted((root / "val").glob("*.png"))):
        image = imread(image_path)
        truth = read_label_png(root / "valannot" / image_path.name)
        seg = segmenter.segment(image)
        evaluator.update(seg.class_map(void=255).astype(np.int64), truth)
        if k % 25 == 0:
            from segscope import Segmentation

            truth_seg = Segmentation.from_class_map(truth, num_classes=11, class_names=CLASSES, void=11)
            rows.append([image, colorize(truth_seg), colorize(seg)])
    report = evaluator.compute()
    for name, values in report.per_class.items():
        print(f"  {name:12s} {100 * values['iou']:5.1f}%")
    print(f"  mIoU {100 * report['miou']:.1f}%, pixel accuracy {100 * report['pixel_accuracy']:.1f}%")
    colour_panel(rows, out / "camvid_val_predictions.png")
    print(f"picture: {out / 'camvid_val_predictions.png'} (input | truth | prediction)")


if __name__ == "__main__":
    main()
