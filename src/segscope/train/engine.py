"""The training loop: a plain PyTorch loop, validated each epoch with segscope's metrics.

What differs between model families (data, loss, validation) comes from the family's task
adapter (:mod:`segscope.train.adapters`); this module knows none of them. A plain loop rather
than a trainer library: what it needs (time budgets, exact resume, the metric suite, atomic
checkpoints) is about as much code as configuring a library to do it, and it keeps
``segscope[deep]`` to torch and torchvision.
"""

from __future__ import annotations

import gc
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..atomic import atomic_write_bytes
from ..checkpoint import Checkpoint, Scores, TrainingState, load_checkpoint, save_checkpoint
from ..infer.predictor import autocast_dtype
from ..models import get_model_info
from ..trainconfig import ScheduleConfig, TrainConfig
from .adapters import Prepared, evaluate_model, get_adapter
from .checkpoint import capture_rng, restore_rng
from .data import AreaSampler, image_areas
from .distributed import Distributed, distributed_from_environment

__all__ = ["TrainConfig", "TrainResult", "evaluate_model", "train"]


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
    schedule: ScheduleConfig, total_steps: int, elapsed: Callable[[], float] | None = None
) -> Callable[[int], float]:
    """Learning-rate factor per step: warm-up, then poly or cosine decay.

    With a time budget the decay follows the fraction of the budget used (or of the steps, if
    that is further along), so a run cut by the clock still ends at a low learning rate.
    """

    def factor(step: int) -> float:
        if step < schedule.warmup_steps:
            return (step + 1) / schedule.warmup_steps
        if schedule.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - schedule.warmup_steps) / max(1, total_steps - schedule.warmup_steps))
        if elapsed is not None:
            progress = max(progress, min(1.0, elapsed()))
        if schedule.schedule == "poly":
            return (1 - progress) ** 0.9
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class _LossOfBatch(torch.nn.Module):
    """The model with its task's loss as ``forward``: what DistributedDataParallel wraps, so that
    gradients are averaged whichever of the model's methods computes the loss."""

    def __init__(self, model: torch.nn.Module, batch_loss: Callable[[Any], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.batch_loss = batch_loss

    def forward(self, batch: Any) -> torch.Tensor:
        return self.batch_loss(batch)


def train(
    config: TrainConfig,
    *,
    resume: str | Path | None = None,
    stop_after_epoch: int | None = None,
    stop_after_minutes: float | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a model as ``config`` says; return the best validation score and where it was saved.

    The model family's task adapter reads the data and gives the loss and the validation score:
    semantic models train on label PNGs and are validated by mIoU; instance and panoptic models
    (``maskrcnn``, ``panoptic_deeplab``) train on instance annotations (see
    :func:`segscope.train.instances.instance_sources`) and are validated by F1 at IoU 0.5;
    ``num_classes`` then counts object categories.

    Writes ``last.pt`` (every epoch, to resume) and ``best.pt`` (best validation score; with
    ``schedule.keep = "last"``, the final epoch once training ends) into ``config.output``, and
    the per-epoch log as ``log.csv`` and ``log.json``. ``resume`` continues from a ``last.pt``
    exactly where it stopped (same schedule, same data order, same random state);
    ``stop_after_epoch`` and ``stop_after_minutes`` (checked at the end of each epoch) end this
    call early, as an interruption would, without changing the schedule: a time box for a
    fixed-length recipe, continued by the same call with ``resume``.

    Started by ``torchrun --nproc_per_node=N``, it trains with DistributedDataParallel: each
    process takes one GPU (or a CPU share), ``batch_size`` images per step and its part of each
    epoch; rank 0 validates, saves and logs. The effective batch is ``N * batch_size``.
    """
    config.validate()
    world = distributed_from_environment()
    device = world.device(config.device) if world.active else \
        torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    world.start(device)
    run = None
    try:
        run = _Run(config, world, device, progress=progress and world.main)
        return run.fit(resume=resume, stop_after_epoch=stop_after_epoch,
                       stop_after_minutes=stop_after_minutes)
    finally:
        if world.active:
            # DistributedDataParallel's reducer holds the process group, and reference cycles keep
            # it alive past the run: collected here, gloo's worker threads end while the
            # interpreter is alive. Left to the interpreter's finalisation, they aborted a process
            # at exit ("terminate called without an active exception") in about 1 of 20 runs.
            del run
            gc.collect()
        world.stop()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (libraries draw from the global state)
    torch.manual_seed(seed)


def _optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    optim = config.optim
    if optim.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=optim.lr, momentum=optim.momentum,
                           weight_decay=optim.weight_decay)


@dataclass
class _Progress:
    """Where the run stands: what a checkpoint saves and a resume restores."""

    epoch: int = 0
    step: int = 0
    best_score: float = -1.0
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)
    stale: int = 0


class _Run:
    """One training run: the prepared task, its optimiser, schedule and data order."""

    def __init__(self, config: TrainConfig, world: Distributed, device: torch.device, *, progress: bool
                 ) -> None:
        from torch.utils.data.distributed import DistributedSampler

        self.config, self.world, self.device, self.progress = config, world, device, progress
        self.out = Path(config.output)
        self.out.mkdir(parents=True, exist_ok=True)
        _seed_everything(config.seed)
        info = get_model_info(config.model.name)
        self.task = info.task
        self.prepared: Prepared = get_adapter(info.adapter).prepare(config, device)
        self.model = self.prepared.model
        self.optimizer = _optimizer(config, self.model)
        self.generator = torch.Generator().manual_seed(config.seed)
        batch = config.optim.batch_size
        # Under torchrun each process reads its own share of every epoch, reshuffled per epoch;
        # ``sampling="area"`` draws the epoch in proportion to the images' pixels instead.
        self.sampler: AreaSampler | DistributedSampler[Any] | None = None
        if config.data.sampling == "area":
            self.sampler = AreaSampler(image_areas(self.prepared.train_set), seed=config.seed,
                                       rank=world.rank, world_size=world.world_size)
        elif world.active:
            self.sampler = DistributedSampler(self.prepared.train_set, num_replicas=world.world_size,
                                              rank=world.rank, shuffle=True, seed=config.seed)
        self.loader = DataLoader(
            self.prepared.train_set, batch_size=batch, shuffle=self.sampler is None, sampler=self.sampler,
            drop_last=len(self.prepared.train_set) >= batch * world.world_size,
            num_workers=config.data.workers, generator=self.generator, collate_fn=self.prepared.collate,
        )
        self.step_loss: torch.nn.Module = _LossOfBatch(self.model, self.prepared.batch_loss)
        if world.active:
            self.step_loss = torch.nn.parallel.DistributedDataParallel(
                self.step_loss, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.prepared.unused_parameters)
        minutes = config.schedule.max_minutes
        self.budget = None if minutes is None else minutes * 60
        self.clock: dict[str, float] = {}
        steps_per_epoch = max(1, len(self.loader) // config.optim.accumulate)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            _schedule(config.schedule, steps_per_epoch * config.schedule.epochs, self.budget_used))
        # The weights and the optimiser stay float32; autocast runs the network in half precision.
        self.autocast_dtype = autocast_dtype(config.optim.mixed_precision, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.state = _Progress()

    def budget_used(self) -> float:
        """Fraction of the time budget spent (0 before training starts, or without a budget).
        Under torchrun every process uses the slowest one's clock, so their LRs stay equal."""
        if self.budget is None or "start" not in self.clock:
            return 0.0
        return self.clock.get("agreed", (time.perf_counter() - self.clock["start"]) / self.budget)

    # -------------------------------------------------------------------- checkpoints
    def resume_from(self, path: str | Path) -> None:
        saved = load_checkpoint(path, map_location=self.device)
        if saved.training is None:
            raise ValueError(f"{path}: holds no training state to resume from")
        changed = _changed_settings(_with_defaults(saved.recipe), self.config.to_dict())
        if changed:
            shown = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, a, b in changed[:5])
            raise ValueError(f"{path} was trained with other settings ({shown}); resume with the same ones "
                             f"(only {', '.join(sorted(_MAY_CHANGE))} may change)")
        t = saved.training
        self.model.load_state_dict(saved.state_dict)
        self.optimizer.load_state_dict(t.optimizer)
        self.scheduler.load_state_dict(t.scheduler)
        self.scaler.load_state_dict(t.scaler)
        self.generator.set_state(t.generator)
        restore_rng(t.rng)
        self.state = _Progress(t.epoch, t.step, saved.scores.best_score, saved.scores.best_epoch,
                               list(saved.scores.history))

    def checkpoint(self, epoch: int) -> Checkpoint:
        s, prepared = self.state, self.prepared
        options = {k: v for k, v in self.model.config.items() if k != "name"}
        return Checkpoint(
            task=self.task, model=self.config.model.name, options=options, state_dict=self.model.state_dict(),
            class_names=tuple(prepared.class_names), inputs=prepared.inputs,
            ignore_index=self.config.data.ignore_index, label_map=self.config.data.label_map,
            recipe=self.config.to_dict(),
            scores=Scores(prepared.metric, s.best_score, s.best_epoch, tuple(s.history)),
            training=TrainingState(epoch, s.step, self.optimizer.state_dict(), self.scheduler.state_dict(),
                                   self.scaler.state_dict(), self.generator.get_state(), capture_rng()),
        )

    # -------------------------------------------------------------------------- loop
    def fit(self, *, resume: str | Path | None, stop_after_epoch: int | None,
            stop_after_minutes: float | None) -> TrainResult:
        if resume is not None:
            self.resume_from(resume)
        started = time.perf_counter()
        self.clock["start"] = started
        epochs = self.config.schedule.epochs
        done = self.state.epoch  # epochs finished; a finished run resumed trains none
        # The log's "seconds" count training time over every call of a resumed run.
        before = float(self.state.history[-1].get("seconds", 0.0)) if self.state.history else 0.0
        ended = self.state.epoch >= epochs  # training is over (not merely paused by a time box)
        for epoch in range(self.state.epoch, epochs):
            losses, out_of_time = self.train_epoch(epoch)
            done = epoch + 1
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": self.state.step,
                "loss": float(np.mean(losses)) if losses else None,
                "lr": self.scheduler.get_last_lr()[0],
                "seconds": before + time.perf_counter() - started,
            }
            last = epoch + 1 == epochs or out_of_time
            if self.world.main:  # one process validates, saves and logs
                self.validate_and_save(
                    epoch, row, validate=last or (epoch + 1) % self.config.schedule.val_every == 0)
            if self.progress:
                from tqdm.auto import tqdm

                tqdm.write(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in row.items()))
            patience = self.config.schedule.patience
            patience_spent = patience is not None and self.state.stale >= patience
            if self.world.from_main(float(out_of_time or patience_spent), self.device):
                ended = True
                break
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                break
            if stop_after_minutes is not None and self.world.from_main(
                    float(time.perf_counter() - started >= 60 * stop_after_minutes), self.device):
                break
        ended = ended or done >= epochs
        if ended and self.world.main and self.config.schedule.keep == "last":
            self.keep_last(done)
        if ended and self.world.main and self.prepared.tune is not None:
            self.tune_best()
        s = self.state
        return TrainResult(self.prepared.metric, s.best_score, s.best_epoch, done, s.step,
                           time.perf_counter() - started, s.history, self.out / "best.pt")

    def keep_last(self, done: int) -> None:
        """With ``schedule.keep = "last"``: ``best.pt`` becomes the weights of the final epoch
        (``done``), with its own validation score (once: a finished run resumed again keeps the
        decoding tuned into it)."""
        s = self.state
        if s.best_epoch == done:
            return
        # the history's last row is the final epoch, always validated (as is a time box's last)
        s.best_score, s.best_epoch = float(s.history[-1][self.prepared.metric]), done
        save_checkpoint(self.out / "best.pt", self.checkpoint(done))

    def tune_best(self) -> None:
        """The adapter's decoding settings, chosen with the best weights, written into ``best.pt``
        (once: a finished run resumed again keeps them)."""
        import dataclasses

        path = self.out / "best.pt"
        if not path.exists() or self.prepared.tune is None:
            return
        best = load_checkpoint(path, map_location=self.device)
        if best.decoding:
            return
        self.model.load_state_dict(best.state_dict)
        decoding = self.prepared.tune()
        save_checkpoint(path, dataclasses.replace(best, decoding=decoding))
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write("decoding chosen on the validation images: "
                       + ", ".join(f"{k} {v:g}" for k, v in decoding.items()))

    def train_epoch(self, epoch: int) -> tuple[list[float], bool]:
        """One pass over the data (or until the time budget ends); the losses, and whether time ran out."""
        from tqdm.auto import tqdm

        self.model.train()
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        accumulate = self.config.optim.accumulate
        shown = self.prepared.metric.removeprefix("val_")
        bar = tqdm(self.loader, desc=f"epoch {epoch + 1}/{self.config.schedule.epochs}", unit="batch",
                   disable=not self.progress, leave=False)
        losses: list[float] = []
        self.optimizer.zero_grad(set_to_none=True)
        for k, batch in enumerate(bar):
            with torch.autocast(self.device.type, dtype=self.autocast_dtype,
                                enabled=self.autocast_dtype is not None):
                loss = self.step_loss(batch) / accumulate
            self.scaler.scale(loss).backward()
            if self.world.active and self.budget is not None:
                self.clock["agreed"] = self.world.agree(
                    (time.perf_counter() - self.clock["start"]) / self.budget, self.device)
            if (k + 1) % accumulate == 0:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.state.step += 1
            losses.append(float(loss.detach()) * accumulate)
            bar.set_postfix({"loss": f"{np.mean(losses[-20:]):.3f}",
                             shown: f"{max(self.state.best_score, 0):.3f}"})
            if self.budget is not None and self.budget_used() > 1:
                return losses, True
        return losses, False

    def validate_and_save(self, epoch: int, row: dict[str, Any], *, validate: bool) -> None:
        """Log the epoch and save ``last.pt``; when ``validate``, score it and keep ``best.pt``."""
        s, metric = self.state, self.prepared.metric
        if validate:
            row.update(self.prepared.validate())
        s.history.append(row)
        if validate and (metric not in row or row[metric] > s.best_score):
            s.best_score = row.get(metric, s.best_score)
            s.best_epoch = epoch + 1
            s.stale = 0
            save_checkpoint(self.out / "best.pt", self.checkpoint(epoch + 1))
        elif validate:
            s.stale += 1
        save_checkpoint(self.out / "last.pt", self.checkpoint(epoch + 1))
        _write_logs(self.out, s.history)


_MAY_CHANGE = {"schedule.epochs", "schedule.max_minutes", "schedule.patience", "schedule.val_every",
               "schedule.keep", "data.workers", "device",
               "output"}
"""What a resumed run may set differently from the run it continues."""


def _with_defaults(recipe: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's recipe with the settings added since it was written at their defaults (which
    is what the run used); as saved when it does not read as a configuration."""
    try:
        return TrainConfig.from_dict(recipe).to_dict()
    except (TypeError, ValueError, KeyError):
        return recipe


def _changed_settings(before: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(setting, value in the checkpoint, value now) for each setting that differs."""
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in d.items():
            if isinstance(value, dict) and key in ("model", "data", "optim", "schedule"):
                out.update(flat(value, f"{key}."))
            else:
                out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
        return out

    a, b = flat(before), flat(now)
    if not a:  # a checkpoint of schema 1 without its recipe: nothing to compare
        return []
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k not in _MAY_CHANGE and a.get(k) != b.get(k)]


def _write_logs(out: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_bytes(out / "log.json", json.dumps(history, indent=2).encode())
    columns = list(dict.fromkeys(k for row in history for k in row))
    lines = [",".join(columns)]
    for row in history:
        lines.append(",".join("" if row.get(c) is None else str(row.get(c)) for c in columns))
    atomic_write_bytes(out / "log.csv", ("\n".join(lines) + "\n").encode())
