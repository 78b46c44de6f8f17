"""Training under torchrun: two CPU processes (gloo) share each epoch and average gradients."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import segscope
from segscope.train.distributed import Distributed, distributed_from_environment


def test_without_torchrun_nothing_is_distributed(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    world = distributed_from_environment()
    assert not world.active and world.main and world.device("cpu") == torch.device("cpu")
    assert world.agree(0.25, torch.device("cpu")) == 0.25  # no collective without a group
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match="RANK=5, WORLD_SIZE=2"):
        distributed_from_environment()
    with pytest.raises(ValueError, match="LOCAL_RANK"):
        Distributed(1, 1, 2).device("cuda:3")


@pytest.mark.slow
def test_torchrun_two_processes_share_each_epoch(toy_dataset, tmp_path):
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "segscope", "train", "--model", "unet", "--option", "base_width=4", "--option", "depth=2",
        "--images", str(toy_dataset / "train" / "images"),
        "--labels", str(toy_dataset / "train" / "labels"),
        "--val-images", str(toy_dataset / "val" / "images"),
        "--val-labels", str(toy_dataset / "val" / "labels"),
        "--num-classes", "2", "--ignore", "255", "--crop", "32", "--batch-size", "2", "--epochs", "2",
        "-o", str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    history = json.loads((out / "log.json").read_text())
    # 10 training images: 5 per process, 2 full batches of 2 each, so 2 steps per epoch (not 5).
    assert [row["step"] for row in history] == [2, 4]
    assert all("val_miou" in row for row in history)  # rank 0 validated every epoch
    image = segscope.imread(toy_dataset / "val" / "images" / "img0.png")
    assert segscope.segment(image, str(out / "best.pt")).class_map().shape == (48, 64)
