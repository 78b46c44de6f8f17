"""Shared fixtures: the real datasets beside the project, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real datasets not found at {DATA} (a fresh clone has no ../shared/data)")
    return DATA


@pytest.fixture(scope="session")
def demo_gallery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make demo``'s gallery, made once per session (its test and the browser tests open it)."""
    from segscope import demo

    return demo.run(tmp_path_factory.mktemp("demo"))
