"""The web app: a Starlette application over the registries, the readers and the writers.

Routes (JSON unless said otherwise):

* ``GET /``: the page (HTML, CSS and JS from the package; nothing from elsewhere);
* ``GET /api/catalogue``: methods, zoo models and prompted methods with their form fields, the
  download formats and this server's limits;
* ``GET /api/images``; ``GET /api/image?name=``: the image as a PNG for display;
  ``POST /api/upload`` (multipart ``file``);
* ``POST /api/run`` ``{image, method, options}``; ``POST /api/prompt`` ``{image, method, options,
  points, boxes, strokes, mask}``: a job; ``GET /api/jobs/{id}``: its state, progress, legend and
  scores; ``GET /api/jobs/{id}/overlay.png``, ``/errors.png``, ``/download/{format}``.

Safe by default: it listens on 127.0.0.1 (:func:`serve`); requests are refused past a size
(``max_request_bytes``) and hosts other than the ones served are refused (DNS rebinding); images
are opened only under the folder (:class:`~segscope.serve.library.Library`) and decoded within
the readers' bound; jobs run in killable worker processes, a few at a time, each within a time
limit (:class:`~segscope.serve.jobs.Runner`); nothing is unpickled; every error is a JSON
``{"error": message}`` the page shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request as HttpRequest
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..io.formats import get_format, writers
from ..result import Segmentation
from ..viz.pictures import colorize, label_colors, to_display
from .catalogue import Offer, catalogue
from .jobs import Busy, Job, Request, Runner
from .library import Library, NotFound

__all__ = ["Settings", "create_app"]

STATIC = Path(__file__).resolve().parent / "static"
DISPLAY_SIDE = 4096
"""Pictures sent to the page are subsampled to at most this many pixels a side (the page maps
clicks back to the image's own pixels; results keep full resolution)."""
MAX_POINTS, MAX_BOXES, MAX_STROKES, MAX_STROKE_POINTS, MAX_RADIUS = 500, 50, 200, 5000, 64


@dataclass(frozen=True)
class Settings:
    """How the app serves: its folder, truths, workers and limits."""

    folder: Path
    truth: Path | None = None
    """A folder (or COCO JSON) of truths paired with the images by file stem; by default the
    folder's ``truth`` or ``labels`` sub-folder when there is one."""
    task: str | None = None
    """The task the truths are read and scored as (default: what they imply)."""
    workers: int = 2
    timeout: float = 120.0
    """Seconds a job may run before its worker is stopped."""
    queue: int = 8
    max_request_bytes: int = 64 * 2**20
    tile_pixels: int = 2048 * 2048
    """Images with more pixels go through the tiled engine, for methods that declare their tiling."""
    tile: int = 1024
    """The tiled engine's tile side."""
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _BodyTooLargeError(RuntimeError):
    """Raised while a streamed body passes the limit; answered with a 413."""


class LimitRequestSize:
    """Refuse requests whose body exceeds ``limit`` bytes (declared or streamed) with a 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request is larger than this server's limit of {self.limit / 2**20:g} MB"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _error(413, message)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            got = await receive()
            if got["type"] == "http.request":
                seen += len(got.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLargeError
            return got

        async def watched(sent: Message) -> None:
            nonlocal started
            started = started or sent["type"] == "http.response.start"
            await send(sent)

        try:
            await self.app(scope, counted, watched)
        except _BodyTooLargeError:
            if not started:
                await _error(413, message)(scope, receive, send)


class SecurityHeaders:
    """Same-origin everything (no CDN, no request leaves the machine), no sniffing, no referrer."""

    POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
              "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [(b"content-security-policy", self.POLICY.encode()),
                                       (b"x-content-type-options", b"nosniff"),
                                       (b"referrer-policy", b"no-referrer")]
            await send(message)

        await self.app(scope, receive, with_headers)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _for_display(array: np.ndarray) -> np.ndarray:
    """Every n-th row and column, so that the longer side is at most :data:`DISPLAY_SIDE`."""
    step = -(-max(array.shape[:2]) // DISPLAY_SIDE)
    return np.ascontiguousarray(array[::step, ::step]) if step > 1 else array


def _class_colours(seg: Segmentation) -> np.ndarray | None:
    """(classes, 3) uint8 colours of a semantic result's classes: those its zoo card declares
    when a zoo model made it, else segscope's stable palette (class c in colour c + 1); ``None``
    for other kinds."""
    if seg.kind != "semantic" or not seg.class_names:
        return None
    from ..zoo import zoo_cards

    classes = max(len(seg.class_names), int(np.max(seg.categories, initial=-1)) + 1)
    card = zoo_cards().get(seg.provenance.method if seg.provenance else "")
    if card is not None and card.class_names == tuple(seg.class_names) and classes == len(card.colours):
        return np.array(card.colours, np.uint8)
    return label_colors(classes + 1)[1:]


def _legend(seg: Segmentation) -> list[dict[str, Any]]:
    """What the overlay's colours mean: a semantic result's classes, else the objects' count."""
    colours = _class_colours(seg)
    if colours is not None:
        names = seg.class_names or ()
        present = sorted({int(c) for c in np.unique(seg.categories)})
        return [{"name": names[c] if c < len(names) else f"class {c}",
                 "colour": "#" + "".join(f"{int(v):02x}" for v in colours[c])} for c in present]
    noun = {"instance": "objects", "panoptic": "segments", "regions": "regions"}.get(seg.kind, "segments")
    return [{"name": f"{len(seg)} {noun}", "colour": None}]


def _overlay_rgba(seg: Segmentation) -> np.ndarray:
    """The result's colours where it has segments (outlines darker), transparent elsewhere; the page
    sets the opacity. A semantic result's classes take their legend's colours."""
    from skimage.segmentation import find_boundaries

    labels = seg.labels
    table = _class_colours(seg)
    colours = colorize(seg) if table is None else table[seg.class_map(void=0)]
    edge = find_boundaries(labels, mode="inner")
    colours[edge] = (colours[edge] * 0.55).astype(np.uint8)
    alpha = np.where(labels > 0, 255, 0).astype(np.uint8)
    return _for_display(np.dstack([colours, alpha]))


def _number(value: Any, what: str, low: float, high: float) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < high:
        raise ValueError(f"{what}: expected a number in [{low:g}, {high:g}), got {value!r}")
    return int(value)


def _rows(body: dict[str, Any], key: str, limit: int, spec: str,
          fields: list[tuple[str, float, float]]) -> list[tuple[int, ...]]:
    """``body[key]``: at most ``limit`` lists, each of one number per field within its bounds."""
    rows = body.get(key) or []
    if not isinstance(rows, list) or len(rows) > limit or not all(
            isinstance(r, list) and len(r) == len(fields) for r in rows):
        raise ValueError(f"{key}: expected a list of at most {limit} {spec}")
    return [tuple(_number(v, what, low, high) for v, (what, low, high) in zip(r, fields, strict=True))
            for r in rows]


def _prompts(body: dict[str, Any], shape: tuple[int, int], mask: np.ndarray | None) -> dict[str, Any]:
    """Points, boxes, painted strokes and a previous result, checked against the image's size."""
    import cv2

    height, width = shape
    prompts: dict[str, Any] = {}
    points = _rows(body, "points", MAX_POINTS, "[row, col, label]",
                   [("point row", 0, height), ("point column", 0, width), ("point label", 0, 1000)])
    if points:
        prompts["points"] = points
    boxes = _rows(body, "boxes", MAX_BOXES, "[row0, col0, row1, col1, object]",
                  [("box row", 0, height), ("box column", 0, width), ("box row", 1, height + 1),
                   ("box column", 1, width + 1), ("box object", 1, 1000)])
    if boxes:
        prompts["boxes"] = boxes
    strokes = body.get("strokes") or []
    if not isinstance(strokes, list) or len(strokes) > MAX_STROKES:
        raise ValueError(f"strokes: expected a list of at most {MAX_STROKES} strokes")
    if strokes:
        painted = np.zeros(shape, np.int32)
        for stroke in strokes:
            if not isinstance(stroke, dict) or not isinstance(stroke.get("points"), list) \
                    or not 0 < len(stroke["points"]) <= MAX_STROKE_POINTS:
                raise ValueError("strokes: each is {label, radius, points} with 1 to "
                                 f"{MAX_STROKE_POINTS} points")
            label = _number(stroke.get("label"), "stroke label", -1, 1000)
            if label == 0:
                raise ValueError("strokes: label k >= 1 paints object k, -1 erases (paints background)")
            radius = _number(stroke.get("radius", 4), "stroke radius", 1, MAX_RADIUS + 1)
            line = np.array([[_number(p[1], "stroke column", 0, width),
                              _number(p[0], "stroke row", 0, height)]
                             for p in stroke["points"] if isinstance(p, list) and len(p) == 2], np.int32)
            if len(line) != len(stroke["points"]):
                raise ValueError("strokes: each point is [row, col]")
            mark = np.zeros(shape, np.uint8)
            cv2.polylines(mark, [line.reshape(-1, 1, 2)], False, 1, thickness=2 * radius + 1)
            for col, row in line[:1]:
                cv2.circle(mark, (int(col), int(row)), radius, 1, -1)
            painted[mark > 0] = label
        prompts["scribbles"] = painted
    if mask is not None:
        prompts["mask"] = mask
    if not prompts:
        raise ValueError("no prompts: click on an object, draw a box or paint a stroke")
    return prompts


def _write(seg: Segmentation, fmt_name: str, stem: str) -> tuple[bytes, str]:
    """The result written in a registered format: one file's bytes and name, or a zip of several."""
    fmt = get_format(fmt_name)
    if fmt not in writers():
        raise ValueError(f"format {fmt_name!r} cannot write results")
    with tempfile.TemporaryDirectory(prefix="segscope-download-") as work:
        folder = Path(work)
        if fmt.write_file is not None:
            fmt.write_file(seg, folder, stem)
        elif fmt.write_all is not None:
            fmt.write_all([(f"{stem}.png", seg)], folder)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if len(files) == 1:
            return files[0].read_bytes(), files[0].name
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(folder).as_posix())
        return buffer.getvalue(), f"{stem}_{fmt.name}.zip"


def _read_truths(settings: Settings) -> tuple[dict[str, Any], Path | None, str | None]:
    truth = settings.truth
    if truth is None:
        truth = next((settings.folder / n for n in ("truth", "labels")
                      if (settings.folder / n).is_dir()), None)
    if truth is None:
        return {}, None, settings.task
    from ..io.datasets import read_annotations

    task, truths = read_annotations(truth, task=settings.task)
    return truths, truth, settings.task or task


def create_app(settings: Settings) -> Starlette:
    """The web app for ``settings`` (run it with uvicorn, or :func:`serve`)."""
    truths, truth_dir, task = _read_truths(settings)
    library = Library(settings.folder, truths=truths, skip=truth_dir)
    runner = Runner(workers=settings.workers, timeout=settings.timeout, queue=settings.queue)
    offers: dict[str, Offer] = {o.name: o for o in catalogue()}

    def job_or_404(job_id: str) -> Job:
        job = runner.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (finished jobs are kept for a while only)")
        return job

    def done_or_409(job_id: str) -> Segmentation:
        job = job_or_404(job_id)
        if job.outcome is None:
            raise HTTPException(409, f"job {job_id} has no result ({job.state})")
        return job.outcome.result

    async def body_json(request: HttpRequest) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HTTPException(400, "the request is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPException(400, "the request must be a JSON object")
        return body

    def image_of(name: Any) -> np.ndarray:
        if not isinstance(name, str):
            raise HTTPException(400, "name an image")
        try:
            return library.read(name)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except (OSError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None

    def options_of(body: dict[str, Any]) -> dict[str, str]:
        options = body.get("options") or {}
        if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in options.items()):
            raise HTTPException(400, "options: expected {name: text}")
        return options

    def offer_of(body: dict[str, Any], group: str | None) -> Offer:
        name = body.get("method")
        offer = offers.get(name) if isinstance(name, str) else None
        if offer is None:
            raise HTTPException(400, f"unknown method {name!r}")
        if (group == "prompted") != (offer.group == "prompted"):
            raise HTTPException(400, f"{name} is a prompted method: point at objects to run it"
                                if offer.group == "prompted" else f"{name} does not take prompts")
        return offer

    def submit(request: Request, image: str) -> JSONResponse:
        try:
            job = runner.submit(request, image=image)
        except Busy as exc:
            return _error(503, str(exc))
        return JSONResponse({"job": job.id})

    async def index(request: HttpRequest) -> Response:
        return FileResponse(STATIC / "index.html")

    async def get_catalogue(request: HttpRequest) -> Response:
        formats = [{"name": f.name, "help": f.help} for f in writers()
                   if f.write_file is not None or f.write_all is not None]
        return JSONResponse({
            "offers": [o.to_json() for o in offers.values()],
            "formats": formats,
            "limits": {"timeout": settings.timeout, "max_request_bytes": settings.max_request_bytes,
                       "workers": settings.workers, "tile_pixels": settings.tile_pixels},
            "truth": str(truth_dir.name) if truth_dir is not None else None,
        })

    async def list_images(request: HttpRequest) -> Response:
        names = library.names()
        return JSONResponse({"images": [{"name": n, "truth": library.truth(n) is not None} for n in names]})

    async def show_image(request: HttpRequest) -> Response:
        image = image_of(request.query_params.get("name"))
        return Response(_png(_for_display(to_display(image))), media_type="image/png",
                        headers={"cache-control": "private, max-age=600",
                                 "x-image-size": f"{image.shape[0]},{image.shape[1]}"})

    async def upload(request: HttpRequest) -> Response:
        async with request.form(max_files=1, max_fields=4) as form:
            item = form.get("file")
            if item is None or isinstance(item, str):
                raise HTTPException(400, "send the image as the multipart field 'file'")
            data = await item.read()
            filename = item.filename or "upload"
        try:
            name = library.upload(filename, data)
        except (OSError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None
        height, width = library.read(name).shape[:2]
        return JSONResponse({"name": name, "width": width, "height": height})

    async def run(request: HttpRequest) -> Response:
        body = await body_json(request)
        offer = offer_of(body, None)
        image = image_of(body.get("image"))
        tiled = offer.tiles and image.shape[0] * image.shape[1] > settings.tile_pixels
        return submit(Request(image, offer.name, options_of(body), tile=settings.tile if tiled else None,
                              truth=library.truth(body["image"]), task=task), body["image"])

    async def prompt(request: HttpRequest) -> Response:
        body = await body_json(request)
        offer = offer_of(body, "prompted")
        image = image_of(body.get("image"))
        mask = None
        if isinstance(body.get("mask"), str):  # a previous job's result, to correct
            if job_or_404(body["mask"]).image != body["image"]:
                raise HTTPException(400, "the mask to correct belongs to another image")
            mask = done_or_409(body["mask"]).labels
        try:
            prompts = _prompts(body, image.shape[:2], mask)
        except (ValueError, TypeError, IndexError) as exc:
            raise HTTPException(400, str(exc)) from None
        # Scored against no truth: a few objects pointed at are not the whole annotation.
        return submit(Request(image, offer.name, options_of(body), prompts=prompts), body["image"])

    async def job_state(request: HttpRequest) -> Response:
        job = job_or_404(request.path_params["job"])
        out: dict[str, Any] = {"id": job.id, "state": job.state, "image": job.image, "method": job.method,
                               "step": job.step, "done": job.done, "total": job.total,
                               "seconds": round(job.seconds, 3), "error": job.error}
        if job.outcome is not None:
            seg = job.outcome.result
            base = f"/api/jobs/{job.id}"
            out.update({
                "kind": seg.kind, "segments": len(seg), "size": list(seg.labels.shape[:2]),
                "legend": _legend(seg), "scores": job.outcome.scores,
                "overlay": f"{base}/overlay.png",
                "errors": f"{base}/errors.png" if job.outcome.error_map is not None else None,
                "downloads": {f.name: f"{base}/download/{f.name}" for f in writers()},
            })
        return JSONResponse(out)

    async def overlay_png(request: HttpRequest) -> Response:
        return Response(_png(_overlay_rgba(done_or_409(request.path_params["job"]))), media_type="image/png")

    async def errors_png(request: HttpRequest) -> Response:
        job = job_or_404(request.path_params["job"])
        if job.outcome is None or job.outcome.error_map is None:
            raise HTTPException(404, "this job has no error map (its image has no truth)")
        return Response(_png(_for_display(job.outcome.error_map)), media_type="image/png")

    async def download(request: HttpRequest) -> Response:
        job = job_or_404(request.path_params["job"])
        seg = done_or_409(job.id)
        stem = f"{Path(job.image).stem}_{job.method}"
        try:
            data, filename = _write(seg, request.path_params["format"], stem)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return Response(data, media_type="application/octet-stream",
                        headers={"content-disposition": f'attachment; filename="{filename}"'})

    async def http_error(request: HttpRequest, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            return _error(exc.status_code, str(exc.detail))
        return _error(500, "internal error")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            runner.close()

    routes = [
        Route("/", index),
        Route("/api/catalogue", get_catalogue),
        Route("/api/images", list_images),
        Route("/api/image", show_image),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/run", run, methods=["POST"]),
        Route("/api/prompt", prompt, methods=["POST"]),
        Route("/api/jobs/{job}", job_state),
        Route("/api/jobs/{job}/overlay.png", overlay_png),
        Route("/api/jobs/{job}/errors.png", errors_png),
        Route("/api/jobs/{job}/download/{format}", download),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.hosts)),
        Middleware(SecurityHeaders),
        Middleware(LimitRequestSize, limit=settings.max_request_bytes),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error})
    app.state.runner = runner
    app.state.library = library
    return app


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    hosts = settings.hosts if host in settings.hosts else (*settings.hosts, host)
    if host in ("0.0.0.0", "::"):
        hosts = ("*",)
    app = create_app(dataclasses.replace(settings, hosts=hosts))
    print(f"segscope serve: http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/ "
          f"(folder {settings.folder}; Ctrl+C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
