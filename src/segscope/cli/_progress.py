"""Progress bars for long work (tqdm on stderr, hidden when stderr is not a terminal)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, desc: str, unit: str = "item") -> Iterator[T]:
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=unit, disable=None, dynamic_ncols=True)
