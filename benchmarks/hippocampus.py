"""Hippocampus in 3-D MRI (MSD Task04): segscope's unet3d against MONAI and a classical atlas.

    python benchmarks/hippocampus.py [--ours hippocampus] [--minutes M] [--picture PATH]

Split (fixed, 80/20): every fifth volume of ``msd_hippocampus/imagesTr`` in name order (43 of 217)
is held out and only scored; the zoo card ``hippocampus`` trains on the same split
(``python -m segscope.zoo.build hippocampus``). Side by side on the held-out volumes:

* ours: the zoo model (or ``--ours CHECKPOINT``); its training minutes are the card's;
* MONAI: ``monai.networks.nets.UNet`` (the same widths 16-32-64-128 and depth, residual units,
  instance norm), trained here from scratch in this run with MONAI's own loop pieces and
  transforms (z-score normalisation, positive/negative patch sampling, random affine, flips,
  intensity shifts, ``DiceCELoss``, ``sliding_window_inference`` with Gaussian blending) for the
  same minutes as ours (``--minutes``), its best epoch picked on the same 10 training volumes;
* the classical pipeline: a majority-vote atlas (every training label volume resized to the case
  and the classes voted voxel by voxel; no registration), as the crops are centred on the
  hippocampus.

Reported per method: Dice of the anterior and posterior parts and their mean, HD95 in mm (per
case, then averaged), training minutes and seconds per volume, and ratios to MONAI.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "msd_hippocampus"
NAMES = ("anterior", "posterior")
PATCH = 40


def split(root: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """(training, held-out) pairs: every fifth in name order held out, as the zoo card does."""
    images = sorted((root / "imagesTr").glob("*.nii.gz"))
    pairs = [(p, root / "labelsTr" / p.name) for p in images]
    held = pairs[4::5]
    return [p for p in pairs if p not in held], held


def read_pair(pair: tuple[Path, Path]) -> tuple[Any, np.ndarray]:
    from segscope.io.volumes import read_volume

    return read_volume(pair[0]), np.rint(read_volume(pair[1]).data).astype(np.int64)


def scores(predictions: list[np.ndarray], held: list[tuple[Path, Path]]) -> dict[str, float]:
    from segscope.metrics import class_scores, mean_over_cases

    rows = []
    for prediction, pair in zip(predictions, held, strict=True):
        volume, truth = read_pair(pair)
        rows.append(class_scores(prediction, truth, num_classes=3, spacing=volume.spacing))
    return mean_over_cases(rows, NAMES)


# ----------------------------------------------------------------------------------- ours
def run_ours(model: str, held: list[tuple[Path, Path]]) -> tuple[list[np.ndarray], float]:
    import segscope

    volumes = [read_pair(pair)[0] for pair in held]
    segscope.segment(volumes[0], model)  # warm-up
    start = time.perf_counter()
    predictions = [segscope.segment(v, model).class_map() for v in volumes]
    return predictions, (time.perf_counter() - start) / len(volumes)


# ---------------------------------------------------------------------------------- MONAI
def _monai_items(pairs: list[tuple[Path, Path]]) -> list[dict[str, np.ndarray]]:
    items = []
    for pair in pairs:
        volume, truth = read_pair(pair)
        items.append({"image": volume.data.astype(np.float32)[None], "label": truth.astype(np.float32)[None]})
    return items


def train_monai(
    train_pairs: list[tuple[Path, Path]],
    held: list[tuple[Path, Path]],
    minutes: float,
    result_path: str,
    seed: int = 0,
) -> None:
    """Train MONAI's UNet for ``minutes`` with MONAI's transforms and loss; predict the held-out
    volumes with its sliding-window inferer; write predictions and timings to ``result_path``."""
    import torch
    from monai.data import DataLoader, Dataset
    from monai.inferers import sliding_window_inference
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet
    from monai.transforms import (
        Compose,
        NormalizeIntensityd,
        RandAffined,
        RandCropByPosNegLabeld,
        RandFlipd,
        RandScaleIntensityd,
        RandShiftIntensityd,
        SpatialPadd,
    )
    from monai.utils import set_determinism

    set_determinism(seed=seed)
    fit_pairs, pick_pairs = train_pairs[:-10], train_pairs[-10:]
    keys = ["image", "label"]
    train_transform = Compose(
        [
            NormalizeIntensityd(keys="image"),
            SpatialPadd(keys=keys, spatial_size=(PATCH,) * 3, mode="reflect"),
            RandCropByPosNegLabeld(
                keys=keys, label_key="label", spatial_size=(PATCH,) * 3, pos=1, neg=1, num_samples=2
            ),
            RandAffined(
                keys=keys,
                prob=0.3,
                rotate_range=(0.26,) * 3,
                scale_range=(0.15,) * 3,
                mode=("bilinear", "nearest"),
                padding_mode="reflection",
            ),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=2),
            RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
        ]
    )
    normalise = NormalizeIntensityd(keys="image")
    loader = DataLoader(
        Dataset(_monai_items(fit_pairs), transform=train_transform), batch_size=2, shuffle=True, num_workers=0
    )
    model = UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=3,
        channels=(16, 32, 64, 128),
        strides=(2, 2, 2),
        num_res_units=2,
        norm="instance",
    )
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    pick = [normalise(item) for item in _monai_items(pick_pairs)]

    def predict(image: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = sliding_window_inference(
                torch.as_tensor(image)[None], (PATCH,) * 3, 4, model, overlap=0.5, mode="gaussian"
            )
        return logits.argmax(1)[0].numpy()

    def validate() -> float:
        model.eval()
        dice = []
        for item in pick:
            prediction, truth = predict(item["image"]), np.asarray(item["label"][0]).astype(int)
            for c in (1, 2):
                both = (prediction == c).sum() + (truth == c).sum()
                if both:
                    dice.append(2 * ((prediction == c) & (truth == c)).sum() / both)
        model.train()
        return float(np.mean(dice))

    budget, start = minutes * 60, time.perf_counter()
    best, best_state, steps, epoch = -1.0, None, 0, 0
    while time.perf_counter() - start < budget:
        for batch in loader:
            used = (time.perf_counter() - start) / budget
            if used >= 1:
                break
            for group in optimizer.param_groups:  # poly decay with the clock, as ours
                group["lr"] = 3e-3 * (1 - used) ** 0.9
            optimizer.zero_grad()
            loss = loss_fn(model(batch["image"]), batch["label"])
            loss.backward()
            optimizer.step()
            steps += 1
        epoch += 1
        if epoch % 5 == 0 or time.perf_counter() - start >= budget:
            score = validate()
            if score > best:
                best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
            print(f"monai epoch {epoch} step {steps} val dice {score:.4f}", flush=True)
    train_seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    held_items = [normalise(item) for item in _monai_items(held)]
    predict(held_items[0]["image"])  # warm-up
    t0 = time.perf_counter()
    predictions = [predict(item["image"]).astype(np.uint8) for item in held_items]
    seconds = (time.perf_counter() - t0) / len(held_items)
    np.savez_compressed(result_path + ".npz", *predictions)
    Path(result_path).write_text(
        json.dumps(
            {
                "seconds_per_volume": seconds,
                "train_minutes": train_seconds / 60,
                "steps": steps,
                "epochs": epoch,
                "best_val_dice": best,
            }
        )
    )


def run_monai(
    train_pairs: list[tuple[Path, Path]], held: list[tuple[Path, Path]], minutes: float, work: Path
) -> tuple[list[np.ndarray], dict[str, Any]]:
    result = work / "monai.json"
    process = mp.get_context("spawn").Process(
        target=train_monai, args=(train_pairs, held, minutes, str(result))
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"the MONAI run failed with exit code {process.exitcode}")
    info = json.loads(result.read_text())
    with np.load(str(result) + ".npz") as saved:
        predictions = [saved[f"arr_{k}"] for k in range(len(held))]
    return predictions, info


# ------------------------------------------------------------------------------- classical
def atlas(
    train_pairs: list[tuple[Path, Path]], held: list[tuple[Path, Path]]
) -> tuple[list[np.ndarray], float]:
    """Majority vote of the training label volumes, each resized (nearest) to the case's shape."""
    from scipy import ndimage

    labels = [read_pair(pair)[1] for pair in train_pairs]
    start = time.perf_counter()
    predictions = []
    for pair in held:
        shape = read_pair(pair)[1].shape
        votes = np.zeros((3, *shape), np.int32)
        for label in labels:
            resized = ndimage.zoom(label, [a / b for a, b in zip(shape, label.shape, strict=True)], order=0)
            resized = resized[: shape[0], : shape[1], : shape[2]]
            padded = np.zeros(shape, np.int64)
            padded[: resized.shape[0], : resized.shape[1], : resized.shape[2]] = resized
            votes += np.eye(3, dtype=np.int32)[padded].transpose(3, 0, 1, 2)
        predictions.append(votes.argmax(0))
    return predictions, (time.perf_counter() - start) / len(held)


def picture(held: list[tuple[Path, Path]], rows: dict[str, np.ndarray], index: int, path: Path) -> None:
    from segscope.viz import orthogonal_slices, panel

    volume, truth = read_pair(held[index])
    pictures = [orthogonal_slices(volume, prediction, truth=truth) for prediction in rows.values()]
    panel(
        pictures,
        titles=[f"{name} (colours), truth (white): {held[index][0].name}" for name in rows],
        columns=1,
        path=path,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--ours", default="hippocampus", help="zoo name or checkpoint (default: the zoo model)"
    )
    parser.add_argument("--ours-minutes", type=float, help="our training minutes (default: the card's)")
    parser.add_argument("--minutes", type=float, help="MONAI's training budget (default: ours)")
    parser.add_argument("--skip-monai", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hippocampus_bench"))
    parser.add_argument("--picture", type=Path, help="orthogonal slices of one held-out volume, per method")
    parser.add_argument("--picture-index", type=int, default=3)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    train_pairs, held = split(args.data)
    print(
        f"{len(train_pairs)} training volumes, {len(held)} held out (every fifth in name order)", flush=True
    )
    ours_minutes = args.ours_minutes
    if ours_minutes is None and args.ours == "hippocampus":
        from segscope.zoo import zoo_card

        ours_minutes = float(zoo_card("hippocampus").training.get("minutes_here", 0))
    results: dict[str, dict[str, Any]] = {}
    predictions: dict[str, list[np.ndarray]] = {}
    predictions["segscope unet3d"], seconds = run_ours(args.ours, held)
    results["segscope unet3d"] = {
        **scores(predictions["segscope unet3d"], held),
        "train_minutes": ours_minutes,
        "seconds": seconds,
    }
    print(json.dumps(results["segscope unet3d"]), flush=True)
    predictions["atlas (classical)"], seconds = atlas(train_pairs, held)
    results["atlas (classical)"] = {
        **scores(predictions["atlas (classical)"], held),
        "train_minutes": 0.0,
        "seconds": seconds,
    }
    if not args.skip_monai:
        minutes = args.minutes or ours_minutes
        if not minutes:
            parser.error("give --minutes (MONAI's budget) when ours has no recorded training time")
        predictions["MONAI UNet"], info = run_monai(train_pairs, held, minutes, args.work)
        results["MONAI UNet"] = {
            **scores(predictions["MONAI UNet"], held),
            "train_minutes": info["train_minutes"],
            "seconds": info["seconds_per_volume"],
            "steps": info["steps"],
        }
    (args.work / "results.json").write_text(json.dumps(results, indent=2))
    peer = results.get("MONAI UNet")
    print(
        f"\nMSD Hippocampus, {len(held)} held-out volumes (every fifth in name order); Dice and HD95 (mm) "
        "per "
        "case, averaged\n"
    )
    print(
        "| method | Dice anterior | Dice posterior | mean Dice | mean HD95 | train min | s/volume |"
        + (" Dice / MONAI |" if peer else "")
    )
    print("| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if peer else ""))
    for name, r in results.items():
        ratio = f" {r['mean_dice'] / peer['mean_dice']:.3f} |" if peer else ""
        print(
            f"| {name} | {r['dice_anterior']:.3f} | {r['dice_posterior']:.3f} | {r['mean_dice']:.3f} | "
            f"{r['mean_hd95']:.2f} | {r['train_minutes'] or 0:.1f} | {r['seconds']:.2f} |{ratio}"
        )
    if args.picture:
        shown = {k: predictions[k][args.picture_index] for k in predictions if k != "atlas (classical)"}
        picture(held, shown, args.picture_index, args.picture)
        print(f"picture: {args.picture}")


if __name__ == "__main__":
    main()
