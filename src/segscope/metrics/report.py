"""The report every evaluation returns: headline scores, per-class and per-image tables."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes

__all__ = ["MetricReport"]


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "-" if not math.isfinite(float(value)) else f"{float(value):.4f}"
    return str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain-text table with aligned columns."""
    if not rows:
        return ""
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        padded = [v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(padded))
    return "\n".join(lines)


@dataclass
class MetricReport:
    """Scores of one evaluation.

    Attributes
    ----------
    task : str
        ``semantic``, ``instance``, ``panoptic`` or ``regions``.
    scores : dict
        Headline figures (for example ``miou`` or ``AP``); NaN where undefined.
    per_class : dict
        Per class name, its figures (semantic and panoptic).
    per_image : list of dict
        One row per image, with its ``name`` when one was given.
    settings : dict
        How the figures were reduced (aggregation, ignore index, thresholds).
    confusion : ndarray, optional
        Semantic: the pooled confusion matrix (truth rows, prediction columns).
    """

    task: str
    scores: dict[str, float]
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    confusion: np.ndarray | None = None

    def __getitem__(self, key: str) -> float:
        return self.scores[key]

    def to_dict(self) -> dict[str, Any]:
        return _plain(
            {
                "task": self.task,
                "scores": self.scores,
                "per_class": self.per_class,
                "per_image": self.per_image,
                "settings": self.settings,
                **({"confusion": self.confusion} if self.confusion is not None else {}),
            }
        )

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as JSON (NaN written as null); also written atomically to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_bytes(path, (text + "\n").encode())
        return text

    def table(self) -> str:
        parts = [f"{self.task} evaluation of {len(self.per_image)} image(s)"]
        settings = ", ".join(f"{k}={v}" for k, v in self.settings.items() if v is not None)
        if settings:
            parts[0] += f" ({settings})"
        parts.append(format_table([{"metric": k, "value": v} for k, v in self.scores.items()]))
        if self.per_class:
            rows = [{"class": name, **values} for name, values in self.per_class.items()]
            parts.append(format_table(rows))
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.table()
