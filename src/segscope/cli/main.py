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


def cmd_segment(args: argparse.Namespace) -> int:
    import segscope
    from segscope.registry import bind_parameters, get_method

    from ._progress import progress

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
    failures: list[tuple[Path, str]] = []
    collected: list[tuple[str, Any]] = []
    start = time.perf_counter()
    stems: set[str] = set()
    for path in progress(paths, desc=f"segment {args.method}", unit="image"):
        stem = path.stem if path.stem not in stems else f"{path.stem}_{len(stems)}"
        stems.add(stem)
        try:
            image = segscope.imread(path)
            seg = segscope.segment(image, args.method, **params)
            save_result(seg, image, stem, outdir, fmt=args.format, with_overlay=args.overlay)
            if args.format != "png":
                collected.append((path.name, seg))
        except (OSError, ValueError, TypeError, MemoryError) as exc:
            message = str(exc)
            if str(path) not in message:
                message = f"{path}: {message}"
            failures.append((path, message))
            print(f"error: {message}", file=sys.stderr)
    if collected:
        _write_collection(collected, outdir, args.format)
    seconds = time.perf_counter() - start
    done = len(paths) - len(failures)
    print(f"segmented {done} of {len(paths)} images with {args.method} in {seconds:.1f} s "
          f"-> {outdir}" + (f"; {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


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
        "is reported and the rest go on; the exit status is 1 when any failed.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("-m", "--method", required=True, help="method name (see 'segscope methods')")
    p.add_argument("-p", "--param", action="append", metavar="KEY=VALUE",
                   help="a method parameter; repeat for several")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    p.add_argument("--format", choices=("png", "coco", "panoptic"), default="png",
                   help="png: one label PNG per image (semantic: palette PNG, 255 void); "
                   "coco: annotations.json; panoptic: panoptic.json + panoptic/ PNGs")
    p.set_defaults(func=cmd_segment)
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
