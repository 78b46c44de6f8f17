"""Nuclei instances on DSB2018: deep models trained for a time budget against classical watersheds.

    python benchmarks/dsb2018.py [--minutes 30] [--models stardist,panoptic_deeplab,maskrcnn]

A fixed fifth of ``dsb2018/train`` (every fifth image in name order) is held out and only scored.
Each deep model trains from scratch on the rest, in its own process, for ``--minutes``
(256x256 crops, flips, scale and contrast jitter); its best epoch is picked on 16 training-side
images, then it is scored on the held-out fifth. Beside them, on the same images: segscope's
``watershed_instances`` and the pipeline a user would write with scikit-image (Otsu, distance
transform, h-maxima markers, watershed). Reported: mask AP (COCO rules), AP50, precision, recall,
F1 and TP/(TP+FP+FN) at IoU 0.5, PQ, seconds per image and peak memory, then F1 and PQ by kind
of image (fluorescence, stained histology, bright-field: ``segscope.microscopy.imaging_modality``
decides from the pixels). A family with a test-time flip (``stardist``) is scored without it, as
the peers run, and with it, as its zoo model runs by default (the row "+ flip"). A picture of
held-out predictions next to the truth is written to ``--out``.

``--peers stardist_tf,cellpose`` trains the peers users pick beside them, from scratch, with the
same images and budget: StarDist as its authors ship it (TensorFlow) and Cellpose 3 (in its own
environment, ``.venv-cellpose``, which ``make bench-deep`` makes; see ``peers/cellpose_peer.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from deep_common import run_in_process

# stardist: a U-Net of 24-192 channels and a 64-channel head, half the work of the zoo's 32-256 and
# 128 per step; in 30 minutes it took 1.9 times the steps and scored best on the validation images
# (F1 0.893, against 0.882 for 16-128 channels; see the README's rows).
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "stardist": {"n_rays": 32, "base_width": 24, "depth": 3, "head_width": 64, "grid": 2},
    "panoptic_deeplab": {"backbone": "resnet18", "center_sigma": 4.0},
    "maskrcnn": {"backbone": "resnet18_fpn", "input_size": None, "anchor_sizes": [8, 16, 32, 64, 128],
                 "proposals": 512, "max_detections": 400},
}
# Mask R-CNN from scratch diverges at AdamW's 1e-3 more easily than a dense network: a smaller step.
LEARNING_RATES = {"panoptic_deeplab": 1e-3, "maskrcnn": 3e-4}
# Data settings a family trains best with: star-convex polygons want each image on its own scale
# (percentiles) and stain variation; the others keep the dataset normalisation they were tuned with.
DATA_OPTIONS: dict[str, dict[str, Any]] = {"stardist": {"normalise": "percentile", "stain": 0.1}}
HEADLINE = ("AP", "AP50", "precision@0.5", "recall@0.5", "f1@0.5", "accuracy@0.5", "pq@0.5")
BY_TYPE = ("f1@0.5", "pq@0.5")


def split(root: Path, out: Path) -> tuple[Path, list[str]]:
    """Link the training four fifths into ``out/train`` (no copies); return it and the held-out ids."""
    ids = sorted(p.stem for p in (root / "images").glob("*.png"))
    held_out = ids[4::5]
    keep = sorted(set(ids) - set(held_out))
    for part in ("images", "labels"):
        folder = out / "train" / part
        folder.mkdir(parents=True, exist_ok=True)
        for stem in keep:
            link = folder / f"{stem}.png"
            if not link.exists():
                link.symlink_to((root / part / f"{stem}.png").resolve())
    return out / "train", held_out


def score(segment: Any, root: Path, ids: list[str]) -> dict[str, Any]:
    """Score a function (image, stem) -> instance labels on the given ids."""
    from segscope import imread
    from segscope.io import read_label_png
    from segscope.metrics import Evaluator
    from segscope.microscopy import imaging_modality

    evaluator = Evaluator(task="instance")
    by_type: dict[str, Any] = {}
    seconds = 0.0
    for stem in ids:
        image = imread(root / "images" / f"{stem}.png")
        truth = read_label_png(root / "labels" / f"{stem}.png")
        start = time.perf_counter()
        predicted = segment(image, stem)
        seconds += time.perf_counter() - start
        evaluator.update(predicted, truth, name=stem)
        kind = imaging_modality(image)
        by_type.setdefault(kind, Evaluator(task="instance")).update(predicted, truth, name=stem)
    report = evaluator.compute()
    types = {kind: {**{k: e.compute()[k] for k in BY_TYPE}, "images": len(e)}
             for kind, e in sorted(by_type.items())}
    return {**{k: report[k] for k in HEADLINE}, "seconds_per_image": seconds / len(ids), "by_type": types}


def train_and_score(config_dict: dict[str, Any], result_path: str, root: str, held_out: list[str]) -> None:
    """In a fresh process: train one model, then score its best checkpoint on the held-out fifth."""
    from segscope.infer import InstanceSegmenter
    from segscope.train import TrainConfig, train

    result = train(TrainConfig.from_dict(config_dict), progress=False)
    segmenter = InstanceSegmenter.from_checkpoint(result.checkpoint)
    # A family that averages mirror images at test time (``flip`` among its decoding settings) is
    # scored both ways: without, as the peers run, and with, as its zoo model runs by default.
    flips = "flip" in getattr(segmenter, "decoded_by", ())
    options = {"flip": False} if flips else {}
    scores = score(lambda image, stem: segmenter.segment(image, **options), Path(root), held_out)
    flipped = (score(lambda image, stem: segmenter.segment(image, flip=True), Path(root), held_out)
               if flips else None)
    out = {
        "model": config_dict["model"]["name"],
        **scores,
        "with_flip": flipped,
        "best_val_f1": result.best_score,
        "best_epoch": result.best_epoch,
        "epochs": result.epochs,
        "steps": result.steps,
        "train_minutes": result.seconds / 60,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "checkpoint": str(result.checkpoint),
    }
    Path(result_path).write_text(json.dumps(out, indent=2))


def _rgb(image: np.ndarray) -> np.ndarray:
    """Every DSB2018 picture as three channels (grey repeated, alpha dropped), for the peers."""
    return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]


def train_stardist_peer(config_dict: dict[str, Any], result_path: str, root: str, held_out: list[str],
                        train_root: str) -> None:
    """In a fresh process: the StarDist package (TensorFlow) trained from scratch with its own
    defaults (32 rays, grid 2, its U-Net, its DSB2018 example's flips, rotations and intensity
    jitter) until the time budget, its thresholds optimised on its validation images as its
    example does, then scored on the held-out fifth like the others."""
    import tensorflow as tf
    from csbdeep.utils import normalize
    from stardist.models import Config2D, StarDist2D

    import segscope
    from segscope.io import read_label_png, write_label_png

    tf.config.threading.set_intra_op_parallelism_threads(2)
    minutes = float(config_dict["schedule"]["max_minutes"])
    holdout = int(config_dict["data"]["holdout"])
    images_dir, labels_dir = Path(train_root) / "images", Path(train_root) / "labels"
    stems = sorted(p.stem for p in images_dir.glob("*.png"))

    def prepare(image: np.ndarray) -> np.ndarray:
        """StarDist's own normalisation: each image between its 1st and 99.8th percentiles."""
        return normalize(_rgb(image).astype(np.float32), 1, 99.8, axis=(0, 1, 2))

    X = [prepare(segscope.imread(images_dir / f"{s}.png")) for s in stems]
    Y = [read_label_png(labels_dir / f"{s}.png").astype(np.int32) for s in stems]
    (X_train, Y_train), (X_val, Y_val) = (X[:-holdout], Y[:-holdout]), (X[-holdout:], Y[-holdout:])

    rng = np.random.default_rng(0)

    def augment(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # StarDist's example augmenter: a random rot90 and flips, intensity scale and shift.
        k = int(rng.integers(4))
        x, y = np.rot90(x, k, axes=(0, 1)), np.rot90(y, k)
        for axis in (0, 1):
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis)
        x = x * rng.uniform(0.6, 2) + rng.uniform(-0.2, 0.2)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)

    crop = int(config_dict["data"]["crop"])
    conf = Config2D(n_rays=32, grid=(2, 2), n_channel_in=3, train_patch_size=(crop, crop),
                    train_batch_size=int(config_dict["optim"]["batch_size"]), train_tensorboard=False)
    work = Path(config_dict["output"])
    model = StarDist2D(conf, name="stardist_peer", basedir=str(work))
    model.prepare_for_training()
    start = time.perf_counter()

    class TimeBox(tf.keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if time.perf_counter() - start > minutes * 60:
                self.model.stop_training = True

    steps_per_epoch = 50
    model.callbacks.append(TimeBox())
    history = model.train(X_train, Y_train, validation_data=(X_val, Y_val), augmenter=augment,
                          epochs=100_000, steps_per_epoch=steps_per_epoch)
    train_seconds = time.perf_counter() - start
    model.optimize_thresholds(X_val, Y_val)
    epochs = len(history.history["loss"])
    predicted: dict[str, np.ndarray] = {}

    def segment(image: np.ndarray, stem: str) -> np.ndarray:
        predicted[stem] = model.predict_instances(prepare(image))[0]
        return predicted[stem]

    scores = score(segment, Path(root), held_out)
    kept = work / "labels"  # the held-out labels, for the picture; written outside the timing
    kept.mkdir(parents=True, exist_ok=True)
    for stem, labels in predicted.items():
        write_label_png(kept / f"{stem}.png", labels)
    out = {"model": "StarDist (TensorFlow, peer)", **scores, "epochs": epochs,
           "steps": epochs * steps_per_epoch, "train_minutes": train_seconds / 60,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    Path(result_path).write_text(json.dumps(out, indent=2))


CELLPOSE_PYTHON = Path(__file__).resolve().parents[1] / ".venv-cellpose" / "bin" / "python"


def train_cellpose_peer(config_dict: dict[str, Any], result_path: str, root: str, held_out: list[str],
                        train_root: str) -> None:
    """Cellpose 3 from scratch, in its own environment (``peers/cellpose_peer.py``, made by
    ``make bench-deep``): its label PNGs of the held-out images are scored here like the rest."""
    import subprocess

    from segscope.io import read_label_png

    python = Path(os.environ.get("SEGSCOPE_CELLPOSE_PYTHON", CELLPOSE_PYTHON))
    if not python.is_file():
        raise FileNotFoundError(f"{python}: no Cellpose environment; `make bench-deep` makes it (or set "
                                "SEGSCOPE_CELLPOSE_PYTHON)")
    work = Path(config_dict["output"])
    work.mkdir(parents=True, exist_ok=True)
    (work / "held_out.txt").write_text("\n".join(held_out))
    script = Path(__file__).resolve().parent / "peers" / "cellpose_peer.py"
    minutes, holdout = config_dict["schedule"]["max_minutes"], config_dict["data"]["holdout"]
    subprocess.run([str(python), str(script), train_root, root, str(work / "held_out.txt"), str(minutes),
                    str(work), str(holdout)], check=True)
    run = json.loads((work / "run.json").read_text())
    scores = score(lambda image, stem: read_label_png(work / "labels" / f"{stem}.png"), Path(root), held_out)
    scores["seconds_per_image"] = run["seconds_per_image"]  # Cellpose's own inference, timed in its process
    out = {"model": "Cellpose 3 (peer)", **scores, "epochs": run["epochs"], "steps": run["steps"],
           "train_minutes": run["train_minutes"]}
    Path(result_path).write_text(json.dumps(out, indent=2))


PEERS = {"stardist_tf": train_stardist_peer, "cellpose": train_cellpose_peer}
"""Peers trained side by side (``--peers``), each in its own process with the same data and budget."""


def skimage_watershed(image: np.ndarray) -> np.ndarray:
    """What a user writes with scikit-image: Otsu, distance transform, h-maxima markers, watershed."""
    from scipy import ndimage
    from skimage import color, filters, measure, morphology, segmentation

    grey = color.rgb2gray(image[..., :3]) if image.ndim == 3 else image.astype(float)
    mask = grey > filters.threshold_otsu(grey)
    if mask.mean() > 0.5:  # objects are the smaller side (bright-field images have dark nuclei)
        mask = ~mask
    mask = ndimage.binary_fill_holes(mask)
    distance = ndimage.distance_transform_edt(mask)
    markers = measure.label(morphology.h_maxima(distance, 1))
    labels = segmentation.watershed(-distance, markers, mask=mask)
    return morphology.remove_small_objects(labels, max_size=19)  # drops objects under 20 pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--models", default="stardist,panoptic_deeplab,maskrcnn")
    parser.add_argument("--peers", default="", help=f"peers trained beside them: {', '.join(PEERS)}")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--mixed-precision", default="cuda",
                        help="segscope's models: cuda (float16 on CUDA only), bf16 (also on CPU) or off")
    parser.add_argument("--out", type=Path, default=Path("bench_out/dsb2018"))
    parser.add_argument("--reuse", action="store_true", help="report the runs already in --out, train none")
    parser.add_argument("--limit", type=int, help="score only the first N held-out images (a quick check)")
    args = parser.parse_args()
    root = args.data / "dsb2018" / "train"
    if not root.is_dir():
        raise SystemExit(f"DSB2018 not found under {args.data}")
    args.out.mkdir(parents=True, exist_ok=True)
    train_root, held_out = split(root, args.out)
    held_out = held_out[: args.limit]
    print(f"{len(held_out)} held-out images, {len(list((train_root / 'images').iterdir()))} for training")

    import segscope

    results: dict[str, dict[str, Any]] = {}
    for name, fn in (
        ("watershed_instances", lambda image, stem: segscope.segment(image, "watershed_instances")),
        ("skimage watershed (peer)", lambda image, stem: skimage_watershed(image)),
    ):
        results[name] = score(fn, root, held_out)
        print(f"  {name}: F1@0.5 {results[name]['f1@0.5']:.3f}", flush=True)

    for model in [m for m in args.models.split(",") if m]:
        saved = args.out / f"{model}.json"
        config = {
            "model": {"name": model, "options": MODEL_OPTIONS.get(model, {})},
            "data": {"train_images": str(train_root / "images"), "train_labels": str(train_root / "labels"),
                     "num_classes": 1, "class_names": ["nucleus"], "holdout": 16, "crop": args.crop,
                     "scale": (0.7, 1.4), "vflip": True, "colour": 0.2, **DATA_OPTIONS.get(model, {})},
            "optim": {"batch_size": args.batch_size, "lr": LEARNING_RATES.get(model, 1e-3),
                      "mixed_precision": args.mixed_precision},
            "schedule": {"epochs": 10_000, "max_minutes": args.minutes},
            "output": str(args.out / model),
            "seed": 0,
        }
        if not (args.reuse and saved.exists()):
            print(f"training {model} for {args.minutes:g} min ...", flush=True)
            run_in_process(config, saved, [str(root), held_out], target=train_and_score)
        results[model] = json.loads(saved.read_text())
        r = results[model]
        print(f"  {model}: F1@0.5 {r['f1@0.5']:.3f} ({r['steps']} steps)", flush=True)

    for peer in [p for p in args.peers.split(",") if p]:
        saved = args.out / f"{peer}.json"
        config = {"model": {"name": peer}, "data": {"holdout": 16, "crop": args.crop},
                  "optim": {"batch_size": args.batch_size}, "schedule": {"max_minutes": args.minutes},
                  "output": str(args.out / peer)}
        if not (args.reuse and saved.exists()):
            print(f"training the peer {peer} for {args.minutes:g} min ...", flush=True)
            run_in_process(config, saved, [str(root), held_out, str(train_root)], target=PEERS[peer])
        results[peer] = json.loads(saved.read_text())
        print(f"  {peer}: F1@0.5 {results[peer]['f1@0.5']:.3f} ({results[peer]['steps']} steps)", flush=True)

    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"\n{'method':26s} " + " ".join(f"{k.removesuffix('@0.5'):>9s}" for k in HEADLINE)
          + f" {'s/img':>7s} {'peak MB':>8s} {'steps':>6s}")
    # The same trained model with its test-time flip is a row of its own.
    rows = {}
    for name, r in results.items():
        rows[name] = r
        if r.get("with_flip"):
            rows[f"{name} + flip"] = {**r, **r["with_flip"]}
    for name, r in rows.items():
        figures = " ".join(f"{r[k]:9.3f}" for k in HEADLINE)
        peak = f"{r['peak_rss_mb']:8.0f}" if "peak_rss_mb" in r else f"{'-':>8s}"
        steps = f"{r['steps']:6d}" if "steps" in r else f"{'-':>6s}"
        print(f"{name:26s} {figures} {r['seconds_per_image']:7.3f} {peak} {steps}")
    print_by_type(rows)
    deep = [m for m in results if "checkpoint" in results[m]]
    if deep:
        best = max(deep, key=lambda m: results[m]["f1@0.5"])
        saved = [p for p in PEERS if p in results and (args.out / p / "labels").is_dir()]
        peer = max(saved, key=lambda p: results[p]["f1@0.5"]) if saved else None
        picture(results[best]["checkpoint"], best, root, held_out, args.out / "dsb2018_heldout.png",
                peer=(results[peer]["model"], args.out / peer / "labels") if peer else None)


def print_by_type(results: dict[str, dict[str, Any]]) -> None:
    """F1 and PQ at IoU 0.5 per kind of image, one row per method."""
    counts: dict[str, int] = {}
    for r in results.values():
        for kind, figures in r.get("by_type", {}).items():
            counts[kind] = figures["images"]
    kinds = sorted(counts)
    print("\nby kind of image, F1@0.5 / PQ (" + ", ".join(f"{k}: {counts[k]} images" for k in kinds) + ")")
    print(f"{'method':26s} " + " ".join(f"{k:>15s}" for k in kinds))
    for name, r in results.items():
        types = r.get("by_type", {})
        cells = [f"{types[k]['f1@0.5']:.3f} / {types[k]['pq@0.5']:.3f}" if k in types else "-" for k in kinds]
        print(f"{name:26s} " + " ".join(f"{c:>15s}" for c in cells))


def picture(checkpoint: str, name: str, root: Path, held_out: list[str], path: Path,
            peer: tuple[str, Path] | None = None) -> None:
    """One row per kind of image (the first held-out image of each, as ``imaging_modality`` sees
    it): image, truth, the best deep model, and the best peer whose held-out labels were saved (each
    peer saves them), or else ``watershed_instances``."""
    import segscope
    from segscope.infer import InstanceSegmenter
    from segscope.io import read_label_png
    from segscope.microscopy import MODALITIES, imaging_modality

    segmenter = InstanceSegmenter.from_checkpoint(checkpoint)
    first: dict[str, str] = {}
    for stem in held_out:
        kind = imaging_modality(segscope.imread(root / "images" / f"{stem}.png"))
        first.setdefault(kind, stem)
        if len(first) == len(MODALITIES):
            break
    other = peer[0] if peer else "watershed_instances"
    tiles, titles = [], []
    for kind in (k for k in MODALITIES if k in first):
        stem = first[kind]
        image = segscope.imread(root / "images" / f"{stem}.png")
        truth = read_label_png(root / "labels" / f"{stem}.png")
        found = segmenter.segment(image)
        second = read_label_png(peer[1] / f"{stem}.png") if peer else \
            segscope.segment(image, "watershed_instances").labels
        shown = [(image, f"{kind}: {stem[:8]}"), (truth, f"truth ({len(np.unique(truth)) - 1})"),
                 (found, f"{name} ({len(found)})"), (second, f"{other} ({len(np.unique(second)) - 1})")]
        for k, (seg, title) in enumerate(shown):
            tile = segscope.overlay(image, seg, alpha=0.5) if k else segscope.viz.to_display(image)
            tiles.append(_to_height(tile, 360))  # images differ in size; rows line up this way
            titles.append(title)
    segscope.panel(tiles, titles=titles, columns=4, path=path)
    print(f"\npicture: {path} (rows: {', '.join(first)}; columns: image, truth, {name}, {other})")


def _to_height(picture: np.ndarray, height: int) -> np.ndarray:
    import cv2

    width = round(picture.shape[1] * height / picture.shape[0])
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)


if __name__ == "__main__":
    main()
