"""Shared by the deep benchmarks: one training run per process, and the peer as a segscope model."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np


def register_peer() -> None:
    """segmentation_models_pytorch's Unet (ResNet-18 encoder, no pretrained weights) as model
    ``smp_unet``, so that it trains in exactly the same loop, budget and validation as ours."""
    import segmentation_models_pytorch as smp

    from segscope.models import SegmentationModel, register_model
    from segscope.models.base import _MODELS

    class SmpUnet(SegmentationModel):
        size_divisor = 32

        def __init__(self, *, num_classes: int, in_channels: int = 3) -> None:
            super().__init__(num_classes=num_classes, in_channels=in_channels)
            self.net = smp.Unet(
                "resnet18", encoder_weights=None, in_channels=in_channels, classes=num_classes
            )

        def forward_padded(self, images):  # type: ignore[no-untyped-def]
            return self.net(images)

    if "smp_unet" not in _MODELS:
        register_model("smp_unet")(lambda **kw: SmpUnet(**kw))


def run(config_dict: dict[str, Any], result_path: str, throughput_images: list[str]) -> None:
    """Train one model (in its own process), then measure full-resolution throughput; write JSON."""
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    if config_dict["model"]["name"] == "smp_unet":
        register_peer()
    from segscope.train import TrainConfig, train

    config = TrainConfig.from_dict(config_dict)
    result = train(config, progress=False)
    per_second = images_per_second(result.checkpoint, throughput_images)
    best = max((r for r in result.history if r.get("val_miou") is not None), key=lambda r: r["val_miou"])
    out = {
        "model": config.model.name,
        "best_miou": result.best_score,
        "best_epoch": result.best_epoch,
        "epochs": result.epochs,
        "steps": result.steps,
        "train_minutes": result.seconds / 60,
        "images_per_second": per_second,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "best_row": best,
        "checkpoint": str(result.checkpoint),
        "parameters_m": sum(p.numel() for p in segmenter_model_parameters(result.checkpoint)) / 1e6,
    }
    Path(result_path).write_text(json.dumps(out, indent=2))


def images_per_second(checkpoint: str | Path, paths: list[str]) -> float:
    """Whole images (full resolution, no tiling) per second at batch 1, after one warm-up."""
    from segscope import imread
    from segscope.infer import Segmenter

    segmenter = Segmenter.from_checkpoint(checkpoint, tile=None)
    images = [imread(p) for p in paths]
    segmenter.probabilities(images[0])
    start = time.perf_counter()
    for image in images:
        segmenter.probabilities(image)
    return len(images) / (time.perf_counter() - start)


def segmenter_model_parameters(checkpoint: Path) -> list[Any]:
    from segscope.train import load_checkpoint

    return [
        v
        for k, v in load_checkpoint(checkpoint).state_dict.items()
        if "running" not in k and "num_batches" not in k
    ]


def run_in_process(
    config_dict: dict[str, Any], result_path: Path, extra: list[Any], *, target: Any = None
) -> dict[str, Any]:
    """Run ``target(config_dict, result_path, *extra)`` (default :func:`run`, whose ``extra`` is the
    throughput images) in a fresh process, so peak memory is the run's own; read its result."""
    import multiprocessing as mp

    context = mp.get_context("spawn")
    process = context.Process(target=target or run, args=(config_dict, str(result_path), *extra))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(
            f"{config_dict['model']['name']}: training process failed with exit code {process.exitcode}"
        )
    return json.loads(result_path.read_text())


def colour_panel(rows: list[list[np.ndarray]], path: Path) -> None:
    """Save rows of RGB pictures as one PNG grid."""
    from segscope.io import imwrite

    height = max(p.shape[0] for row in rows for p in row)
    lines = []
    for row in rows:
        padded = [np.pad(p, ((0, height - p.shape[0]), (0, 4), (0, 0)), constant_values=255) for p in row]
        lines.append(np.concatenate(padded, axis=1))
    width = max(line.shape[1] for line in lines)
    lines = [
        np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines
    ]
    imwrite(path, np.concatenate(lines, axis=0))
