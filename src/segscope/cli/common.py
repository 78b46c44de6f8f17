"""What every subcommand shares: inputs, outputs, ``key=value`` options, and the batch runner.

Subcommand modules (:mod:`.main`, :mod:`.deep`) import this one and never each other's commands.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..io.images import IMAGE_SUFFIXES

__all__ = ["add_output_options", "check_output_dir", "error", "expand_inputs",
           "parse_params", "read_class_names", "run_batch", "save_result"]

VOLUME_SUFFIXES = (".nii", ".nii.gz")
"""Folders give their files with these endings, and with the image reader's (``IMAGE_SUFFIXES``;
TIFFs may hold a stack: read as volumes)."""

def error(message: str, code: int = 2) -> int:
    """Print ``segscope: error: message`` on stderr; returns ``code`` for the caller to return."""
    print(f"segscope: error: {message}", file=sys.stderr)
    return code


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files as given, folders as their image files (sorted), globs expanded.

    A name that matches nothing is kept, so that it is reported as missing rather than dropped.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not path.name.lower().endswith(".zarr"):  # a Zarr volume is one input
            found.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and (p.suffix.lower() in IMAGE_SUFFIXES
                                                    or p.name.lower().endswith(VOLUME_SUFFIXES))))
        elif any(ch in item for ch in "*?["):
            found.extend(sorted(Path(p) for p in glob.glob(item, recursive=True)
                                if Path(p).is_file()))
        else:
            found.append(path)
    return found


def parse_params(pairs: Sequence[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` pairs as typed; their values are converted by :mod:`segscope.textvalues`."""
    params: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"segscope: error: expected key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        params[key.strip()] = value
    return params


def check_output_dir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"segscope: error: cannot create output folder {outdir}: "
                         f"{exc.strerror or exc}") from None
    if not os.access(outdir, os.W_OK):
        raise SystemExit(f"segscope: error: output folder {outdir} is not writable")


def read_class_names(path: str | None) -> list[str] | None:
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


def map_labels(annotations: dict[str, Any], text: str | None) -> None:
    """Apply ``--label-map FROM:TO,...`` to label arrays read from files, in place (as ``train``
    applies it to its labels)."""
    if not text:
        return
    import numpy as np

    from segscope.io.labels import apply_label_map
    from segscope.trainconfig import parse_label_map

    try:
        mapping = parse_label_map(text)
    except ValueError as exc:
        raise SystemExit(f"segscope: error: --label-map {exc}") from None
    for entry in annotations.values():
        if isinstance(entry.value, np.ndarray):
            entry.value = apply_label_map(entry.value, mapping)


VOLUME_FORMAT = "nifti"
"""What ``--format``'s default writes for a volume (label PNGs for images)."""


def save_result(seg: Any, image: Any, stem: str, outdir: Path, *, fmt: str | None, with_overlay: bool,
                probabilities: bool = False) -> None:
    """Write one image's (or volume's) result if ``fmt`` is a per-image format (None: label PNGs,
    or label volumes for a volume); overlay (a volume's: orthogonal slices) and soft probabilities
    if asked."""
    import segscope
    from segscope.io import Volume
    from segscope.io.formats import get_format, list_formats

    if isinstance(image, Volume):
        chosen = get_format(fmt or VOLUME_FORMAT)
        if chosen.write_volume is None:
            able = ", ".join(f.name for f in list_formats() if f.write_volume is not None)
            raise ValueError(f"--format {chosen.name} writes 2-D results; write volumes' with "
                             f"--format {able}")
        chosen.write_volume(seg, outdir, stem, image)
        if with_overlay:
            segscope.viz.orthogonal_slices(image, seg, path=outdir / f"{stem}_overlay.png")
    else:
        write = get_format(fmt or "png").write_file
        if write is not None:
            write(seg, outdir, stem)
        if with_overlay:
            segscope.overlay(image, seg, path=outdir / f"{stem}_overlay.png")
    if probabilities and seg.probabilities is not None:
        _save_probabilities(outdir / f"{stem}_probabilities.npy", seg.probabilities)


def _save_probabilities(path: Path, probabilities: Any) -> None:
    """Class probabilities as float16 .npy, written atomically."""
    import io

    import numpy as np

    from segscope.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    np.save(buffer, probabilities.astype(np.float16))
    atomic_write_bytes(path, buffer.getvalue())


def _one_file(item: tuple[Path, str], *, work: Callable[..., Any], outdir: Path, fmt: str | None,
              overlay: bool, probabilities: bool, collect: bool) -> tuple[Path, str | None, Any]:
    """Segment one file (an image, or a volume: NIfTI, TIFF stack) and write its outputs; (path,
    error message or None, result to collect)."""
    from segscope.io import read_image_or_volume

    path, stem = item
    try:
        image = read_image_or_volume(path)
        seg = work(image)
        save_result(seg, image, stem, outdir, fmt=fmt, with_overlay=overlay, probabilities=probabilities)
        return path, None, seg if collect else None
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        message = str(exc)
        return path, message if str(path) in message else f"{path}: {message}", None


def run_batch(inputs: Sequence[str], work: Callable[..., Any], *, outdir: Path, fmt: str | None,
              overlay: bool,
              desc: str, verb: str, using: str = "", executor: Any = None, probabilities: bool = False
              ) -> int:
    """Run ``work(image) -> Segmentation`` on every input file and write the outputs.

    A file that fails is reported with its reason and the rest go on; the exit status is 1 when
    any failed; the summary line reads ``{verb} N of M images{using} in S s -> OUTDIR``. ``work``
    must pickle when ``executor`` runs on other processes.
    """
    from segscope.io.formats import get_format
    from segscope.tiled import open_executor

    write_all = get_format(fmt).write_all if fmt is not None else None
    check_output_dir(outdir)
    paths = expand_inputs(inputs)
    if not paths:
        return error(f"no input images found in {', '.join(map(str, inputs))}")
    items: list[tuple[Path, str]] = []
    stems: set[str] = set()
    from segscope.io import file_stem

    for path in paths:
        stem = file_stem(path) if file_stem(path) not in stems else f"{file_stem(path)}_{len(stems)}"
        stems.add(stem)
        items.append((path, stem))
    failures: list[tuple[Path, str]] = []
    collected: dict[Path, Any] = {}
    start = time.perf_counter()
    job = partial(_one_file, work=work, outdir=outdir, fmt=fmt, overlay=overlay, probabilities=probabilities,
                  collect=write_all is not None)
    with executor if executor is not None else open_executor(workers=1) as running:
        for path, message, seg in running.map(job, items, desc=desc, unit="image"):
            if message is not None:
                failures.append((path, message))
                print(f"error: {message}", file=sys.stderr)
            elif seg is not None:
                collected[path] = seg
    if collected and write_all is not None:  # in input order, whichever worker finished first
        try:
            write_all([(p.name, collected[p]) for p in paths if p in collected], outdir)
        except (OSError, ValueError) as exc:
            return error(str(exc), code=1)
    seconds = time.perf_counter() - start
    done = len(paths) - len(failures)
    print(f"{verb} {done} of {len(paths)} images{using} in {seconds:.1f} s -> {outdir}"
          + (f"; {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``-o``, ``--format`` and ``--overlay``, as ``segment`` and ``predict`` both take them."""
    p.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    from segscope.io.formats import writers

    found = writers()
    p.add_argument("--format", choices=[f.name for f in found], default=None,
                   help="default: png for images, nifti for volumes; " + "; ".join(f"{f.name}: {f.help}"
                                                                                 for f in found))
