"""Run several methods on the same images, score them, and write one offline HTML report.

Used by ``segscope compare``. For each method and image it records the result's scores against
the truth (when given), the seconds the method took and its peak memory (NumPy and Python
allocations, as ``tracemalloc`` sees them), and pictures: the overlay and an error map.
"""

from __future__ import annotations

import html
import os
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .api import segment
from .atomic import atomic_write_bytes
from .groundtruth import BsdsGroundTruth
from .imagecheck import to_gray
from .io.formats import Annotation
from .io.images import imread
from .metrics import evaluate, label_boundaries
from .metrics.boundaries import boundary_matches
from .result import Segmentation
from .viz.pictures import overlay, to_display
from .viz.report import png_data_uri

__all__ = ["MethodRun", "compare_methods", "score_against", "summary_rows", "write_compare_report"]

# Error-map colours: true positives, false positives, false negatives.
TP_COLOUR = np.array([60, 170, 60], np.uint8)
FP_COLOUR = np.array([230, 60, 40], np.uint8)
FN_COLOUR = np.array([40, 110, 230], np.uint8)


@dataclass
class MethodRun:
    """One method on one image: its scores, seconds, peak memory and pictures."""

    method: str
    image: str
    scores: dict[str, float]
    seconds: float
    peak_mb: float
    overlay: np.ndarray
    error_map: np.ndarray | None = None
    histogram: np.ndarray | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _as_task(seg: Segmentation, task: str) -> Any:
    """A method's result in the form the truth's task scores."""
    if task == "regions":
        return seg.labels
    if task == "instance":
        if seg.kind in ("instance", "panoptic"):
            return seg
        from scipy import ndimage

        # A foreground/background result: objects are the connected foreground pieces.
        fg = seg.class_map(void=0) > 0 if seg.kind == "semantic" else seg.labels > 0
        labels, count = ndimage.label(fg)
        return Segmentation.from_labels(labels.astype(np.int32), kind="instance",
                                        categories={i: 0 for i in range(1, count + 1)})
    if task == "semantic":
        return seg.class_map(void=255) if seg.kind != "regions" else seg.labels
    return seg


def _foreground(value: Any) -> np.ndarray:
    if isinstance(value, Segmentation):
        return value.labels > 0
    return np.asarray(value) > 0


def _error_map(prediction: Any, truth: Any, task: str) -> tuple[np.ndarray, dict[str, float]]:
    """Pixels right, false positives and false negatives in three colours (boundaries for regions)."""
    if task == "regions":
        truths = truth.boundaries if isinstance(truth, BsdsGroundTruth) else [label_boundaries(truth)]
        match = boundary_matches(label_boundaries(prediction), truths)
        picture = np.full((*match.machine.shape, 3), 255, np.uint8)
        picture[match.truth & ~match.matched_truth] = FN_COLOUR
        picture[match.machine & ~match.matched_machine] = FP_COLOUR
        picture[match.matched_machine] = TP_COLOUR
        return picture, {"boundary_f": match.counts.f_measure}
    pred = _foreground(prediction)
    true = _foreground(truth)
    picture = np.full((*pred.shape, 3), 255, np.uint8)
    picture[pred & true] = TP_COLOUR
    picture[pred & ~true] = FP_COLOUR
    picture[~pred & true] = FN_COLOUR
    return picture, {}


def compare_methods(
    images: Sequence[str | os.PathLike[str]],
    methods: Sequence[str],
    *,
    truths: dict[str, Any] | None = None,
    task: str | None = None,
    parameters: dict[str, dict[str, Any]] | None = None,
    evaluate_options: dict[str, Any] | None = None,
    progress: Callable[[Any], Any] = lambda x: x,
) -> list[MethodRun]:
    """Run every method on every image; score against ``truths`` (keyed by file stem) if given."""
    from .classical.histogram import plot_histogram

    runs: list[MethodRun] = []
    parameters = parameters or {}
    options = evaluate_options or {}
    jobs = [(Path(p), m) for p in images for m in methods]
    cache: dict[Path, np.ndarray | str] = {}
    for path, method in progress(jobs):
        if path not in cache:
            cache.clear()
            try:
                cache[path] = imread(path)
            except (OSError, ValueError) as exc:  # reported in the page; the other images go on
                cache[path] = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        image = cache[path]
        if isinstance(image, str):
            runs.append(MethodRun(method, path.stem, {}, 0.0, 0.0, np.zeros((1, 1, 3), np.uint8),
                                  error=f"cannot read the image ({image})"))
            continue
        tracemalloc.start()
        start = time.perf_counter()
        try:
            seg = segment(image, method, **parameters.get(method, {}))
        except (ValueError, TypeError, MemoryError) as exc:
            tracemalloc.stop()
            runs.append(MethodRun(method, path.stem, {}, 0.0, 0.0, to_display(image),
                                  error=str(exc) if str(path) in str(exc) else f"{path}: {exc}"))
            continue
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        run = MethodRun(method, path.stem, {}, seconds, peak, overlay(image, seg))
        chosen = seg.provenance.details.get("threshold") if seg.provenance else None
        if chosen is None and seg.provenance:
            chosen = seg.provenance.details.get("thresholds")
        if chosen is not None:
            values = chosen if isinstance(chosen, (list, tuple)) else [chosen]
            if all(isinstance(v, (int, float)) for v in values):
                # Threshold methods work on the grey conversion of colour input: plot that.
                grey = to_gray(image)
                run.histogram = plot_histogram(grey, thresholds=values, title=f"{method}: {path.stem}")
        truth = truths.get(path.stem) if truths else None
        if truth is not None:
            run.scores, run.error_map = score_against(seg, truth, task=task, **options)
        runs.append(run)
    return runs


def score_against(seg: Segmentation, truth: Any, *, task: str | None = None, **options: Any
                  ) -> tuple[dict[str, float], np.ndarray]:
    """One result scored against its truth: the numeric scores and the error map.

    ``truth`` is an :class:`~segscope.io.formats.Annotation` or its value (a label array, a
    :class:`Segmentation`, a BSDS ground truth); ``task`` defaults to what the truth implies, and
    the result is read as that task asks (a foreground mask's pieces for instances, say).
    ``options`` go to :func:`segscope.metrics.evaluate`.
    """
    value, crowd = (truth.value, truth.crowd) if isinstance(truth, Annotation) else (truth, None)
    the_task = task or ("regions" if isinstance(value, BsdsGroundTruth) else
                        value.kind if isinstance(value, Segmentation) else "semantic")
    prediction = _as_task(seg, the_task)
    report = evaluate(prediction, value, task=the_task, crowd=crowd, **options)
    scores = {k: v for k, v in report.scores.items() if isinstance(v, (int, float))}
    error_map, extra = _error_map(prediction, value, the_task)
    return {**scores, **extra}, error_map


def summary_rows(
    runs: Sequence[MethodRun], methods: Sequence[str]
) -> tuple[list[str], list[dict[str, str]]]:
    keys: list[str] = []
    for run in runs:
        for k in run.scores:
            if k not in keys:
                keys.append(k)
    rows = []
    for method in methods:
        mine = [r for r in runs if r.method == method and r.error is None]
        failed = sum(1 for r in runs if r.method == method and r.error is not None)
        row = {"method": method, "images": str(len(mine)) + (f" ({failed} failed)" if failed else "")}
        for k in keys:
            values = np.array([r.scores[k] for r in mine if k in r.scores and np.isfinite(r.scores[k])])
            row[k] = f"{values.mean():.3f} ± {values.std():.3f}" if values.size else "-"
        seconds = np.array([r.seconds for r in mine])
        row["seconds"] = f"{seconds.mean():.3f} ± {seconds.std():.3f}" if seconds.size else "-"
        row["peak MB"] = f"{max((r.peak_mb for r in mine), default=0):.1f}"
        rows.append(row)
    return ["method", "images", *keys, "seconds", "peak MB"], rows


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start}
figure{margin:0;background:#fafafa;border:1px solid #e3e3e3;border-radius:6px;padding:6px}
figure img{max-width:300px;display:block}
figcaption{font-size:12px;color:#444;margin-top:4px;max-width:300px}
.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
"""


def write_compare_report(
    path: str | os.PathLike[str],
    runs: Sequence[MethodRun],
    methods: Sequence[str],
    *,
    title: str = "segscope compare",
    images: dict[str, np.ndarray] | None = None,
) -> None:
    """Write the comparison as one self-contained HTML file (pictures embedded; no network)."""
    columns, rows = summary_rows(runs, methods)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append("<h2>Methods</h2><p>Mean ± standard deviation over images; seconds per image; peak "
                 "memory is the largest over images of NumPy and Python allocations.</p><table><tr>")
    parts.append("".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(row.get(c, '-'))}</td>" for c in columns) + "</tr>")
    parts.append("</table>")
    parts.append(
        "<p class='key'>Error maps:"
        + "".join(f"<span style='background:rgb({c[0]},{c[1]},{c[2]})'></span>{label}"
                  for c, label in [(TP_COLOUR, "correct"), (FP_COLOUR, "false positive"),
                                   (FN_COLOUR, "false negative (missed)")])
        + " (boundaries, for region methods against BSDS annotators)</p>"
    )
    for stem in dict.fromkeys(r.image for r in runs):
        parts.append(f"<h2>{html.escape(stem)}</h2><div class='row'>")
        if images and stem in images:
            uri = png_data_uri(to_display(images[stem]))
            parts.append(f"<figure><img src='{uri}' alt='{html.escape(stem)}'>"
                         "<figcaption>input</figcaption></figure>")
        for run in (r for r in runs if r.image == stem):
            if run.error is not None:
                parts.append(f"<figure><figcaption>{html.escape(run.method)} failed: "
                             f"{html.escape(run.error)}</figcaption></figure>")
                continue
            caption = html.escape(run.method) + f" · {run.seconds:.3f} s"
            if run.scores:
                shown = list(run.scores.items())[:4]
                caption += "<br>" + ", ".join(f"{html.escape(k)} {v:.3f}" for k, v in shown)
            parts.append(f"<figure><img src='{png_data_uri(run.overlay)}' alt='{html.escape(run.method)}'>"
                         f"<figcaption>{caption}</figcaption></figure>")
            if run.error_map is not None:
                parts.append(f"<figure><img src='{png_data_uri(run.error_map)}' alt='errors'>"
                             f"<figcaption>{html.escape(run.method)}: errors</figcaption></figure>")
            if run.histogram is not None:
                parts.append(f"<figure><img src='{png_data_uri(run.histogram)}' alt='histogram'>"
                             f"<figcaption>{html.escape(run.method)}: histogram and chosen threshold"
                             "</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>")
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
