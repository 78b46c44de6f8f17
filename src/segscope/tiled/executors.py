"""Where tiles run: in this process, on a local Dask cluster, or on an existing Dask cluster.

One function, :func:`open_executor`, picks from two arguments that cannot conflict: ``scheduler``
(the address of a running ``dask.distributed`` scheduler) or ``workers`` (how many local worker
processes; 1 runs everything in this process, with no cluster at all).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Executor", "Progress", "open_executor"]

Progress = bool | Callable[[str, int, int], None]
"""Progress of a pass: True shows bars on a terminal, False nothing; a callable is told
``(description, done, total)`` as the pass starts and after each item (the web app's display)."""


class _Report:
    """A tqdm bar, or a callback standing in for one."""

    def __init__(self, progress: Progress, total: int, desc: str, unit: str) -> None:
        from tqdm import tqdm

        self.callback = progress if callable(progress) else None
        self.done, self.total, self.desc = 0, total, desc
        self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                        disable=None if progress is True else True)
        if self.callback is not None:
            self.callback(desc, 0, total)

    def update(self) -> None:
        self.done += 1
        self.bar.update()
        if self.callback is not None:
            self.callback(self.desc, self.done, self.total)

    def __enter__(self) -> _Report:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


class Executor:
    """Runs ``fn(item)`` for every item and yields the results as they finish."""

    description = "this process"

    def map(self, fn: Callable[..., Any], items: Iterable[Any], *, desc: str = "", progress: Progress = True,
            unit: str = "tile") -> Iterator[Any]:
        items = list(items)
        with _Report(progress, len(items), desc, unit) as bar:
            for item in items:
                yield fn(item)
                bar.update()

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskExecutor(Executor):
    """Tiles as tasks of a ``dask.distributed`` client; results come back in completion order."""

    def __init__(self, client: Any, cluster: Any | None, description: str) -> None:
        self.client = client
        self.cluster = cluster
        self.description = description

    def map(self, fn: Callable[..., Any], items: Iterable[Any], *, desc: str = "", progress: Progress = True,
            unit: str = "tile") -> Iterator[Any]:
        from distributed import as_completed

        items = list(items)
        if not items:
            return
        futures = self.client.map(fn, items, pure=False)
        try:
            with _Report(progress, len(items), desc, unit) as bar:
                for future in as_completed(futures):
                    yield future.result()
                    bar.update()
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_executor(*, workers: int | None = None, scheduler: str | None = None) -> Executor:
    """An executor for ``workers`` local processes, or for the cluster at ``scheduler``.

    Parameters
    ----------
    workers : int or None
        Local worker processes (one thread each). None takes one per CPU core; 1 runs in this
        process without starting a cluster.
    scheduler : str or None
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``). The workers
        there must see the same files (input and output) at the same paths.
    """
    if scheduler is not None and workers is not None:
        raise ValueError("give either scheduler (an existing cluster) or workers (a local one), not both")
    if scheduler is None:
        workers = os.cpu_count() or 1 if workers is None else workers
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if workers == 1:
            return Executor()
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError("parallel and cluster runs need segscope[scale] (dask, distributed, zarr): "
                          f"{exc}") from exc
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
        count = len(client.scheduler_info().get("workers", {}))
        return DaskExecutor(client, None, f"Dask cluster {scheduler} ({count} workers)")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return DaskExecutor(Client(cluster), cluster, f"local Dask cluster ({workers} processes)")
