"""Jobs of the web app, run in worker processes that can be stopped.

A method can run for minutes and cannot be interrupted from inside, so each job runs in one of a
fixed number of worker processes (started with ``spawn``; they import segscope once and stay).
That bounds concurrency; a job past its time limit gets its worker killed and replaced, so the
limit really frees the CPU. Jobs beyond the workers wait in a bounded queue; one more is refused
(:class:`Busy`). Workers and the app exchange only their own values (requests, results) over
their pipes; nothing a client sent is ever unpickled.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import pickle
import secrets
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ..result import Segmentation

__all__ = ["Busy", "Job", "Request", "Runner"]


class Busy(RuntimeError):
    """Every worker is busy and the queue is full."""


@dataclass(frozen=True)
class Request:
    """What one job runs: a method (or a prompted method, with ``prompts``) on an image."""

    image: np.ndarray
    method: str
    options: dict[str, str] = field(default_factory=dict)
    """The method's options as typed (converted in the worker, by the method's annotations)."""
    prompts: dict[str, Any] | None = None
    """For a prompted method: points, boxes, scribbles and mask, as :func:`segscope.prompt` takes them."""
    tile: int | None = None
    """Run through the tiled engine in tiles of this side (large images, methods that declare
    their tiling); None runs on the whole image."""
    truth: Any = None
    """The image's truth (an :class:`~segscope.io.formats.Annotation`), to score the result against."""
    task: str | None = None
    """The task the truth is scored as (None: what it implies)."""


@dataclass(frozen=True)
class Outcome:
    """A finished job's result, and its scores and error map when the image has a truth."""

    result: Segmentation
    scores: dict[str, float] = field(default_factory=dict)
    error_map: np.ndarray | None = None


@dataclass
class Job:
    """One job's state, as the page polls it."""

    id: str
    image: str
    method: str
    state: str = "queued"
    """queued, running, done or failed."""
    step: str = ""
    done: int = 0
    total: int = 0
    started: float | None = None
    finished: float | None = None
    outcome: Outcome | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started


class JobFailed(RuntimeError):
    """The method refused the job; the message says why."""


def _outcome(request: Request, conn: Connection) -> Outcome:
    """Run a request and score it against its truth, if it has one."""
    result = _execute(request, conn)
    if request.truth is None:
        return Outcome(result)
    from segscope.compare import score_against

    scores, error_map = score_against(result, request.truth, task=request.task)
    return Outcome(result, scores, error_map)


def _execute(request: Request, conn: Connection) -> Segmentation:
    """Run a request (in the worker process), telling the app the tiled engine's progress."""
    import segscope

    if request.prompts is not None:
        from segscope.resolve import resolve_prompted

        options = resolve_prompted(request.method).options_from_text(request.options)
        return segscope.prompt(request.image, method=request.method, **request.prompts, **options)
    from segscope.resolve import resolve

    method = resolve(request.method)
    options = method.options_from_text(request.options)
    if request.tile is None:
        return method.segment(request.image, **options)
    import tifffile

    from segscope.tiled import segment_tiled

    def progress(step: str, done: int, total: int) -> None:
        conn.send(("progress", step, done, total))

    with tempfile.TemporaryDirectory(prefix="segscope-serve-") as work:
        source = Path(work) / "image.tif"
        block = max(16, request.tile // 16 * 16)  # TIFF tiles are multiples of 16
        tifffile.imwrite(source, request.image, tile=(block, block))
        result = segment_tiled(source, request.method, Path(work) / "labels.zarr", params=options,
                               tile=request.tile, overlap=128, workers=1, progress=progress)
        return result.to_segmentation()


def _worker(conn: Connection) -> None:
    """A worker process: run requests until the pipe closes. A method's refusal goes back as a
    message; anything else ends the process, which the app reports and replaces."""
    import segscope  # noqa: F401  (imported once, before the first job)

    conn.send(("ready",))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("done", _outcome(request, conn)))
        except (ValueError, TypeError, OSError, MemoryError, RuntimeError, ImportError) as exc:
            conn.send(("error", str(exc)))  # a refusal: its message is meant for the user
        except (LookupError, ArithmeticError, AttributeError, AssertionError) as exc:
            conn.send(("error", f"internal error in {request.method} ({type(exc).__name__}: {exc})"))


class _Worker:
    """One worker process and its end of the pipe."""

    STARTUP = 120.0
    """Seconds a new worker may take to import segscope (not counted in a job's limit)."""

    def __init__(self, context: Any) -> None:
        self.ready = False
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker, args=(child,), daemon=True,
                                       name="segscope-serve-worker")
        self.process.start()
        child.close()

    def run(self, request: Request, job: Job, timeout: float) -> Outcome:
        """Send the request and wait for its result (blocking; the app calls it in a thread)."""
        if not self.ready:
            if not self.conn.poll(self.STARTUP):
                self.stop()
                raise JobFailed(f"the worker did not start within {self.STARTUP:g} s")
            try:
                self.conn.recv()
            except (EOFError, OSError):
                self.stop()
                raise JobFailed("the worker stopped while starting") from None
            self.ready = True
        try:
            self.conn.send(request)
        except OSError:  # the worker died between jobs
            self.stop()
            raise JobFailed("the worker had stopped; try again") from None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise TimeoutError(f"stopped after {timeout:g} s, this server's limit per job")
            if not self.conn.poll(min(left, 0.2)):
                if not self.process.is_alive():
                    raise JobFailed(f"the worker stopped unexpectedly (exit code {self.process.exitcode})")
                continue
            try:
                kind, *payload = self.conn.recv()
            except (EOFError, OSError):
                self.stop()
                raise JobFailed("the worker stopped unexpectedly (out of memory?)") from None
            if kind == "progress":
                job.step, job.done, job.total = payload
            elif kind == "done":
                return payload[0]
            else:
                raise JobFailed(payload[0])

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class Runner:
    """Runs jobs on ``workers`` processes, at most ``queue`` waiting, each within ``timeout`` seconds;
    keeps the last ``keep`` jobs for the page to fetch."""

    def __init__(self, *, workers: int = 2, timeout: float = 120.0, queue: int = 8, keep: int = 32) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.workers, self.timeout, self.queue, self.keep = workers, timeout, queue, keep
        self._context = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: list[_Worker] = []
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = itertools.count(1)

    def start(self) -> None:
        """Start the workers (they import segscope while the page loads)."""
        self._idle = asyncio.Queue()
        for _ in range(self.workers):
            worker = _Worker(self._context)
            self._all.append(worker)
            self._idle.put_nowait(worker)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for worker in self._all:
            worker.stop()
        self._all.clear()

    def pending(self) -> int:
        return sum(job.state in ("queued", "running") for job in self._jobs.values())

    def submit(self, request: Request, *, image: str) -> Job:
        """Queue a job; :class:`Busy` when the workers and the queue are full."""
        if self._idle is None:
            raise RuntimeError("the runner has not been started")
        if self.pending() >= self.workers + self.queue:
            raise Busy(f"the server is busy ({self.pending()} jobs running or waiting); try again shortly")
        job = Job(f"{next(self._counter)}-{secrets.token_hex(4)}", image, request.method)
        self._jobs[job.id] = job
        while len(self._jobs) > self.keep:
            oldest = next(iter(self._jobs))
            if self._jobs[oldest].state in ("queued", "running"):
                break
            del self._jobs[oldest]
        task = asyncio.get_running_loop().create_task(self._run(job, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def wait(self, job: Job) -> Job:
        """Wait until ``job`` has finished (tests and callers that want the result at once)."""
        while job.state in ("queued", "running"):
            await asyncio.sleep(0.05)
        return job

    async def _run(self, job: Job, request: Request) -> None:
        if self._idle is None:
            raise RuntimeError("the runner has not been started")
        worker = await self._idle.get()
        job.state, job.started = "running", time.monotonic()
        try:
            job.outcome = await asyncio.to_thread(worker.run, request, job, self.timeout)
            job.state = "done"
        except (JobFailed, TimeoutError) as exc:
            job.state, job.error = "failed", str(exc)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:  # the pipe broke mid-message
            worker.stop()
            job.state, job.error = "failed", f"the worker's answer was lost ({exc})"
        finally:
            job.finished = time.monotonic()
            if not worker.alive():
                self._all.remove(worker)
                worker.stop()
                worker = _Worker(self._context)
                self._all.append(worker)
            self._idle.put_nowait(worker)
