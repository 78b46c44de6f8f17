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

from ..checkpoint import Checkpoint, InputSpec, Scores, TrainingState, load_checkpoint, save_checkpoint
from ..metrics import Evaluator
from ..models import get_model, get_model_info
from .checkpoint import capture_rng, restore_rng
from .data import Augment, LabelledFolder, input_statistics, pair_by_stem
from .distributed import Distributed, distributed_from_environment
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
    metric: str
    """The validation figure that chose the best epoch ("val_miou", or "val_f1" for instances)."""
    best_score: float
    """Its best value; -1 without a validation set."""
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


@dataclass
class _Plan:
    """What differs between tasks: data, model, loss of a batch, and the validation score."""

    model: torch.nn.Module
    train_set: Any
    val_set: Any
    inputs: InputSpec
    class_names: list[str]
    metric: str  # the validation figure that picks the best checkpoint, e.g. "val_miou"
    batch_loss: Callable[[Any], torch.Tensor]
    validate: Callable[[], dict[str, float]]
    collate: Callable[[Any], Any] | None = None
    unused_parameters: bool = False  # some parameters may get no gradient in a step (Mask R-CNN)


class _LossOfBatch(torch.nn.Module):
    """The model with its task's loss as ``forward``: what DistributedDataParallel wraps, so that
    gradients are averaged whichever of the model's methods computes the loss."""

    def __init__(self, model: torch.nn.Module, batch_loss: Callable[[Any], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.batch_loss = batch_loss

    def forward(self, batch: Any) -> torch.Tensor:
        return self.batch_loss(batch)


def _augment(config: TrainConfig) -> Augment:
    return Augment(
        crop=config.crop,
        scale=(float(config.scale[0]), float(config.scale[1])),
        hflip=config.hflip,
        vflip=config.vflip,
        rotation=config.rotation,
        colour=config.colour,
    )


def _split(config: TrainConfig, pairs: list[Any], val_pairs: list[Any]) -> tuple[list[Any], list[Any]]:
    if val_pairs or config.holdout <= 0:
        return pairs, val_pairs
    if config.holdout >= len(pairs):
        raise ValueError(f"holdout {config.holdout} leaves no training images of {len(pairs)}")
    return pairs[: -config.holdout], pairs[-config.holdout :]


def _semantic_plan(config: TrainConfig, device: torch.device) -> _Plan:
    pairs = pair_by_stem(config.train_images, config.train_labels)
    val_pairs: list[Any] = []
    if config.val_images is not None and config.val_labels is not None:
        val_pairs = pair_by_stem(config.val_images, config.val_labels)
    pairs, val_pairs = _split(config, pairs, val_pairs)
    inputs = input_statistics([image for image, _ in pairs], crop=config.crop)
    mean, std = list(inputs.mean), list(inputs.std)
    common = {"mean": mean, "std": std, "ignore_index": config.ignore_index, "label_map": config.label_map}
    train_set = LabelledFolder(pairs, augment=_augment(config), **common)
    val_set = LabelledFolder(val_pairs, **common) if val_pairs else None
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
    options = {"num_classes": config.num_classes, "in_channels": in_channels, **config.model_options}
    model = get_model(config.model, **options).to(device)

    def batch_loss(batch: Any) -> torch.Tensor:
        x, y = batch
        return criterion(model(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))

    def validate() -> dict[str, float]:
        if val_set is None:
            return {}
        scores = evaluate_model(
            model, val_set, num_classes=config.num_classes, ignore_index=config.ignore_index,
            device=device, class_names=config.class_names,
        )
        return {"val_miou": scores["miou"], "val_pixel_accuracy": scores["pixel_accuracy"]}

    names = config.class_names or [str(k) for k in range(config.num_classes)]
    return _Plan(model, train_set, val_set, inputs, names, "val_miou", batch_loss, validate)


def _instance_plan(config: TrainConfig, device: torch.device, task: str) -> _Plan:
    from .instances import (
        InstanceFolder,
        PanopticDeepLabLoss,
        collate_instances,
        instance_sources,
        maskrcnn_targets,
        panoptic_targets,
        stack_targets,
    )

    semantic_only = {"loss": config.loss != "ce", "class_weights": config.class_weights is not None,
                     "label_map": bool(config.label_map)}
    if any(semantic_only.values()):
        named = ", ".join(k for k, v in semantic_only.items() if v)
        raise ValueError(f"{config.model} ({task} model): {named} apply to semantic models only")
    sources = instance_sources(config.train_images, config.train_labels)
    val_sources: list[Any] = []
    if config.val_images is not None and config.val_labels is not None:
        val_sources = instance_sources(config.val_images, config.val_labels)
    sources, val_sources = _split(config, sources, val_sources)
    inputs = input_statistics([s.image for s in sources], crop=config.crop)
    mean, std = list(inputs.mean), list(inputs.std)
    common = {"mean": mean, "std": std, "num_classes": config.num_classes}
    train_set = InstanceFolder(sources, augment=_augment(config), **common)
    val_set = InstanceFolder(val_sources, **common) if val_sources else None
    in_channels = train_set.load(0)[0].shape[-1]
    objects = config.class_names or [f"object_{k}" for k in range(config.num_classes)]
    options: dict[str, Any] = {"in_channels": in_channels, **config.model_options}
    if task == "panoptic":
        # Trained from instances, the semantic head has one stuff class (background) before the objects.
        options.update(num_classes=config.num_classes + 1,
                       thing_classes=list(range(1, config.num_classes + 1)))
        names = ["background", *objects]
    else:
        options["num_classes"] = config.num_classes
        names = list(objects)
    model = get_model(config.model, **options).to(device)
    criterion = PanopticDeepLabLoss(ignore_index=255)

    def batch_loss(batch: Any) -> torch.Tensor:
        images, maps, categories = batch
        if task == "panoptic":
            sigma = model.center_sigma
            targets = [panoptic_targets(m, c, sigma=sigma) for m, c in zip(maps, categories, strict=True)]
            x = torch.stack(images).to(device, non_blocking=True)
            total, _ = criterion(model(x), stack_targets(targets, device))
            return total
        found = [maskrcnn_targets(m, c) for m, c in zip(maps, categories, strict=True)]
        targets = [{k: v.to(device) for k, v in t.items()} for t in found]
        losses = model.losses([x.to(device, non_blocking=True) for x in images], targets)
        return sum(losses.values())

    def validate() -> dict[str, float]:
        if val_set is None:
            return {}
        evaluator = Evaluator(task="instance")
        model.eval()
        with torch.inference_mode():
            for k in range(len(val_set)):
                x, truth, _ = val_set[k]
                predicted = predicted_instance_map(model, x[None].to(device))
                evaluator.update(predicted, truth.clamp(min=0).numpy(), name=val_set.names[k])
        report = evaluator.compute()
        return {"val_f1": report["f1@0.5"], "val_accuracy": report["accuracy@0.5"]}

    return _Plan(model, train_set, val_set, inputs, names, "val_f1", batch_loss, validate,
                 collate_instances, unused_parameters=task != "panoptic")


def predicted_instance_map(
    model: torch.nn.Module, x: torch.Tensor, *, score_threshold: float = 0.5
) -> np.ndarray:
    """One image's instances as a label map (0 background), for validation.

    Panoptic models give their grouped instances; detectors their masks above ``score_threshold``,
    painted best score last so that it wins where masks overlap.
    """
    if hasattr(model, "predict"):
        return model.predict(x)[0].instances.cpu().numpy()
    found = model(x)[0]
    keep = found["scores"] >= score_threshold
    masks = found["masks"][keep, 0] > 0.5
    order = torch.argsort(found["scores"][keep])
    label_map = torch.zeros(x.shape[-2:], dtype=torch.int64, device=x.device)
    for rank, k in enumerate(order.tolist(), start=1):
        label_map[masks[k]] = rank
    return label_map.cpu().numpy()


def train(
    config: TrainConfig,
    *,
    resume: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a model as ``config`` says; return the best validation score and where it was saved.

    Semantic models train on label PNGs and are validated by mIoU. Instance and panoptic models
    (``maskrcnn``, ``panoptic_deeplab``) train on instance annotations (see
    :func:`segscope.train.instances.instance_sources`) and are validated by F1 at IoU 0.5;
    ``num_classes`` then counts object categories.

    Writes ``last.pt`` (every epoch, to resume) and ``best.pt`` (best validation score) into
    ``config.output``, and the per-epoch log as ``log.csv`` and ``log.json``. ``resume`` continues
    from a ``last.pt`` exactly where it stopped (same schedule, same data order, same random
    state); ``stop_after_epoch`` ends this call early, as an interruption would, without
    changing the schedule.

    Started by ``torchrun --nproc_per_node=N``, it trains with DistributedDataParallel: each
    process takes one GPU (or a CPU share), ``batch_size`` images per step and its part of each
    epoch; rank 0 validates, saves and logs. The effective batch is ``N * batch_size``.
    """
    config.validate()
    world = distributed_from_environment()
    device = world.device(config.device) if world.active else \
        torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    world.start(device)
    try:
        return _train(config, world, device, resume=resume, stop_after_epoch=stop_after_epoch,
                      progress=progress and world.main)
    finally:
        world.stop()


def _train(config: TrainConfig, world: Distributed, device: torch.device, *, resume: str | Path | None,
           stop_after_epoch: int | None, progress: bool) -> TrainResult:
    from torch.utils.data.distributed import DistributedSampler
    from tqdm.auto import tqdm

    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    np.random.seed(config.seed)  # noqa: NPY002 (libraries draw from the global state)
    torch.manual_seed(config.seed)

    task = get_model_info(config.model).task
    plan = _semantic_plan(config, device) if task == "semantic" else _instance_plan(config, device, task)
    model = plan.model
    if config.optimizer == "adamw":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    generator = torch.Generator().manual_seed(config.seed)
    # Under torchrun each process reads its own share of every epoch, reshuffled per epoch.
    sampler = DistributedSampler(plan.train_set, num_replicas=world.world_size, rank=world.rank,
                                 shuffle=True, seed=config.seed) if world.active else None
    loader = DataLoader(
        plan.train_set,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        drop_last=len(plan.train_set) >= config.batch_size * world.world_size,
        num_workers=config.workers,
        generator=generator,
        collate_fn=plan.collate,
    )
    step_loss: torch.nn.Module = _LossOfBatch(model, plan.batch_loss)
    if world.active:
        step_loss = torch.nn.parallel.DistributedDataParallel(
            step_loss, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=plan.unused_parameters)
    steps_per_epoch = max(1, len(loader) // config.accumulate)
    budget = None if config.max_minutes is None else config.max_minutes * 60
    clock: dict[str, float] = {}

    def _budget_used() -> float:
        # Fraction of the time budget spent so far (0 before training starts, or without a budget).
        # Under torchrun every process uses the slowest one's clock, so their LRs stay equal.
        if budget is None or "start" not in clock:
            return 0.0
        return clock.get("agreed", (time.perf_counter() - clock["start"]) / budget)

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(config, steps_per_epoch * config.epochs, _budget_used)
    )
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    history: list[dict[str, Any]] = []
    start_epoch, step, best_score, best_epoch = 0, 0, -1.0, -1
    if resume is not None:
        saved = load_checkpoint(resume, map_location=device)
        if saved.training is None:
            raise ValueError(f"{resume}: holds no training state to resume from")
        model.load_state_dict(saved.state_dict)
        optimizer.load_state_dict(saved.training.optimizer)
        scheduler.load_state_dict(saved.training.scheduler)
        scaler.load_state_dict(saved.training.scaler)
        generator.set_state(saved.training.generator)
        restore_rng(saved.training.rng)
        start_epoch, step = saved.training.epoch, saved.training.step
        best_score, best_epoch = saved.scores.best_score, saved.scores.best_epoch
        history = list(saved.scores.history)

    def payload(epoch: int) -> Checkpoint:
        options = {k: v for k, v in model.config.items() if k != "name"}
        return Checkpoint(
            task=task, model=config.model, options=options, state_dict=model.state_dict(),
            class_names=tuple(plan.class_names), inputs=plan.inputs, ignore_index=config.ignore_index,
            label_map=config.label_map, recipe=asdict(config),
            scores=Scores(plan.metric, best_score, best_epoch, tuple(history)),
            training=TrainingState(epoch, step, optimizer.state_dict(), scheduler.state_dict(),
                                   scaler.state_dict(), generator.get_state(), capture_rng()),
        )

    started = time.perf_counter()
    clock["start"] = started
    out_of_time = False
    stale = 0
    epoch = start_epoch
    shown_metric = plan.metric.removeprefix("val_")
    for epoch in range(start_epoch, config.epochs):
        model.train()
        if sampler is not None:
            sampler.set_epoch(epoch)
        losses = []
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=not progress, leave=False
        )
        optimizer.zero_grad(set_to_none=True)
        for k, batch in enumerate(bar):
            with torch.autocast(device.type, enabled=use_amp):
                loss = step_loss(batch) / config.accumulate
            scaler.scale(loss).backward()
            if world.active and budget is not None:
                clock["agreed"] = world.agree((time.perf_counter() - started) / budget, device)
            if (k + 1) % config.accumulate == 0:
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                step += 1
            losses.append(float(loss.detach()) * config.accumulate)
            postfix = {"loss": f"{np.mean(losses[-20:]):.3f}", shown_metric: f"{max(best_score, 0):.3f}"}
            bar.set_postfix(postfix)
            if budget is not None and _budget_used() > 1:
                out_of_time = True
                break
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "loss": float(np.mean(losses)) if losses else None,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - started,
        }
        if world.main:  # one process validates, saves and logs
            row.update(plan.validate())
            improved = row[plan.metric] > best_score if plan.metric in row else True
            history.append(row)
            if improved:
                best_score = row.get(plan.metric, best_score)
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
        patience_spent = config.patience is not None and stale >= config.patience
        if world.from_main(float(out_of_time or patience_spent), device):
            break
        if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
            break
    return TrainResult(
        plan.metric, best_score, best_epoch, epoch + 1, step, time.perf_counter() - started, history,
        out / "best.pt",
    )


def _write_logs(out: Path, history: list[dict[str, Any]]) -> None:
    from ..atomic import atomic_write_bytes

    atomic_write_bytes(out / "log.json", json.dumps(history, indent=2).encode())
    columns = list(dict.fromkeys(k for row in history for k in row))
    lines = [",".join(columns)]
    for row in history:
        lines.append(",".join("" if row.get(c) is None else str(row.get(c)) for c in columns))
    atomic_write_bytes(out / "log.csv", ("\n".join(lines) + "\n").encode())
