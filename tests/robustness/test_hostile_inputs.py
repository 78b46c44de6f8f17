"""Every hostile input of the table fails as stated: a clear error naming the problem, in bounded
time and memory (see docs/robustness.md)."""

from __future__ import annotations

import resource
import sys
import time

import pytest

from segscope.io import ImageReadError

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from hostile import HOSTILE

pytest.importorskip("zarr", reason="the tiled entries need segscope[scale]")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_input_is_refused_cleanly(name, tmp_path):
    error, words, make = HOSTILE[name]
    call = make(tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    kind = {"ImageReadError": ImageReadError, "ValueError": ValueError, "TypeError": TypeError}[error]
    with pytest.raises(kind) as caught:
        call()
    assert time.perf_counter() - start < 20, "refused, but slowly"
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 500, f"refused, but only after allocating {grown_mib:.0f} MiB"
    message = str(caught.value)
    assert words in message, f"{name}: {message!r} does not say {words!r}"
    if any(tmp_path.iterdir()):  # a file was involved: the message names it
        assert str(tmp_path) in message, f"{name}: {message!r} names no file"


def test_the_published_table_lists_every_input():
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "robustness.md").read_text()
    for name, (error, words, _) in HOSTILE.items():
        assert f"| {name} | `{error}` | {words} |" in page, name
