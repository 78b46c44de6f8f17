"""``segscope train``, ``predict`` and ``export``: the deep-model subcommands (need segscope[deep])."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import add_output_options, error, parse_params, read_class_names, run_batch


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit(
            "segscope: error: this command needs segscope[deep] (pip install 'segscope[deep]')"
        ) from None


def _model_options(model: str, values: dict[str, str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` converted by the model builder's annotations."""
    from segscope.models import get_model_info
    from segscope.textvalues import convert_all

    try:
        return convert_all(values, get_model_info(model).builder, what=f"model {model!r}")
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"segscope: error: {exc}") from None


def _label_map(text: str | None) -> dict[int, int] | None:
    if not text:
        return None
    try:
        return {int(a): int(b) for a, b in (pair.split(":") for pair in text.split(","))}
    except ValueError:
        raise SystemExit(
            f"segscope: error: --label-map expects FROM:TO pairs like 255:1, got {text!r}"
        ) from None


_METRIC_NAMES = {"val_miou": "val mIoU", "val_f1": "val F1@0.5"}


def cmd_train(args: argparse.Namespace) -> int:
    _need_torch()
    from segscope.train import TrainConfig, train

    names = read_class_names(args.classes)
    num_classes = args.num_classes or (len(names) if names else None)
    if num_classes is None:
        raise SystemExit("segscope: error: give --classes NAMES_TXT or --num-classes N")
    weights: Any = args.class_weights
    if weights not in (None, "auto"):
        weights = [float(w) for w in weights.split(",")]
    config = TrainConfig(
        model=args.model,
        train_images=args.images,
        train_labels=args.labels,
        output=args.output,
        num_classes=num_classes,
        model_options=_model_options(args.model, parse_params(args.option)),
        val_images=args.val_images,
        val_labels=args.val_labels,
        holdout=args.holdout,
        class_names=names,
        ignore_index=args.ignore,
        label_map=_label_map(args.label_map),
        crop=args.crop,
        scale=(args.min_scale, args.max_scale),
        vflip=args.vflip,
        rotation=args.rotation,
        loss=args.loss,
        class_weights=weights,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        warmup_steps=args.warmup,
        epochs=args.epochs,
        max_minutes=args.minutes,
        batch_size=args.batch_size,
        accumulate=args.accumulate,
        seed=args.seed,
        workers=args.workers,
        patience=args.patience,
        device=args.device,
    )
    try:
        result = train(config, resume=args.resume)
    except (OSError, ValueError, TypeError) as exc:
        return error(str(exc))
    scored = (
        f"best {_METRIC_NAMES.get(result.metric, result.metric)} {result.best_score:.4f} "
        f"at epoch {result.best_epoch}"
        if result.best_score >= 0
        else "no validation set (give --val-images/--val-labels or --holdout)"
    )
    print(
        f"trained {args.model} for {result.epochs} epoch(s), {result.steps} steps in "
        f"{result.seconds / 60:.1f} min; {scored} -> {result.checkpoint}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    _need_torch()
    from functools import partial

    from segscope.infer import Predictor, Segmenter, load_predictor

    predictor: Predictor
    try:
        if args.backend == "onnx":
            predictor = Segmenter.from_onnx(args.checkpoint)
        else:
            tile = "auto" if args.tile is None else (args.tile or None)  # --tile 0: whole images
            predictor = load_predictor(args.checkpoint, device=args.device, tile=tile)
    except (OSError, ValueError, ImportError) as exc:
        return error(str(exc))
    if args.panoptic and predictor.task != "panoptic":
        return error(f"--panoptic needs a panoptic model (panoptic_deeplab); {args.checkpoint} is not one")
    if predictor.task == "semantic":
        options: dict[str, Any] = {"overlap": args.overlap, "flip": args.flip}
    else:
        options = {"score_threshold": args.score_threshold,
                   "output": "panoptic" if args.panoptic else "instance"}
    return run_batch(args.inputs, partial(predictor.segment, **options), outdir=Path(args.output),
                     fmt=args.format, overlay=args.overlay, desc="predict", verb="predicted",
                     probabilities=args.probabilities)


def cmd_export(args: argparse.Namespace) -> int:
    _need_torch()
    from segscope.infer import export_onnx

    try:
        info = export_onnx(args.checkpoint, args.output, tile=args.tile)
    except (OSError, ValueError, ImportError) as exc:
        return error(str(exc))
    print(
        f"exported {info['model']['name']} ({len(info['class_names'])} classes, "
        f"{info['tile']}x{info['tile']} tiles) -> {args.output}"
    )
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a deep model on folders of images and label PNGs",
        description="Train a model (see 'segscope models') on images and label PNGs paired by file stem. "
        "Writes best.pt, last.pt, log.csv and log.json into OUTDIR; validates each epoch.",
    )
    p.add_argument("--model", required=True, help="a name from `segscope models` (unet, fcn, maskrcnn ...)")
    p.add_argument("--images", required=True, help="training images folder")
    p.add_argument(
        "--labels", required=True,
        help="training label PNGs folder (same file stems); for maskrcnn and panoptic_deeplab: "
        "instance label PNGs, a VOC SegmentationObject folder, or a COCO instances JSON",
    )
    p.add_argument("--val-images", help="validation images folder")
    p.add_argument("--val-labels", help="validation labels, as --labels")
    p.add_argument("--holdout", type=int, default=0, help="without val folders: hold out the last N pairs")
    p.add_argument(
        "--classes", metavar="NAMES_TXT",
        help="class names, one per line (instance models: object categories, no background)",
    )
    p.add_argument("--num-classes", type=int)
    p.add_argument("--ignore", type=int, default=255, help="label value not scored (CamVid 11)")
    p.add_argument("--label-map", help="label values to replace, e.g. 255:1 for ISBI")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--min-scale", type=float, default=0.5)
    p.add_argument("--max-scale", type=float, default=2.0)
    p.add_argument("--vflip", action="store_true")
    p.add_argument("--rotation", type=float, default=0.0, help="random rotation range, degrees")
    p.add_argument("--loss", default="ce", help="ce, dice, focal or sums like ce+dice")
    p.add_argument("--class-weights", help="'auto' (median frequency) or comma-separated weights")
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--schedule", choices=("poly", "cosine", "constant"), default="poly")
    p.add_argument("--warmup", type=int, default=0, help="warm-up steps")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--minutes", type=float, help="stop after this much training time")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--accumulate", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="data-loading processes")
    p.add_argument("--patience", type=int, help="stop after N epochs without a better val mIoU")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when present)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="model option, e.g. base_width=32")
    p.add_argument("--resume", help="continue from a last.pt checkpoint")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="segment images with a trained checkpoint or ONNX model")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument(
        "--checkpoint", required=True, help="a .pt checkpoint, or a .onnx file with --backend onnx"
    )
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    p.add_argument(
        "--tile", type=int, help="sliding-window tile (default: twice the training crop; 0: whole images)"
    )
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument(
        "--score-threshold", type=float,
        help="instance models: drop weaker instances (default 0.5 Mask R-CNN, 0 Panoptic-DeepLab)",
    )
    p.add_argument("--panoptic", action="store_true", help="panoptic models: stuff and things, not instances")
    add_output_options(p)
    p.add_argument("--probabilities", action="store_true", help="also write <name>_probabilities.npy")
    p.add_argument("--device")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a checkpoint to ONNX")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--tile", type=int, help="input size of the exported model (default: twice the crop)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("models", help="list the deep models")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    _need_torch()
    from segscope.models import get_model_info, list_models

    for name in list_models():
        print(f"{name}: {get_model_info(name).summary}")
    return 0
