"""``segscope train``, ``predict`` and ``export``: the deep-model subcommands (need segscope[deep])."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from ..trainconfig import MIXED_PRECISIONS
from .common import add_output_options, error, parse_params, run_batch


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


_METRIC_NAMES = {"val_miou": "val mIoU", "val_f1": "val F1@0.5"}


def cmd_train(args: argparse.Namespace) -> int:
    _need_torch()
    from segscope.train import train

    try:
        config = config_from_args(args)
        config.validate()
    except (ValueError, TypeError) as exc:
        return error(str(exc))
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
        f"trained {config.model.name} for {result.epochs} epoch(s), {result.steps} steps in "
        f"{result.seconds / 60:.1f} min; {scored} -> {result.checkpoint}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    _need_torch()
    from functools import partial

    from segscope.infer import Predictor, Segmenter, load_predictor
    from segscope.resolve import model_path

    predictor: Predictor
    try:
        checkpoint = model_path(args.checkpoint)  # a file, or a zoo model's name
        if args.backend == "onnx":
            predictor = Segmenter.from_onnx(checkpoint)
        else:
            tile = "auto" if args.tile is None else (args.tile or None)  # --tile 0: whole images
            predictor = load_predictor(checkpoint, device=args.device, tile=tile)
    except (OSError, ValueError, ImportError) as exc:
        return error(str(exc))
    if args.panoptic and predictor.task != "panoptic":
        return error(f"--panoptic needs a panoptic model (panoptic_deeplab); {args.checkpoint} is not one")
    # Each predictor's ``segment`` declares the options it takes (sliding-window overlap, flips,
    # score threshold, panoptic output); the command passes those and no others.
    seeds = False if args.no_seeds else args.seed_threshold
    requested = {"overlap": args.overlap, "flip": args.flip, "score_threshold": args.score_threshold,
                 "seed_threshold": seeds, "output": "panoptic" if args.panoptic else "instance"}
    accepted = inspect.signature(predictor.segment).parameters
    if args.mixed_precision is not None:
        if "mixed_precision" not in accepted:
            return error(f"--mixed-precision: {args.checkpoint}'s predictor runs its network in float32 only "
                         "(star-convex models, such as the zoo's nuclei, take it)")
        requested["mixed_precision"] = args.mixed_precision
    options: dict[str, Any] = {k: v for k, v in requested.items() if k in accepted and v is not None}
    return run_batch(args.inputs, partial(predictor.segment, **options), outdir=Path(args.output),
                     fmt=args.format, overlay=args.overlay, desc="predict", verb="predicted",
                     probabilities=args.probabilities)


def cmd_export(args: argparse.Namespace) -> int:
    _need_torch()
    from segscope.infer import export_onnx
    from segscope.resolve import model_path

    try:
        info = export_onnx(model_path(args.checkpoint), args.output, tile=args.tile)
    except (OSError, ValueError, ImportError) as exc:
        return error(str(exc))
    print(
        f"exported {info['model']['name']} ({len(info['class_names'])} classes, "
        f"{info['tile']}x{info['tile']} tiles) -> {args.output}"
    )
    return 0


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """One option per field of :class:`~segscope.trainconfig.TrainConfig` and its parts, from the
    flag and help each field declares; defaults stay the configuration's own."""
    import dataclasses
    import typing

    from segscope.trainconfig import TrainConfig

    for part, cls in [("", TrainConfig), *((f"{k}.", c) for k, c in TrainConfig.PARTS.items())]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if "flag" not in meta:
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            default: Any = None
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            shown = "" if required or default in (None, {}, []) else f" (default {default})"
            names = [meta["flag"]] + (["--output"] if meta["flag"] == "-o" else [])
            common: dict[str, Any] = {"dest": f"{part}{f.name}", "help": meta["help"] + shown,
                                      "default": argparse.SUPPRESS}
            if hints[f.name] is bool:
                p.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
            elif isinstance(default, dict) and meta["parse"] is None:  # KEY=VALUE pairs
                p.add_argument(*names, action="append", metavar=meta["metavar"], **common)
            else:
                p.add_argument(*names, required=required, metavar=meta["metavar"], **common)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~segscope.trainconfig.TrainConfig` the options given describe (text converted by
    each field's parser or annotation; model options by the model builder's annotations)."""
    import dataclasses
    import typing

    from segscope.textvalues import value_from_text
    from segscope.trainconfig import TrainConfig

    nested: dict[str, Any] = {}
    for part, cls in [("", TrainConfig), *((f"{k}.", c) for k, c in TrainConfig.PARTS.items())]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            dest = f"{part}{f.name}"
            if "flag" not in f.metadata or not hasattr(args, dest):
                continue
            text = getattr(args, dest)
            value: Any
            if isinstance(text, bool) or text is None:
                value = text
            elif isinstance(text, list):
                value = parse_params(text)
            elif f.metadata["parse"] is not None:
                value = f.metadata["parse"](text)
            else:
                try:
                    value = value_from_text(text, hints[f.name])
                except ValueError as exc:
                    raise ValueError(f"{f.metadata['flag']} {text!r}: {exc}") from None
            target = nested.setdefault(part[:-1], {}) if part else nested
            target[f.name] = value
    model = nested["model"]
    model["options"] = _model_options(model["name"], model.get("options", {}))
    return TrainConfig.from_dict(nested)


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a deep model on folders of images and label PNGs",
        description="Train a model (see 'segscope models') on images and label PNGs paired by file stem. "
        "Writes best.pt, last.pt, log.csv and log.json into OUTDIR; validates each epoch.",
    )
    add_config_arguments(p)
    p.add_argument("--resume", help="continue from a last.pt checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="segment images with a trained checkpoint or ONNX model")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument(
        "--checkpoint", required=True,
        help="a .pt checkpoint, a .onnx file with --backend onnx, or a zoo model's name"
    )
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    p.add_argument(
        "--tile", type=int, help="sliding-window tile (default: twice the training crop; 0: whole images)"
    )
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test-time augmentation (default: the model's own, off unless its card sets it)")
    p.add_argument("--mixed-precision", choices=MIXED_PRECISIONS,
                   help="star-convex models: run the network in bfloat16 (bf16: 1.4 to 2 times faster "
                   "on a CPU with native bfloat16, avx512_bf16 or AMX, and 8 to 11 times slower on one "
                   "without), float16 on CUDA (cuda) or float32 (off, the default)")
    p.add_argument(
        "--score-threshold", type=float,
        help="instance models: drop weaker instances (default 0.5 Mask R-CNN, 0 Panoptic-DeepLab); "
        "two-class semantic models: the second class wherever its probability reaches it",
    )
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed-threshold", type=float,
        help="two-class semantic models whose first class separates objects (membranes): close every "
        "object by a watershed from the regions where the second class's probability reaches it",
    )
    seeds.add_argument("--no-seeds", action="store_true", help="turn off the model's default seeds")
    p.add_argument("--panoptic", action="store_true", help="panoptic models: stuff and things, not instances")
    add_output_options(p)
    p.add_argument("--probabilities", action="store_true", help="also write <name>_probabilities.npy")
    p.add_argument("--device")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a checkpoint to ONNX")
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a zoo model's name")
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--tile", type=int, help="input size of the exported model (default: twice the "
                   "crop; rounded up to a multiple the network takes)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("models", help="list the deep models")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    _need_torch()
    from segscope.models import get_model_info, list_models
    from segscope.zoo import zoo_cards

    print("architectures (segscope train --model NAME):")
    for name in list_models():
        print(f"  {name}: {get_model_info(name).summary}")
    cards = zoo_cards()
    print(f"\ntrained models in the zoo (a method everywhere: -m NAME), {len(cards)}:")
    for card in cards.values():
        print("  " + card.describe().replace("\n", "\n  "))
    return 0
