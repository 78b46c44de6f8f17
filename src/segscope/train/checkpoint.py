"""The random state a training run resumes with; checkpoints themselves are :mod:`segscope.checkpoint`."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..checkpoint import FORMAT, Checkpoint, load_checkpoint, save_checkpoint

__all__ = ["FORMAT", "Checkpoint", "capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]

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
