"""The ``segscope`` command: one thin subcommand per public function."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..result import KINDS
from .common import (
    add_output_options,
    check_output_dir,
    error,
    expand_inputs,
    map_labels,
    parse_params,
    read_class_names,
    run_batch,
    save_result,
)
from .deep import add_parsers

__all__ = ["build_parser", "main"]


# ---------------------------------------------------------------------------- subcommands
def cmd_methods(args: argparse.Namespace) -> int:
    import segscope

    for info in segscope.methods():
        if args.names:
            print(info.name)
            continue
        print(f"{info.name}  [{info.task}]  {info.summary}")
        for p in info.parameters:
            default = "required" if p.required else f"default {p.default!r}"
            doc = f": {p.doc}" if p.doc else ""
            print(f"    {p.name} ({p.annotation}, {default}){doc}")
        print()
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import segscope

    status = 0
    for path in expand_inputs(args.images):
        try:
            print(segscope.image_info(path))
        except (OSError, ValueError, TypeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


def cmd_segment(args: argparse.Namespace) -> int:
    from segscope.resolve import resolve

    if args.tile is not None:
        return _segment_tiled(args)
    try:
        method = resolve(args.method)
        params = method.options_from_text(parse_params(args.param))
    except (OSError, ValueError, TypeError, ImportError) as exc:
        return error(str(exc))
    # By name, so that the work pickles to other processes (a model file is opened once in each).
    import segscope

    work = partial(segscope.segment, method=args.method, **params)
    return run_batch(args.inputs, work, outdir=Path(args.output), fmt=args.format, overlay=args.overlay,
                     desc=f"segment {args.method}", verb="segmented", using=f" with {args.method}",
                     executor=_executor(args, default_workers=1))


def _workers(args: argparse.Namespace, default: int | None) -> int | None:
    """--workers as given; with --scheduler, none (the cluster has its own); else ``default``."""
    return args.workers if args.workers is not None or args.scheduler else default


def _executor(args: argparse.Namespace, *, default_workers: int | None) -> Any:
    from segscope.tiled import open_executor

    try:
        return open_executor(workers=_workers(args, default_workers), scheduler=args.scheduler)
    except (ValueError, ImportError, ConnectionError) as exc:
        raise SystemExit(f"segscope: error: {exc}") from None


def _segment_tiled(args: argparse.Namespace) -> int:
    from segscope.io import ImageReadError
    from segscope.io.volumes import holds_volume
    from segscope.resolve import resolve
    from segscope.tiled import segment_tiled

    if len(args.inputs) != 1:
        return error("--tile segments one image at a time; give one input")
    if args.format is not None or args.overlay:
        return error("--tile writes a Zarr or BigTIFF label image; --format and --overlay apply to "
                     "whole images")
    if holds_volume(args.inputs[0]):
        return _segment_volume_tiled(args)
    try:
        params = resolve(args.method).options_from_text(parse_params(args.param))
        result = segment_tiled(args.inputs[0], args.method, args.output, params=params, tile=args.tile,
                               overlap=128 if args.overlap is None else args.overlap,
                               workers=_workers(args, None),
                               scheduler=args.scheduler, overwrite=args.overwrite)
    except (OSError, ValueError, TypeError, ImageReadError, ImportError, ConnectionError) as exc:
        return error(str(exc))
    height, width = result.shape
    if result.already_complete:
        print(f"{args.method}: {result.path} already holds this job, finished; nothing to do")
        return 0
    resumed = f" ({result.resumed} done before)" if result.resumed else ""
    found = (f"{result.objects} objects" if result.objects is not None else
             ", ".join(f"{name} {100 * n / (height * width):.1f}%"
                       for name, n in result.details.get("class_pixels", {}).items()))
    print(f"{args.method}: {height}x{width} in {result.tiles} tiles{resumed} on {result.executor}, "
          f"{result.seconds:.1f} s ({height * width / 1e6 / max(result.seconds, 1e-9):.1f} MP/s); "
          f"{found} -> {result.path}")
    return 0


def _segment_volume_tiled(args: argparse.Namespace) -> int:
    """``segment VOLUME --tile N``: 3-D blocks of N voxels into a Zarr label volume."""
    from segscope.io import ImageReadError
    from segscope.resolve import resolve
    from segscope.tiled import segment_volume_tiled

    try:
        params = resolve(args.method).options_from_text(parse_params(args.param))
        done = segment_volume_tiled(args.inputs[0], args.method, args.output, params=params, block=args.tile,
                                    overlap=args.overlap, workers=_workers(args, None))
    except (OSError, ValueError, TypeError, ImageReadError, ImportError) as exc:
        return error(str(exc))
    z, y, x = done.shape
    print(f"{args.method}: {z}x{y}x{x} voxels in {done.blocks} blocks, {done.seconds:.1f} s -> {done.path}")
    return 0


def _prompts_of(path: Path) -> dict[str, dict[str, Any]]:
    """The prompts file: each image's prompts by file name, scribble and mask PNGs read."""
    import json

    import numpy as np

    from segscope.io import read_label_png

    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable prompts JSON ({exc})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ValueError(f"{path}: prompts are an object of image names, each an object of prompts")
    prompts: dict[str, dict[str, Any]] = {}
    for name, entry in raw.items():
        unknown = sorted(set(entry) - {"points", "boxes", "scribbles", "mask"})
        if unknown:
            raise ValueError(f"{path}: {name}: unknown prompt kinds {unknown}")
        found = {k: entry[k] for k in ("points", "boxes") if entry.get(k) is not None}
        if entry.get("scribbles") is not None:
            painted = read_label_png(path.parent / entry["scribbles"]).astype(np.int32)
            painted[painted == 255] = -1  # background (erase)
            found["scribbles"] = painted
        if entry.get("mask") is not None:
            found["mask"] = read_label_png(path.parent / entry["mask"]).astype(np.int32)
        prompts[name] = found
    return prompts


def cmd_prompt(args: argparse.Namespace) -> int:
    """Segment each image named in the prompts file with its prompts (batch correction)."""
    import segscope
    from segscope.resolve import resolve_prompted

    try:
        prompts = _prompts_of(Path(args.prompts))
        options = resolve_prompted(args.method).options_from_text(parse_params(args.param))
    except (OSError, ValueError, TypeError) as exc:
        return error(str(exc))
    given = expand_inputs(args.images)
    missing = sorted(set(prompts) - {p.name for p in given})
    if missing:
        return error(f"{args.prompts} names images not given: {', '.join(missing[:5])}")
    outdir = Path(args.output)
    check_output_dir(outdir)
    done = failed = 0
    for path in (p for p in given if p.name in prompts):
        try:
            image = segscope.imread(path)
            seg = segscope.prompt(image, method=args.method, click_radius=args.click_radius,
                                  **prompts[path.name], **options)
            save_result(seg, image, path.stem, outdir, fmt=args.format, with_overlay=args.overlay)
            done += 1
        except (OSError, ValueError, TypeError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failed += 1
    print(f"segmented {done} of {done + failed} images with prompts ({args.method}) -> {outdir}"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the web app on FOLDER."""
    try:
        from segscope.serve.app import Settings, serve
    except ImportError as exc:
        return error(f"segscope serve needs segscope[serve] (starlette, uvicorn, python-multipart): {exc}")
    folder = Path(args.folder)
    if not folder.is_dir():
        return error(f"{folder}: not a folder")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who reaches this address can run methods on "
              f"the images of {folder}", file=sys.stderr)
    try:
        settings = Settings(folder=folder, truth=Path(args.truth) if args.truth else None, task=args.task,
                            workers=args.workers, timeout=args.timeout,
                            max_request_bytes=int(args.max_request_mb * 2**20))
        serve(settings, host=args.host, port=args.port)
    except (OSError, ValueError) as exc:
        return error(str(exc))
    return 0


def _pair(pred: dict[str, Any], truth: dict[str, Any], pred_path: str, truth_path: str) -> list[str]:
    stems = sorted(set(pred) & set(truth))
    missing = sorted(set(truth) - set(pred))
    if not stems:
        raise SystemExit(f"segscope: error: no file names in common between {pred_path} and {truth_path} "
                         f"(predictions: {sorted(pred)[:3]}..., truths: {sorted(truth)[:3]}...)")
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise SystemExit(f"segscope: error: {len(missing)} truth image(s) have no prediction in {pred_path}: "
                         f"{shown}")
    return stems


def cmd_evaluate(args: argparse.Namespace) -> int:
    from segscope.io.datasets import read_annotations
    from segscope.metrics import Evaluator

    from ._progress import progress
    from .bsds import detect_sweep, run_bsds

    truth_is_bsds = Path(args.truth).is_dir() and any(Path(args.truth).glob("*.mat"))
    sweep = args.sweep or (detect_sweep(Path(args.pred)) if truth_is_bsds else None)
    if sweep is not None:
        return run_bsds(args, sweep)

    try:
        truth_task, truths = read_annotations(args.truth, task=args.task, images=args.images)
        _, preds = read_annotations(args.pred, task=args.task or truth_task, images=args.images)
    except (OSError, ValueError) as exc:
        return error(str(exc))
    task = args.task or truth_task
    map_labels(truths, args.label_map)
    stems = _pair(preds, truths, args.pred, args.truth)
    given = {"ignore_index": args.ignore, "class_names": read_class_names(args.classes),
             "num_classes": args.num_classes, "aggregation": args.aggregation,
             "iou_threshold": args.iou_threshold}
    try:
        evaluator = Evaluator(task=task, **{k: v for k, v in given.items() if v is not None})
    except (TypeError, ValueError) as exc:
        return error(str(exc))
    for stem in progress(stems, desc=f"evaluate {task}", unit="image"):
        truth, pred = truths[stem], preds[stem]
        try:
            evaluator.update(pred.value, truth.value, crowd=truth.crowd, name=stem)
        except (ValueError, TypeError) as exc:
            print(f"segscope: error: {pred.source} against {truth.source}: {exc}", file=sys.stderr)
            return 1
    report = evaluator.compute()
    print(report.table())
    if args.json:
        try:
            report.to_json(args.json)
        except OSError as exc:
            return error(f"cannot write {args.json}: {exc.strerror or exc}", code=1)
        print(f"wrote {args.json}")
    return 0


def _method_parameters(pairs: Sequence[str] | None, methods: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw: dict[str, dict[str, str]] = {}
    for key, value in parse_params(pairs).items():
        if "." not in key:
            raise SystemExit(f"segscope: error: compare parameters are METHOD.KEY=VALUE, got {key!r}")
        method, name = key.split(".", 1)
        if method not in methods:
            raise SystemExit(
                f"segscope: error: parameter {key!r} names method {method!r}, not one of {list(methods)}"
            )
        raw.setdefault(method, {})[name] = value
    return {method: methods[method].options_from_text(values) for method, values in raw.items()}


def cmd_compare(args: argparse.Namespace) -> int:
    from segscope.compare import compare_methods, write_compare_report
    from segscope.io import imread
    from segscope.io.datasets import read_annotations
    from segscope.resolve import resolve

    from ._progress import progress

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        return error(f"--methods names no method ({args.methods!r}); give names separated by commas")
    if args.limit is not None and args.limit < 1:
        return error(f"--limit must be at least 1 (the first N images), got {args.limit}")
    try:
        resolved = {m: resolve(m) for m in methods}
        parameters = _method_parameters(args.param, resolved)
    except (OSError, ValueError, TypeError, ImportError) as exc:
        return error(str(exc))
    paths = expand_inputs(args.inputs)
    missing = [p for p in paths if not p.is_file()]
    if missing or not paths:
        reason = f"no such image: {missing[0]}" if missing else \
            f"no input images found in {', '.join(args.inputs)}"
        print(f"segscope: error: {reason}", file=sys.stderr)
        return 2
    if args.limit is not None:
        paths = paths[: args.limit]
    truths = None
    task = args.task
    if args.truth:
        try:
            truth_task, truths = read_annotations(args.truth, task=args.task)
        except (OSError, ValueError) as exc:
            print(f"segscope: error: {exc}", file=sys.stderr)
            return 2
        task = task or truth_task
        map_labels(truths, args.label_map)
        absent = [p.name for p in paths if p.stem not in truths]
        if absent:
            print(f"segscope: error: {len(absent)} image(s) have no truth in {args.truth}: {absent[:5]}",
                  file=sys.stderr)
            return 2
    outdir = Path(args.output)
    check_output_dir(outdir)
    options = {"ignore_index": args.ignore} if task == "semantic" and args.ignore is not None else {}
    runs = compare_methods(paths, methods, truths=truths, task=task, parameters=parameters,
                           evaluate_options=options,
                           progress=lambda jobs: progress(jobs, desc="compare", unit="run"))
    images = {}
    for p in paths:
        with contextlib.suppress(OSError, ValueError):  # an unreadable image's runs carry the reason
            images[p.stem] = imread(p)
    report = outdir / "index.html"
    write_compare_report(report, runs, methods, images=images,
                         title=f"segscope compare: {', '.join(methods)} on {len(paths)} image(s)")
    from segscope.compare import summary_rows
    from segscope.metrics.report import format_table

    columns, rows = summary_rows(runs, methods)
    print(format_table(rows, columns))
    failed = [r for r in runs if r.error is not None]
    for r in failed:
        print(f"error: {r.method} on {r.image}: {r.error}", file=sys.stderr)
    print(f"wrote {report}")
    return 1 if failed else 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segscope", description="Image segmentation: classical and deep methods, one result "
        "type, one metric suite.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("methods", help="list the segmentation methods and their parameters")
    p.add_argument("--names", action="store_true", help="print the names only")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("info", help="shape, dtype, channels and value range of images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "segment", help="segment images with a method",
        description="Segment images (files, folders, globs) with one method. A file that fails "
        "is reported and the rest go on; the exit status is 1 when any failed. With --tile, one "
        "image of any size is segmented tile by tile in bounded memory into OUT.zarr or a tiled "
        "BigTIFF; run the same command again to resume an interrupted job.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("-m", "--method", required=True,
                   help="method name (see 'segscope methods') or a trained .pt/.onnx model")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                   help="a method parameter; repeat for several")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output folder; with --tile an OUT.zarr or OUT.tif file")
    p.add_argument("--tile", type=int, metavar="PIXELS",
                   help="segment one huge image in tiles of this size (e.g. 1024)")
    p.add_argument("--overlap", type=int, metavar="PIXELS",
                   help="context read around each tile; more than the largest object (default 128; volumes: "
                        "what the method's window reaches)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: one per core with --tile, else 1)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on an existing dask.distributed cluster instead of local workers")
    p.add_argument("--overwrite", action="store_true",
                   help="with --tile: replace an output that holds a different job")
    add_output_options(p)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser(
        "evaluate", help="score predictions against truths and print a table",
        description="Score predictions against truths. Both are folders of label PNGs paired by "
        "file stem (semantic: class indices; instance: object ids), folders of saved results "
        "(.npz), folders of YOLO segmentation .txt files, a COCO JSON or a COCO panoptic JSON; truths "
        "may also be a folder of BSDS .mat files, and then predictions may be BSDS sweeps (ucm2 or "
        "segs .mat files, a folder per scale, soft boundary PNGs with --sweep boundaries), scored by "
        "the BSDS500 protocol (boundary ODS, OIS, AP; covering, PRI, VOI).")
    p.add_argument("--pred", required=True, help="predictions: folder or JSON file")
    p.add_argument("--truth", required=True, help="truths: folder or JSON file")
    p.add_argument("--task", choices=KINDS,
                   help="what to score (default: what the truth files imply)")
    p.add_argument("--ignore", type=int, help="semantic: truth value not to count (CamVid 11, VOC 255)")
    p.add_argument("--label-map", metavar="FROM:TO,...", help="truth label values to replace first, as train "
                   "takes them (255:1 for ISBI)")
    p.add_argument("--num-classes", type=int, help="semantic: number of classes")
    p.add_argument("--classes", metavar="NAMES_TXT", help="class names, one per line")
    p.add_argument("--aggregation", choices=("pooled", "per_image"), default="pooled",
                   help="semantic: dataset-wide counts (pooled) or the mean of image scores")
    p.add_argument("--iou-threshold", type=float, default=0.5,
                   help="instance: IoU at which objects match for precision/recall/F1")
    p.add_argument("--images", metavar="FOLDER",
                   help="YOLO .txt labels: the folder of their images (default: images/ beside them)")
    p.add_argument("--sweep", choices=("ucm2", "segs", "scales", "boundaries"),
                   help="BSDS protocol against BSDS .mat truths: ucm2 .mat maps, segs .mat cells, one "
                   "sub-folder of label PNGs per scale, or soft boundary PNGs (default: what --pred holds)")
    p.add_argument("--thresholds", type=int, default=99,
                   help="BSDS protocol: levels at which ucm2 maps and soft boundaries are cut")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "compare", help="run several methods on images and write an HTML report",
        description="Run each method on each image and write REPORT_DIR/index.html (self-contained, "
        "opens offline): per method the scores (mean and spread), seconds and peak memory; per "
        "image the overlays side by side with error maps, and histograms for threshold methods.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--methods", required=True,
                   help="comma-separated method names and trained models (.pt, .pth or .onnx files)")
    p.add_argument("--truth", help="truths to score against (folder or JSON, paired by file stem)")
    p.add_argument("--task", choices=KINDS)
    p.add_argument("--ignore", type=int, help="semantic: truth value not to count")
    p.add_argument("--label-map", metavar="FROM:TO,...", help="truth label values to replace first, as train "
                   "takes them (255:1 for ISBI)")
    p.add_argument("-p", "--param", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method parameter, e.g. felzenszwalb.scale=300; repeat for several")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="output folder")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "prompt", help="segment the objects prompts point at (clicks, boxes, scribbles, previous masks)",
        description="Prompts come from a JSON file: {\"IMAGE_NAME\": {\"points\": [[row, col, label], ...], "
        "\"boxes\": [[row0, col0, row1, col1], ...], \"scribbles\": \"scribble.png\", \"mask\": "
        "\"previous.png\"}, ...}; label k >= 1 is a positive click on object k, 0 a negative click; "
        "scribble PNGs hold object ids, 255 for background; paths are relative to the JSON file.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders (named in the JSON)")
    p.add_argument("--prompts", required=True, metavar="JSON", help="the prompts of each image, by file name")
    p.add_argument("-m", "--method", default="geodesic",
                   help="a prompted method (default geodesic), or a click model (zoo's clicks, a .pt)")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="a method option")
    p.add_argument("--click-radius", type=int, default=3, help="pixels each click marks (default 3)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    add_output_options(p)
    p.set_defaults(func=cmd_prompt)

    p = sub.add_parser(
        "serve", help="a web app: open images, run methods, compare them, correct by pointing",
        description="Serve a small web app (offline: its page ships with segscope) on FOLDER's images: run "
        "any method or zoo model from a form made from its parameters, compare methods side by side (scored "
        "when a truth is present: FOLDER/truth or FOLDER/labels, or --truth), correct by clicks, boxes and "
        "a brush, and download label PNGs, COCO JSON or .npz. Listens on 127.0.0.1 unless told otherwise.")
    p.add_argument("folder", nargs="?", default=".", metavar="FOLDER", help="the images to serve (default .)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--truth", metavar="PATH", help="truths paired with the images by file stem")
    p.add_argument("--task", choices=KINDS, help="the task the truths are scored as")
    p.add_argument("--workers", type=int, default=2,
                   help="jobs run at once, each in its own process (default 2)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a job may run (default 120)")
    p.add_argument("--max-request-mb", type=float, default=64.0,
                   help="largest upload or request (default 64)")
    p.set_defaults(func=cmd_serve)

    add_parsers(sub)
    return parser


def _version() -> str:
    import segscope

    return f"segscope {segscope.__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`segscope methods | head`): stop quietly, as Unix tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
