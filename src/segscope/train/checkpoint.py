"""Checkpoints: everything needed to rebuild, run and resume a model, loaded without running code."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..result import atomic_write_bytes

__all__ = ["FORMAT", "capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]

FORMAT = "segscope.checkpoint"
VERSION = 1
REQUIRED = ("model", "state_dict", "class_names", "normalisation")


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a temporary file, then a rename)."""
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"a checkpoint needs {missing}")
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``: tensors and plain data only, never code."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        # mmap: tensors stay in the file until used, so reading a checkpoint for inference does
        # not load the optimizer state into memory.
        data = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many types for a bad or hostile file
        raise ValueError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a segscope checkpoint (no '{FORMAT}' header)")
    if data.get("version", 0) > VERSION:
        raise ValueError(f"{path}: checkpoint version {data['version']} is newer than this segscope reads")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks {missing}")
    return data


def capture_rng() -> dict[str, Any]:
    """Every random state a training run draws from, in plain types."""
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the global state others draw from)
    state: dict[str, Any] = {
        "python": random.getstate(),
        # numpy arrays are not allowed in a weights-only file: the key travels as a tensor.
        "numpy": {
            **numpy_state,
            "state": {
                "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
                "pos": int(numpy_state["state"]["pos"]),
            },
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(state["numpy"])
    inner = numpy_state["state"]
    numpy_state["state"] = {"key": inner["key"].numpy().astype(np.uint32), "pos": inner["pos"]}
    np.random.set_state(numpy_state)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
