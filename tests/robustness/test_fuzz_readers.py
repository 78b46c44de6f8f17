"""Every reader, fed mutated files: it returns a result or raises a segscope error naming the file,
never anything else, and never hangs.

``make test`` runs a few examples per reader; ``make fuzz`` runs many more
(``SEGSCOPE_FUZZ_EXAMPLES``, default 10 here). Seeds are valid files made on the spot; hypothesis
mutates them (flipped, inserted and deleted bytes, truncation) and shrinks any failure.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segscope
from segscope import io as sio

EXAMPLES = int(os.environ.get("SEGSCOPE_FUZZ_EXAMPLES", "10"))
ALLOWED = (ValueError, FileNotFoundError, IsADirectoryError, TypeError)
"""What a reader may raise for a bad file (ImageReadError is a ValueError)."""


def _seed_files(folder: Path) -> dict[str, tuple[Path, Callable[[Path], object]]]:
    image = (np.arange(24 * 32).reshape(24, 32) % 200).astype(np.uint8)
    labels = np.zeros((24, 32), np.uint8)
    labels[4:12, 5:20] = 1
    labels[14:20, 2:9] = 2
    seg = segscope.Segmentation.from_labels(labels.astype(np.int32), kind="instance",
                                            categories={1: 0, 2: 0}, class_names=("cell",))
    sio.imwrite(folder / "a.png", image)
    sio.imwrite(folder / "a.tif", np.dstack([image, image, image]))
    sio.imwrite(folder / "a.jpg", image)
    sio.write_label_png(folder / "labels.png", labels)
    sio.write_coco(folder / "coco.json", {"a.png": seg})
    sio.write_coco_panoptic(folder / "panoptic.json", [sio.PanopticRecord(1, "a.png", seg.to_panoptic())])
    sio.write_yolo(folder / "a.txt", seg)
    sio.save_segmentation(seg, folder / "a.npz")
    from scipy.io import savemat

    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = {"Segmentation": labels.astype(np.uint16) + 1, "Boundaries": labels > 0}
    savemat(folder / "gt.mat", {"groundTruth": cell})
    return {
        "png": (folder / "a.png", sio.imread),
        "tiff": (folder / "a.tif", sio.imread),
        "jpeg": (folder / "a.jpg", sio.imread),
        "label png": (folder / "labels.png", sio.read_label_png),
        "coco": (folder / "coco.json", sio.read_coco),
        "coco panoptic": (folder / "panoptic.json", sio.read_coco_panoptic),
        "yolo": (folder / "a.txt", lambda p: sio.read_yolo(p, (24, 32))),
        "npz": (folder / "a.npz", sio.load_segmentation),
        "bsds": (folder / "gt.mat", sio.read_bsds_groundtruth),
    }


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete" and out:
            del out[at:at + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del out[at:]
        elif kind == "splice":
            out[at:at + 4] = draw(st.sampled_from([b"\xff" * 4, b"\x00" * 4, b"\x7f\xff\xff\xff"]))
    return bytes(out)


def _refusal(read: Callable[[Path], object], path: Path) -> Exception | None:
    """None if ``read`` reads the file; the error if it refuses it as documented (any other
    exception propagates and fails the test)."""
    try:
        read(path)
    except ALLOWED as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return _seed_files(tmp_path_factory.mktemp("seeds"))


READERS = ["png", "tiff", "jpeg", "label png", "coco", "coco panoptic", "yolo", "npz", "bsds"]


@pytest.mark.parametrize("reader", READERS)
def test_a_reader_survives_mutated_files(reader, seeds, tmp_path_factory):
    seed, read = seeds[reader]
    original = seed.read_bytes()
    folder = seed.parent

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutations(original))
    def run(mutated: bytes) -> None:
        seed.write_bytes(mutated)
        try:
            refused = _refusal(read, seed)
        finally:
            seed.write_bytes(original)
        assert refused is None or str(folder) in str(refused), f"{type(refused).__name__}: {refused}"

    run()


def test_a_checkpoint_reader_survives_mutated_files(tmp_path):
    torch = pytest.importorskip("torch")
    from segscope.checkpoint import load_checkpoint

    path = tmp_path / "c.pt"
    buffer = io.BytesIO()
    torch.save({"format": "segscope.checkpoint", "version": 2, "task": "semantic",
                "model": {"name": "unet", "options": {}}, "state_dict": {"w": torch.zeros(3)},
                "class_names": ["a"], "inputs": {"mean": [0.0], "std": [1.0]}, "labels": {},
                "scores": {}, "recipe": json.loads("{}")}, buffer)
    original = buffer.getvalue()

    @settings(max_examples=EXAMPLES, deadline=None, database=None)
    @given(mutations(original))
    def run(mutated: bytes) -> None:
        path.write_bytes(mutated)
        refused = _refusal(load_checkpoint, path)
        assert refused is None or str(path) in str(refused), f"{type(refused).__name__}: {refused}"

    run()
