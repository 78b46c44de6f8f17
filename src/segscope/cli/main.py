"""The ``segscope`` command: one thin subcommand per public function."""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files as given, folders as their image files (sorted), globs expanded.

    A name that matches nothing is kept, so that it is reported as missing rather than dropped.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif any(ch in item for ch in "*?["):
            found.extend(sorted(Path(p) for p in glob.glob(item, recursive=True)
                                if Path(p).is_file()))
        else:
            found.append(path)
    return found


def parse_params(pairs: Sequence[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"segscope: error: -p expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        params[key.strip()] = value
    return params


def _check_output_dir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"segscope: error: cannot create output folder {outdir}: "
                         f"{exc.strerror or exc}") from None
    if not os.access(outdir, os.W_OK):
        raise SystemExit(f"segscope: error: output folder {outdir} is not writable")


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


def save_result(seg: Any, image: Any, stem: str, outdir: Path, *, fmt: str,
                with_overlay: bool) -> None:
    """Write one image's result in the per-image formats (``png``); overlay if asked."""
    import segscope
    from segscope.io import write_label_png, write_palette_png

    if fmt == "png":
        if seg.kind == "semantic" and int(seg.categories.max(initial=0)) < 255:
            write_palette_png(outdir / f"{stem}.png", seg.class_map(void=255))
        else:
            write_label_png(outdir / f"{stem}.png", seg.labels)
    if with_overlay:
        segscope.overlay(image, seg, path=outdir / f"{stem}_overlay.png")


def _segment_file(item: tuple[Path, str], *, method: str, params: dict[str, Any], outdir: Path,
                  fmt: str, overlay: bool) -> tuple[Path, str | None, Any]:
    """Segment one file and write its outputs; (path, error message or None, result to collect)."""
    import segscope

    path, stem = item
    try:
        image = segscope.imread(path)
        seg = segscope.segment(image, method, **params)
        save_result(seg, image, stem, outdir, fmt=fmt, with_overlay=overlay)
        return path, None, seg if fmt != "png" else None
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        message = str(exc)
        return path, message if str(path) in message else f"{path}: {message}", None


def cmd_segment(args: argparse.Namespace) -> int:
    from functools import partial

    from segscope.registry import bind_parameters, get_method

    if args.tile is not None:
        return _segment_tiled(args)
    from segscope.api import MODEL_SUFFIXES

    if args.method.endswith(MODEL_SUFFIXES):
        print("segscope: error: models segment whole images with 'segscope predict', or huge ones "
              "with 'segscope segment --tile'", file=sys.stderr)
        return 2
    user_params = parse_params(args.param)
    try:
        bound = bind_parameters(get_method(args.method), user_params, from_text=True)
    except (ValueError, TypeError) as exc:
        print(f"segscope: error: {exc}", file=sys.stderr)
        return 2
    params = {k: bound[k] for k in user_params}  # converted from text; defaults left to segment
    outdir = Path(args.output)
    _check_output_dir(outdir)
    paths = expand_inputs(args.inputs)
    if not paths:
        print("segscope: error: no input images found", file=sys.stderr)
        return 2
    items: list[tuple[Path, str]] = []
    stems: set[str] = set()
    for path in paths:
        stem = path.stem if path.stem not in stems else f"{path.stem}_{len(stems)}"
        stems.add(stem)
        items.append((path, stem))
    failures: list[tuple[Path, str]] = []
    collected: dict[Path, Any] = {}
    start = time.perf_counter()
    work = partial(_segment_file, method=args.method, params=params, outdir=outdir, fmt=args.format,
                   overlay=args.overlay)
    with _executor(args, default_workers=1) as executor:
        for path, message, seg in executor.map(work, items, desc=f"segment {args.method}", unit="image"):
            if message is not None:
                failures.append((path, message))
                print(f"error: {message}", file=sys.stderr)
            elif seg is not None:
                collected[path] = seg
    if collected:  # in input order, whichever worker finished first
        _write_collection([(p.name, collected[p]) for p in paths if p in collected], outdir, args.format)
    seconds = time.perf_counter() - start
    done = len(paths) - len(failures)
    print(f"segmented {done} of {len(paths)} images with {args.method} in {seconds:.1f} s "
          f"-> {outdir}" + (f"; {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


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
    import ast

    from segscope.io import ImageReadError
    from segscope.registry import bind_parameters, get_method
    from segscope.tiled import segment_tiled

    if len(args.inputs) != 1:
        print("segscope: error: --tile segments one image at a time; give one input", file=sys.stderr)
        return 2
    if args.format != "png" or args.overlay:
        print("segscope: error: --tile writes a Zarr or BigTIFF label image; --format and --overlay "
              "apply to whole images", file=sys.stderr)
        return 2
    user_params = parse_params(args.param)
    from segscope.api import MODEL_SUFFIXES

    model = args.method.endswith(MODEL_SUFFIXES)
    try:
        if model:
            params: dict[str, Any] = {}
            for key, text in user_params.items():
                try:
                    params[key] = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    params[key] = text
        else:
            bound = bind_parameters(get_method(args.method), user_params, from_text=True)
            params = {k: bound[k] for k in user_params}
        result = segment_tiled(args.inputs[0], args.method, args.output, params=params, tile=args.tile,
                               overlap=args.overlap, workers=_workers(args, None),
                               scheduler=args.scheduler, overwrite=args.overwrite)
    except (OSError, ValueError, TypeError, ImageReadError, ImportError, ConnectionError) as exc:
        print(f"segscope: error: {exc}", file=sys.stderr)
        return 2
    height, width = result.shape
    if result.resumed == result.tiles:
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


def _write_collection(collected: list[tuple[str, Any]], outdir: Path, fmt: str) -> None:
    from segscope.io import PanopticRecord, write_coco, write_coco_panoptic

    if fmt == "coco":
        results = {}
        for name, seg in collected:
            if seg.kind == "regions":
                raise SystemExit("segscope: error: --format coco needs categories; "
                                 "regions results have none (use --format png)")
            results[name] = seg if seg.kind == "instance" else seg.to_panoptic()
        write_coco(outdir / "annotations.json", results)
    elif fmt == "panoptic":
        records = []
        for k, (name, seg) in enumerate(collected):
            if seg.kind == "regions":
                raise SystemExit("segscope: error: --format panoptic needs categories; "
                                 "regions results have none (use --format png)")
            records.append(PanopticRecord(k, name, seg.to_panoptic()))
        write_coco_panoptic(outdir / "panoptic.json", records)


def _read_class_names(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise SystemExit(
            f"segscope: error: cannot read class names from {path}: {exc.strerror or exc}"
        ) from None
    if not names:
        raise SystemExit(f"segscope: error: {path} holds no class names (one per line)")
    return names


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

    try:
        truth_task, truths = read_annotations(args.truth, task=args.task)
        _, preds = read_annotations(args.pred, task=args.task or truth_task)
    except (OSError, ValueError) as exc:
        print(f"segscope: error: {exc}", file=sys.stderr)
        return 2
    task = args.task or truth_task
    stems = _pair(preds, truths, args.pred, args.truth)
    evaluator = Evaluator(task=task, ignore_index=args.ignore, class_names=_read_class_names(args.classes),
                          num_classes=args.num_classes, aggregation=args.aggregation,
                          iou_threshold=args.iou_threshold)
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
        report.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _method_parameters(pairs: Sequence[str] | None, methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    from segscope.registry import bind_parameters, get_method

    raw: dict[str, dict[str, str]] = {}
    for key, value in parse_params(pairs).items():
        if "." not in key:
            raise SystemExit(f"segscope: error: compare parameters are METHOD.KEY=VALUE, got {key!r}")
        method, name = key.split(".", 1)
        if method not in methods:
            raise SystemExit(
                f"segscope: error: parameter {key!r} names method {method!r}, not one of {methods}"
            )
        raw.setdefault(method, {})[name] = value
    out = {}
    for method, values in raw.items():
        bound = bind_parameters(get_method(method), values, from_text=True)
        out[method] = {k: bound[k] for k in values}
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    from segscope.api import MODEL_SUFFIXES
    from segscope.compare import compare_methods, write_compare_report
    from segscope.io import imread
    from segscope.io.datasets import read_annotations
    from segscope.registry import get_method

    from ._progress import progress

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        for m in methods:
            if not m.endswith(MODEL_SUFFIXES):
                get_method(m)
            elif not Path(m).is_file():
                raise ValueError(f"{m}: no such checkpoint or ONNX model")
        parameters = _method_parameters(args.param, methods)
    except (ValueError, TypeError) as exc:
        print(f"segscope: error: {exc}", file=sys.stderr)
        return 2
    paths = expand_inputs(args.inputs)
    missing = [p for p in paths if not p.is_file()]
    if missing or not paths:
        reason = f"no such image: {missing[0]}" if missing else "no input images"
        print(f"segscope: error: {reason}", file=sys.stderr)
        return 2
    if args.limit:
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
        absent = [p.name for p in paths if p.stem not in truths]
        if absent:
            print(f"segscope: error: {len(absent)} image(s) have no truth in {args.truth}: {absent[:5]}",
                  file=sys.stderr)
            return 2
    outdir = Path(args.output)
    _check_output_dir(outdir)
    options = {"ignore_index": args.ignore} if task == "semantic" and args.ignore is not None else {}
    runs = compare_methods(paths, methods, truths=truths, task=task, parameters=parameters,
                           evaluate_options=options,
                           progress=lambda jobs: progress(jobs, desc="compare", unit="run"))
    images = {p.stem: imread(p) for p in paths}
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
                   help="method name (see 'segscope methods'); with --tile also a .pt/.onnx model")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                   help="a method parameter; repeat for several")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output folder; with --tile an OUT.zarr or OUT.tif file")
    p.add_argument("--tile", type=int, metavar="PIXELS",
                   help="segment one huge image in tiles of this size (e.g. 1024)")
    p.add_argument("--overlap", type=int, default=128, metavar="PIXELS",
                   help="context read around each tile; more than the largest object (default 128)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: one per core with --tile, else 1)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run on an existing dask.distributed cluster instead of local workers")
    p.add_argument("--overwrite", action="store_true",
                   help="with --tile: replace an output that holds a different job")
    p.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    p.add_argument("--format", choices=("png", "coco", "panoptic"), default="png",
                   help="png: one label PNG per image (semantic: palette PNG, 255 void); "
                   "coco: annotations.json; panoptic: panoptic.json + panoptic/ PNGs")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser(
        "evaluate", help="score predictions against truths and print a table",
        description="Score predictions against truths. Both are folders of label PNGs paired by "
        "file stem (semantic: class indices; instance: object ids), folders of saved results "
        "(.npz), a COCO JSON or a COCO panoptic JSON; truths may also be a folder of BSDS .mat files.")
    p.add_argument("--pred", required=True, help="predictions: folder or JSON file")
    p.add_argument("--truth", required=True, help="truths: folder or JSON file")
    p.add_argument("--task", choices=("semantic", "instance", "panoptic", "regions"),
                   help="what to score (default: what the truth files imply)")
    p.add_argument("--ignore", type=int, help="semantic: truth value not to count (CamVid 11, VOC 255)")
    p.add_argument("--num-classes", type=int, help="semantic: number of classes")
    p.add_argument("--classes", metavar="NAMES_TXT", help="class names, one per line")
    p.add_argument("--aggregation", choices=("pooled", "per_image"), default="pooled",
                   help="semantic: dataset-wide counts (pooled) or the mean of image scores")
    p.add_argument("--iou-threshold", type=float, default=0.5,
                   help="instance: IoU at which objects match for precision/recall/F1")
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
    p.add_argument("--task", choices=("semantic", "instance", "panoptic", "regions"))
    p.add_argument("--ignore", type=int, help="semantic: truth value not to count")
    p.add_argument("-p", "--param", action="append", metavar="METHOD.KEY=VALUE",
                   help="a method parameter, e.g. felzenszwalb.scale=300; repeat for several")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="output folder")
    p.set_defaults(func=cmd_compare)

    from .deep import add_parsers

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


if __name__ == "__main__":
    sys.exit(main())
