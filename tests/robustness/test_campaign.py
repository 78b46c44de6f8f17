"""The robustness campaign (campaign.py) runs whole: every corpus file through every reader and
command, every hostile option value; all handled cleanly, and docs/robustness.md publishes the
very tables it produces."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the campaign's predict and train targets need segscope[deep]")
pytest.importorskip("zarr", reason="the campaign's tiled targets need segscope[scale]")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from campaign import CLEAN, END, START, markdown, run_campaign

DOCS = Path(__file__).resolve().parents[2] / "docs" / "robustness.md"


def test_every_input_is_handled_cleanly_and_the_published_tables_match(tmp_path):
    table = run_campaign(tmp_path)
    defects = [(kind, name, target, verdict) for kind, rows in table.items() for name, verdicts in rows
               for target, verdict in verdicts.items() if verdict not in CLEAN]
    assert not defects, defects
    assert sum(len(rows) for rows in table.values()) >= 130
    published = DOCS.read_text().split(START)[1].split(END)[0].strip()
    assert published == markdown(table).strip(), \
        "docs/robustness.md is stale: python tests/robustness/campaign.py --docs docs/robustness.md"
