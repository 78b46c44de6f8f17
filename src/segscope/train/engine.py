"""The training loop: a plain PyTorch loop, validated each epoch with segscope's metrics.

A plain loop rather than a trainer library: what it needs (time budgets, exact resume, the
metric suite, atomic checkpoints) is about as much code as configuring a library to do it, and
it keeps ``segscope[deep]`` to torch and torchvision.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..metrics import Evaluator
from ..models import get_model
from .checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from .data import Augment, LabelledFolder, channel_statistics, pair_by_stem
from .losses import SegmentationLoss, median_frequency_weights

__all__ = ["TrainConfig", "TrainResult", "train"]


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in its checkpoints."""

    model: str
    train_images: str
    train_labels: str
    output: str
    num_classes: int
    model_options: dict[str, Any] = field(default_factory=dict)
    val_images: str | None = None
    val_labels: str | None = None
    holdout: int = 0  # without val folders: the last N training pairs become the validation set
    class_names: list[str] | None = None
    ignore_index: int = 255
    label_map: dict[int, int] | None = None
    crop: int = 256
    scale: tuple[float, float] = (0.5, 2.0)
    hflip: bool = True
    vflip: bool = False
    rotation: float = 0.0
    colour: float = 0.2
    loss: str = "ce"
    class_weights: str | list[float] | None = None  # None, "auto" (median frequency) or values
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "poly"
    warmup_steps: int = 0
    epochs: int = 50
    max_minutes: float | None = None
    batch_size: int = 8
    accumulate: int = 1
    amp: bool = True  # used on CUDA only
    seed: int = 0
    workers: int = 0
    patience: int | None = None
    device: str | None = None

    def validate(self) -> None:
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in ("poly", "cosine", "constant"):
            raise ValueError(f"schedule must be 'poly', 'cosine' or 'constant', got {self.schedule!r}")
        if self.batch_size < 1 or self.accumulate < 1 or self.epochs < 1:
            raise ValueError("batch_size, accumulate and epochs must be positive")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if (self.val_images is None) != (self.val_labels is None):
            raise ValueError("give both val_images and val_labels, or neither")


@dataclass
class TrainResult:
    best_miou: float
    best_epoch: int
    epochs: int
    steps: int
    seconds: float
    history: list[dict[str, Any]]
    checkpoint: Path


def _schedule(
    config: TrainConfig, total_steps: int, elapsed: Callable[[], float] | None = None
) -> Callable[[int], float]:
    """Learning-rate factor per step: warm-up, then poly or cosine decay.

    With a time budget the decay follows the fraction of the budget used (or of the steps, if
    that is further along), so a run cut by the clock still ends at a low learning rate.
    """

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
        if elapsed is not None:
            progress = max(progress, min(1.0, elapsed()))
        if config.schedule == "poly":
            return (1 - progress) ** 0.9
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _label_counts(dataset: LabelledFolder, num_classes: int) -> list[float]:
    counts = np.zeros(num_classes)
    for k in range(len(dataset)):
        _, label = dataset.load(k)
        valid = label[(label >= 0) & (label < num_classes)]
        counts += np.bincount(valid.ravel(), minlength=num_classes)[:num_classes]
    return counts.tolist()


def evaluate_model(
    model: torch.nn.Module,
    dataset: LabelledFolder,
    *,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Whole-image validation: argmax of the logits scored with :class:`segscope.metrics.Evaluator`."""
    evaluator = Evaluator(
        task="semantic", num_classes=num_classes, ignore_index=ignore_index, class_names=class_names
    )
    model.eval()
    with torch.inference_mode():
        for k in range(len(dataset)):
            x, y = dataset[k]
            logits = model(x[None].to(device))
            prediction = logits.argmax(1)[0].cpu().numpy().astype(np.int64)
            evaluator.update(prediction, y.numpy(), name=dataset.pairs[k][0].stem)
    report = evaluator.compute()
    return {
        "miou": report["miou"],
        "pixel_accuracy": report["pixel_accuracy"],
        "per_class_iou": {k: v["iou"] for k, v in report.per_class.items()},
    }


def train(
    config: TrainConfig,
    *,
    resume: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a model as ``config`` says; return the best validation mIoU and where it was saved.

    Writes ``last.pt`` (every epoch, to resume) and ``best.pt`` (best validation mIoU) into
    ``config.output``, and the per-epoch log as ``log.csv`` and ``log.json``. ``resume`` continues
    from a ``last.pt`` exactly where it stopped (same schedule, same data order, same random
    state); ``stop_after_epoch`` ends this call early, as an interruption would, without
    changing the schedule.
    """
    from tqdm.auto import tqdm

    config.validate()
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    random.seed(config.seed)
    np.random.seed(config.seed)  # noqa: NPY002 (libraries draw from the global state)
    torch.manual_seed(config.seed)

    pairs = pair_by_stem(config.train_images, config.train_labels)
    if config.val_images is not None and config.val_labels is not None:
        val_pairs = pair_by_stem(config.val_images, config.val_labels)
    elif config.holdout > 0:
        if config.holdout >= len(pairs):
            raise ValueError(f"holdout {config.holdout} leaves no training images of {len(pairs)}")
        pairs, val_pairs = pairs[: -config.holdout], pairs[-config.holdout :]
    else:
        val_pairs = []
    mean, std = channel_statistics(pairs)
    augment = Augment(
        crop=config.crop,
        scale=(float(config.scale[0]), float(config.scale[1])),
        hflip=config.hflip,
        vflip=config.vflip,
        rotation=config.rotation,
        colour=config.colour,
    )
    train_set = LabelledFolder(
        pairs,
        mean=mean,
        std=std,
        ignore_index=config.ignore_index,
        label_map=config.label_map,
        augment=augment,
    )
    val_set = (
        LabelledFolder(
            val_pairs, mean=mean, std=std, ignore_index=config.ignore_index, label_map=config.label_map
        )
        if val_pairs
        else None
    )
    in_channels = train_set.load(0)[0].shape[-1]

    weights: list[float] | None
    if config.class_weights == "auto":
        weights = median_frequency_weights(_label_counts(train_set, config.num_classes))
    elif isinstance(config.class_weights, str):
        raise ValueError(f"class_weights must be None, 'auto' or a list, got {config.class_weights!r}")
    else:
        weights = config.class_weights
    criterion = SegmentationLoss(
        config.loss, num_classes=config.num_classes, ignore_index=config.ignore_index, class_weights=weights
    ).to(device)
    model_options = {"num_classes": config.num_classes, "in_channels": in_channels, **config.model_options}
    model = get_model(config.model, **model_options).to(device)
    if config.optimizer == "adamw":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(train_set) >= config.batch_size,
        num_workers=config.workers,
        generator=generator,
    )
    steps_per_epoch = max(1, len(loader) // config.accumulate)
    budget = None if config.max_minutes is None else config.max_minutes * 60
    clock: dict[str, float] = {}

    def _budget_used() -> float:
        # Fraction of the time budget spent so far (0 before training starts, or without a budget).
        if budget is None or "start" not in clock:
            return 0.0
        return (time.perf_counter() - clock["start"]) / budget

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(config, steps_per_epoch * config.epochs, _budget_used)
    )
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    history: list[dict[str, Any]] = []
    start_epoch, step, best_miou, best_epoch = 0, 0, -1.0, -1
    if resume is not None:
        state = load_checkpoint(resume, map_location=device)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator"])
        restore_rng(state["rng"])
        start_epoch, step = state["epoch"], state["step"]
        best_miou, best_epoch = state["best_miou"], state["best_epoch"]
        history = list(state["history"])

    def payload(epoch: int) -> dict[str, Any]:
        return {
            "model": model.config | {"num_classes": config.num_classes, "in_channels": in_channels},
            "state_dict": model.state_dict(),
            "class_names": config.class_names or [str(k) for k in range(config.num_classes)],
            "normalisation": {"mean": mean, "std": std},
            "ignore_index": config.ignore_index,
            "label_map": config.label_map,
            "crop": config.crop,
            "train_config": asdict(config),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "generator": generator.get_state(),
            "rng": capture_rng(),
            "epoch": epoch,
            "step": step,
            "best_miou": best_miou,
            "best_epoch": best_epoch,
            "history": history,
        }

    started = time.perf_counter()
    clock["start"] = started
    out_of_time = False
    stale = 0
    epoch = start_epoch
    for epoch in range(start_epoch, config.epochs):
        model.train()
        losses = []
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress, leave=False
        )
        optimizer.zero_grad(set_to_none=True)
        for k, (x, y) in enumerate(bar):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=use_amp):
                loss = criterion(model(x), y) / config.accumulate
            scaler.scale(loss).backward()
            if (k + 1) % config.accumulate == 0:
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                step += 1
            losses.append(float(loss.detach()) * config.accumulate)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", miou=f"{max(best_miou, 0):.3f}")
            if budget is not None and time.perf_counter() - started > budget:
                out_of_time = True
                break
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "loss": float(np.mean(losses)) if losses else None,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - started,
        }
        if val_set is not None:
            scores = evaluate_model(
                model,
                val_set,
                num_classes=config.num_classes,
                ignore_index=config.ignore_index,
                device=device,
                class_names=config.class_names,
            )
            row.update({"val_miou": scores["miou"], "val_pixel_accuracy": scores["pixel_accuracy"]})
            improved = scores["miou"] > best_miou
        else:
            improved = True
        history.append(row)
        if improved:
            best_miou = row.get("val_miou", best_miou)
            best_epoch = epoch + 1
            stale = 0
            save_checkpoint(out / "best.pt", payload(epoch + 1))
        else:
            stale += 1
        save_checkpoint(out / "last.pt", payload(epoch + 1))
        _write_logs(out, history)
        if progress:
            shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
            tqdm.write(shown)
        if out_of_time or (config.patience is not None and stale >= config.patience):
            break
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return TrainResult(
        best_miou, best_epoch, epoch + 1, step, time.perf_counter() - started, history, out / "best.pt"
    )


def _write_logs(out: Path, history: list[dict[str, Any]]) -> None:
    from ..result import atomic_write_bytes

    atomic_write_bytes(out / "log.json", json.dumps(history, indent=2).encode())
    columns = list(dict.fromkeys(k for row in history for k in row))
    lines = [",".join(columns)]
    for row in history:
        lines.append(",".join("" if row.get(c) is None else str(row.get(c)) for c in columns))
    atomic_write_bytes(out / "log.csv", ("\n".join(lines) + "\n").encode())
