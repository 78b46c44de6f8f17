"""Rebuild zoo models from their cards: ``python -m segscope.zoo.build [NAME ...]`` (``make zoo``).

For each card: split the data as ``training.split`` says, train with ``training.recipe`` (a
:class:`~segscope.trainconfig.TrainConfig` dict; ``{data}`` and ``{work}`` in its paths stand for the
data folder and a work folder) for its fixed number of epochs, so its step count is fixed too; keep
the checkpoint that scored best on the validation data, with the inference defaults of the card's
``decoding`` (``{"flip": 1}``: test-time flips unless a caller says otherwise) added to the
checkpoint's own, after choosing any setting ``decoding_search`` lists on the training images
(:func:`searched_decoding`); store its weights in the smallest precision (int8, then fp16, else fp32) whose
held-out figure is worse than fp32's by less than the evaluation's ``precision_tolerance``
(default 0.001; "worse" is lower unless the evaluation declares ``lower_is_better``); score the
held-out data with the card's ``evaluation`` strategy; time inference on this machine (the
evaluation strategy may say how, in ``SPEEDS``); and rewrite the card (figures, steps and images
seen, sha256, size, speed). Training resumes from the work folder's ``last.pt`` when a
run was interrupted (the same command again); ``--minutes`` time-boxes each call, so a long recipe
can be trained in several sittings with the same result. ``--rescore`` scores the shipped weights
again and rewrites the figures, for when how a model predicts or is scored changed (a changed
``decoding`` is written into the shipped weights first); ``--store
int8`` stores shipped weights in a smaller precision when their figure, scored again, shows it
loses nothing measurable.

A card declares its split and its evaluation by naming one of the strategies below; adding a model
adds a card (and its weights) and touches nothing here unless it needs a new strategy.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from segscope.atomic import atomic_write_bytes
from segscope.checkpoint import PRECISIONS

from . import ZOO_DIR, Figure, ZooCard, sha256_of, verified_weights, zoo_cards

DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


# ----------------------------------------------------------------------------------- splits
def _split_by_stems(spec: dict[str, Any], data: Path, work: Path) -> dict[str, Path]:
    """Pairs of one image folder and one label folder split by file stem: ``held_out`` stems are
    the validation (and held-out) set, the rest train. Links, not copies."""
    images, labels = data / spec["images"], data / spec["labels"]
    held = set(spec["held_out"])
    folders = {}
    for part in ("train", "val"):
        for kind, source in (("images", images), ("labels", labels)):
            target = work / "split" / part / kind
            target.mkdir(parents=True, exist_ok=True)
            folders[f"{part}_{kind}"] = target
            for path in sorted(source.iterdir()):
                if (path.stem in held) == (part == "val"):
                    link = target / path.name
                    if not link.exists():
                        link.symlink_to(path.resolve())
    return folders


def _split_every_nth(spec: dict[str, Any], data: Path, work: Path) -> dict[str, Path]:
    """One image folder and one label folder; in name order, every ``n``-th pair from the
    ``offset``-th (default n - 1) is held out, as ``benchmarks/dsb2018.py`` holds out its fifth."""
    n = int(spec["n"])
    stems = sorted(p.stem for p in (data / spec["images"]).iterdir())
    held = stems[int(spec.get("offset", n - 1))::n]
    return _split_by_stems({**spec, "held_out": held}, data, work)


def _split_by_folders(spec: dict[str, Any], data: Path, work: Path) -> dict[str, Path]:
    """The dataset's own train and validation folders."""
    return {key: data / value for key, value in spec["folders"].items()}


def _split_colour_masks(spec: dict[str, Any], data: Path, work: Path) -> dict[str, Path]:
    """Areas (sub-folders of ``root``, each with ``images`` and ``masks`` folders) split whole into
    train and validation, as the Dubai aerial set is held out by tile. Colour masks become label
    PNGs through ``colours`` ({"#RRGGBB": class}); a colour not listed is refused by name."""
    from segscope import imread
    from segscope.io import write_label_png

    lut = {int(code.lstrip("#"), 16): int(value) for code, value in spec["colours"].items()}
    folders = {}
    for part in ("train", "val"):
        images_out, labels_out = work / "split" / part / "images", work / "split" / part / "labels"
        images_out.mkdir(parents=True, exist_ok=True)
        labels_out.mkdir(parents=True, exist_ok=True)
        folders[f"{part}_images"], folders[f"{part}_labels"] = images_out, labels_out
        for area in spec[part]:
            masks = {p.stem: p for p in (data / spec["root"] / area / spec.get("masks", "masks")).iterdir()}
            for image in sorted((data / spec["root"] / area / spec.get("images", "images")).iterdir()):
                if image.stem not in masks:
                    continue
                stem = f"{area}_{image.stem}"
                link = images_out / f"{stem}{image.suffix}"
                if not link.exists():
                    link.symlink_to(image.resolve())
                target = labels_out / f"{stem}.png"
                if target.exists():
                    continue
                rgb = imread(masks[image.stem])[..., :3].astype(np.int64)
                codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
                found, inverse = np.unique(codes, return_inverse=True)
                unknown = [f"#{c:06X}" for c in found.tolist() if c not in lut]
                if unknown:
                    raise ValueError(f"{masks[image.stem]}: colours {unknown} are not in the card's colours")
                classes = np.array([lut[c] for c in found.tolist()], np.uint8)[inverse.reshape(codes.shape)]
                write_label_png(target, classes)
    return folders


NOT_ANNOTATED = 65535
"""What the ``objects`` split writes where a dataset leaves pixels unlabelled (the recipe's
``ignore_index``)."""


def _write_objects(group: list[Any], folders: tuple[Path, Path], *, order: int) -> None:
    """One image and the instance map of its objects in ``group``."""
    from segscope.io import imwrite, write_label_png

    name = group[0].name.replace("/", "_")
    labels = np.zeros(group[0].mask.shape, np.uint16)
    labels[group[0].ignore] = NOT_ANNOTATED
    for k, item in enumerate(group, start=1):
        labels[item.mask] = k
    imwrite(folders[0] / f"{order:010d}_{name}.png", group[0].image)
    write_label_png(folders[1] / f"{order:010d}_{name}.png", labels)


def _split_objects(spec: dict[str, Any], data: Path, work: Path) -> dict[str, Path]:
    """Objects for a click model (:mod:`segscope.zoo.objects`): the ``train`` sources' objects as
    images with instance label PNGs (the objects of one image in one map; 0 background,
    :data:`NOT_ANNOTATED` unlabelled), named from a hash so that the sources mix in name order (a
    recipe's ``holdout`` then takes images of every source); the ``held_out`` sources' objects one
    per pair (id 1), the held-out set the card is scored on."""
    import hashlib
    import itertools

    from .objects import objects_from

    folders = {}
    for part, key in (("train", "train"), ("val", "held_out")):
        out = (work / "split" / part / "images", work / "split" / part / "labels")
        folders[f"{part}_images"], folders[f"{part}_labels"] = out
        done = work / "split" / part / "complete"
        if done.exists():
            continue
        for folder in out:
            folder.mkdir(parents=True, exist_ok=True)
        sources = spec[key]
        for s, source in enumerate(sources):
            if "_" in source["name"] or "/" in source["name"]:  # names are <order>_<source>_<object>
                raise ValueError(f"object source {source['name']!r}: no '_' or '/' in its name, which "
                                 "starts the file names")
            written = 0
            group: list[Any] = []
            for item in itertools.chain(objects_from(source, data), [None]):
                # Objects of one image share a map in training; held-out objects are scored one by one.
                if item is not None and group and part == "train" and item.image is group[0].image:
                    group.append(item)
                    continue
                if group:
                    digest = hashlib.sha1(group[0].name.replace("/", "_").encode()).hexdigest()
                    order = int(digest[:8], 16) if part == "train" else written * len(sources) + s
                    _write_objects(group, out, order=order)
                    written += 1
                group = [item] if item is not None else []
        done.touch()
    return folders


SPLITS: dict[str, Callable[[dict[str, Any], Path, Path], dict[str, Path]]] = {
    "stems": _split_by_stems, "every_nth": _split_every_nth, "folders": _split_by_folders,
    "colour_masks": _split_colour_masks, "objects": _split_objects}


# ------------------------------------------------------------------------------ evaluation
def validation_pairs(folders: dict[str, Path]) -> list[tuple[Path, Path]]:
    """(image, label) of each held-out pair a split wrote, paired by file stem, in name order."""
    labels = {p.stem: p for p in folders["val_labels"].iterdir()}
    return [(p, labels[p.stem]) for p in sorted(folders["val_images"].iterdir()) if p.stem in labels]


def _rand_f_cells(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> dict[str, float]:
    """Foreground-restricted Rand F of the cells (4-connected components of the ``cell`` class)
    and the pixel error, as the ISBI 2012 challenge scores them (without border thinning)."""
    from scipy import ndimage

    import segscope
    from segscope.io import read_label_png
    from segscope.metrics import rand_f_score

    cell = int(spec["cell_value"])
    rand, errors = [], []
    for image_path, label_path in validation_pairs(folders):
        predicted = segscope.segment(segscope.imread(image_path), str(model)).class_map() == 1
        truth = read_label_png(label_path) == cell
        errors.append(float(np.mean(predicted != truth)))
        rand.append(rand_f_score(ndimage.label(predicted)[0], ndimage.label(truth)[0]))
    return {"rand_f": float(np.mean(rand)), "pixel_error": float(np.mean(errors))}


def _miou(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> dict[str, float]:
    """Pooled mean IoU over the validation pairs (the card's ``ignore`` value not scored)."""
    import segscope
    from segscope.io import read_label_png
    from segscope.metrics import Evaluator

    evaluator = Evaluator(task="semantic", num_classes=int(spec["num_classes"]),
                          ignore_index=spec.get("ignore"))
    for image_path, label_path in validation_pairs(folders):
        evaluator.update(segscope.segment(segscope.imread(image_path), str(model)).class_map(),
                         read_label_png(label_path))
    return {"miou": float(evaluator.compute()["miou"])}


def _instance_f1(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> dict[str, float]:
    """F1 and panoptic quality at IoU 0.5 over the validation pairs (instance label PNGs), pooled."""
    import segscope
    from segscope.io import read_label_png
    from segscope.metrics import Evaluator

    evaluator = Evaluator(task="instance")
    for image_path, label_path in validation_pairs(folders):
        evaluator.update(segscope.segment(segscope.imread(image_path), str(model)),
                         read_label_png(label_path), name=image_path.stem)
    report = evaluator.compute()
    return {"f1": float(report["f1@0.5"]), "pq": float(report["pq@0.5"])}


def _bsds_image(job: tuple[Path, Path, Any, int]) -> tuple[Any, Any]:
    """One image's BSDS counts: the thinned boundary map's sweep (boundaries), and the
    hierarchy's 99-level sweep (regions only: covering, PRI, VOI)."""
    import torch

    import segscope
    from segscope.edgemaps import thin_boundaries
    from segscope.infer import predictor_for
    from segscope.metrics import bsds_image, sweep_soft_boundaries

    model, image_path, truth, thresholds = job
    torch.set_num_threads(1)
    predictor: Any = predictor_for(model)  # an edge network's BoundaryPredictor
    image = segscope.imread(image_path)
    soft = predictor.boundaries(image, thin=False)
    edges = bsds_image(sweep_soft_boundaries(thin_boundaries(soft), thresholds), truth, regions=False)
    return edges, bsds_image(predictor.map_hierarchy(soft, image=image).sweep(99), truth, boundaries=False)


def _bsds(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> dict[str, float]:
    """The BSDS500 protocol over the validation images and their ground-truth ``.mat`` files: the
    boundary ODS and OIS F of the thinned boundary map (at ``thresholds`` levels), and region
    covering, PRI and VOI of its hierarchy at the dataset's best level (99 levels). Two processes
    share the images (the boundary matching dominates the time)."""
    from concurrent.futures import ProcessPoolExecutor

    from segscope.io import read_bsds_groundtruth
    from segscope.metrics import bsds_summary

    # Truths are read here: the .mat reader's helper process is not started from inside the workers.
    thresholds = int(spec.get("thresholds", 99))
    jobs = [(model, image, read_bsds_groundtruth(truth), thresholds)
            for image, truth in validation_pairs(folders)]
    with ProcessPoolExecutor(2) as pool:
        found = list(pool.map(_bsds_image, jobs))
    edge, ucm = bsds_summary([e for e, _ in found]), bsds_summary([u for _, u in found])
    return {"edge_ods": edge.boundary["ods_f"], "edge_ois": edge.boundary["ois_f"],
            "edge_ap": edge.boundary["ap"], "covering": ucm.covering["ods"], "pri": ucm.rand_voi["pri_ods"],
            "voi": ucm.rand_voi["voi_ods"]}


def _volume_scores(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> dict[str, float]:
    """Per-case Dice and HD95 of each foreground class over the validation volumes (labels rounded
    to classes), averaged over cases, then over classes (``mean_dice``, ``mean_hd95``)."""
    import segscope
    from segscope.io.volumes import read_label_volume, read_volume
    from segscope.metrics import class_scores, mean_over_cases

    num_classes = int(spec["num_classes"])
    rows = []
    for image_path, label_path in validation_pairs(folders):
        volume = read_volume(image_path)
        truth = read_label_volume(label_path)
        prediction = segscope.segment(volume, str(model)).class_map()
        rows.append(class_scores(prediction, truth, num_classes=num_classes, spacing=volume.spacing))
    return mean_over_cases(rows, spec.get("class_names") or [str(c) for c in range(1, num_classes)])


def _click_objects(folders: dict[str, Path], ignore: int
                   ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(source, image, object, unlabelled) of each held-out object the ``objects`` split wrote (its
    file name is ``<order>_<source>_<object>``)."""
    import segscope
    from segscope.io import read_label_png

    found = []
    for image_path, label_path in validation_pairs(folders):
        labels = read_label_png(label_path)
        source = image_path.stem.split("_")[1]
        found.append((source, segscope.imread(image_path), labels == 1, labels == ignore))
    return found


def prompt_session(method: str, *, refine: bool = True, click_radius: int = 3, **options: Any) -> Any:
    """``run(image, clicks, previous) -> mask`` (:data:`segscope.metrics.clicks.Run`) through
    :func:`segscope.prompt`, as a user of segscope corrects an object: every click so far and, with
    ``refine``, the mask the last click gave."""
    import segscope

    def run(image: np.ndarray, clicks: list[tuple[int, int, bool]], previous: np.ndarray) -> np.ndarray:
        points = [(r, c, 1 if positive else 0) for r, c, positive in clicks]
        mask = previous.astype(np.int32) if refine and previous.any() else None
        seg = segscope.prompt(image, points=points, mask=mask, method=method, click_radius=click_radius,
                              **options)
        found: np.ndarray = seg.labels == 1
        return found

    return run


def _clicks(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> dict[str, float]:
    """The simulated user's clicks (:mod:`segscope.metrics.clicks`, at most 20 per object) on each
    held-out object, through :func:`segscope.prompt`: NoC@85 and NoC@90 over all, and NoC@90 by
    source."""
    from segscope.metrics.clicks import noc, simulate

    run = prompt_session(str(model))
    by_source: dict[str, list[int]] = {}
    noc85, noc90 = [], []
    for source, image, truth, ignore in _click_objects(folders, int(spec["ignore"])):
        ious, _ = simulate(run, image, truth, ignore)
        noc85.append(noc(ious, 0.85))
        noc90.append(noc(ious, 0.90))
        by_source.setdefault(source, []).append(noc90[-1])
    return {"noc85": float(np.mean(noc85)), "noc90": float(np.mean(noc90)),
            **{f"noc90_{k}": float(np.mean(v)) for k, v in by_source.items()}}


EVALUATIONS: dict[str, Callable[[Path, dict[str, Path], dict[str, Any]], dict[str, float]]] = {
    "rand_f_cells": _rand_f_cells, "miou": _miou, "instance_f1": _instance_f1, "bsds": _bsds,
    "volume_scores": _volume_scores, "clicks": _clicks}


# ----------------------------------------------------------------------------------- build
def filled_recipe(value: Any, data: Path, work: Path) -> Any:
    """A card's recipe (or any part of it) with ``{data}`` and ``{work}`` in its text filled in."""
    if isinstance(value, str):
        return value.format(data=data, work=work)
    if isinstance(value, dict):
        return {k: filled_recipe(v, data, work) for k, v in value.items()}
    if isinstance(value, list):
        return [filled_recipe(v, data, work) for v in value]
    return value


def card_decoding(training: dict[str, Any]) -> dict[str, float]:
    """A card's ``training.decoding`` (inference defaults), as checkpoints store it: numbers."""
    return {k: float(v) for k, v in training.get("decoding", {}).items()}


def searched_decoding(checkpoint: Path, training: dict[str, Any], folders: dict[str, Path],
                      work: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """The card's ``decoding`` with each setting ``training.decoding_search`` lists (``{"name":
    [candidates]}``) chosen on the *training* pairs by the card's evaluation, so the held-out
    data choose nothing; and the record of that choice (``chosen``, and each candidate's figure).

    Settings are searched jointly (every combination); ties go to the earlier candidate. A
    candidate ``null`` leaves the setting out (the model's own default, such as no seeds). Without
    ``decoding_search``, the card's decoding as it is and an empty record.
    """
    import itertools

    decoding = card_decoding(training)
    search = training.get("decoding_search") or {}
    if not search:
        return decoding, {}
    evaluation = training["evaluation"]
    key, score = evaluation["metric"], EVALUATIONS[evaluation["strategy"]]
    sign = -1.0 if evaluation.get("lower_is_better") else 1.0
    if not {"train_images", "train_labels"} <= set(folders):
        raise ValueError(f"decoding_search: the {training['split']['strategy']!r} split has no training "
                         "pairs to search on")
    on_training = {"val_images": folders["train_images"], "val_labels": folders["train_labels"]}
    work.mkdir(parents=True, exist_ok=True)
    tried: list[tuple[dict[str, float], float]] = []
    for values in itertools.product(*(search[name] for name in search)):
        candidate = {k: v for k, v in decoding.items() if k not in search}
        candidate.update({name: float(v) for name, v in zip(search, values, strict=True) if v is not None})
        store_checkpoint(checkpoint, work / "searched.pt", precision="fp32", decoding=candidate)
        tried.append((candidate, float(score(work / "searched.pt", on_training, evaluation)[key])))
    best, _ = max(tried, key=lambda t: sign * t[1])  # max keeps the first of equals
    record = {"chosen": {n: best.get(n) for n in search},
              "on": f"the {len(validation_pairs(on_training))} training pairs", "metric": key,
              "tried": [{**{n: c.get(n) for n in search}, key: round(v, 4)} for c, v in tried]}
    return best, record


def store_checkpoint(checkpoint_path: Path, target: Path, *, precision: str,
                     decoding: dict[str, float]) -> None:
    """The checkpoint without its training state, weights stored at ``precision``, with the
    card's ``decoding`` defaults (test-time flips, a threshold) added to its own."""
    from segscope.checkpoint import load_checkpoint, save_checkpoint

    saved = load_checkpoint(checkpoint_path)
    stored = dataclasses.replace(saved, training=None, decoding={**saved.decoding, **decoding})
    save_checkpoint(target, stored, precision=precision)


def smallest_precision(figures: dict[str, float], full: float, *, tolerance: float,
                       lower_is_better: bool = False) -> str:
    """The first of ``figures`` (precision: held-out figure, smallest storage first) that is
    worse than the fp32 figure ``full`` by less than ``tolerance``; ``"fp32"`` when none is.

    >>> smallest_precision({"int8": 0.612, "fp16": 0.6131}, 0.6132, tolerance=0.001)
    'fp16'
    >>> smallest_precision({"int8": 0.615, "fp16": 0.6131}, 0.6132, tolerance=0.001)
    'int8'
    >>> smallest_precision({"int8": 10.6, "fp16": 10.4}, 10.39, tolerance=0.1, lower_is_better=True)
    'fp16'
    """
    for precision, value in figures.items():
        loss = value - full if lower_is_better else full - value
        if loss < tolerance:
            return precision
    return "fp32"


def _smallest_for(evaluation: dict[str, Any], figures: dict[str, float], full: float) -> str:
    """:func:`smallest_precision` with the card evaluation's tolerance and direction."""
    return smallest_precision(figures, full, tolerance=float(evaluation.get("precision_tolerance", 1e-3)),
                              lower_is_better=bool(evaluation.get("lower_is_better", False)))


def _seconds_per_image(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> tuple[float, str]:
    """Seconds per held-out image (the first three, after one to warm up), and that in words with
    the sizes timed."""
    import segscope
    from segscope.io.volumes import Volume, is_volume_file, read_volume

    images = [read_volume(p) if is_volume_file(p) else segscope.imread(p)
              for p, _ in validation_pairs(folders)[:3]]
    segscope.segment(images[0], str(model))  # warm-up
    start = time.perf_counter()
    for image in images:
        segscope.segment(image, str(model))
    seconds = (time.perf_counter() - start) / len(images)
    spatial = [image.data.shape[:3] if isinstance(image, Volume) else image.shape[:2] for image in images]
    timed = " and ".join(sorted({"x".join(map(str, shape)) for shape in spatial}))
    return seconds, f"{seconds:.2f} s per {timed} image on this 2-core CPU (the first {len(images)} held out)"


def _seconds_per_click(model: Path, folders: dict[str, Path], spec: dict[str, Any]) -> tuple[float, str]:
    """Seconds per click on a 1-megapixel image (``spec["speed_image"]``'s top-left 1000x1000,
    three clicks given, as ``benchmarks/interactive.py --speed`` times it), and that in words."""
    import segscope

    run = prompt_session(str(model))
    image = segscope.imread(DEFAULT_DATA / spec["speed_image"])[:1000, :1000]
    clicks = [(500, 500, True), (520, 540, True), (430, 470, False)]
    empty = np.zeros(image.shape[:2], bool)
    run(image, clicks, empty)
    start = time.perf_counter()
    for _ in range(5):
        run(image, clicks, empty)
    seconds = (time.perf_counter() - start) / 5
    size = f"{image.shape[0]}x{image.shape[1]}"
    return seconds, f"{seconds:.3f} s per click on a {size} image on this 2-core CPU"


SPEEDS: dict[str, Callable[[Path, dict[str, Path], dict[str, Any]], tuple[float, str]]] = {
    "clicks": _seconds_per_click}
"""How a model is timed, by its evaluation strategy (default: seconds per held-out image)."""


def build(card: ZooCard, *, data: Path, work: Path, minutes: float | None = None) -> ZooCard | None:
    """Train ``card``'s recipe (resuming), score it and rewrite its weights and card; ``None``
    when ``minutes`` ran out first (nothing is written; the same call continues)."""
    from segscope.train import TrainConfig, train

    training = dict(card.training)
    folders = SPLITS[training["split"]["strategy"]](training["split"], data, work)
    recipe = filled_recipe(training["recipe"], data, work)
    # A recipe that sets ``holdout`` picks its epochs on training images it holds out, and the
    # split's validation images are only scored at the end.
    held_out_by_recipe = int(recipe["data"].get("holdout", 0)) > 0
    recipe["data"].update({k: str(v) for k, v in folders.items()
                           if not (held_out_by_recipe and k.startswith("val_"))})
    recipe["output"] = str(work / "run")
    config = TrainConfig.from_dict(recipe)
    last = work / "run" / "last.pt"
    result = train(config, resume=last if last.exists() else None, stop_after_minutes=minutes,
                   progress=True)
    if result.epochs < config.schedule.epochs:
        print(f"{card.name}: time box over at epoch {result.epochs} of {config.schedule.epochs}; "
              "run the same command to continue", flush=True)
        return None
    trained_minutes = float(result.history[-1]["seconds"]) / 60 if result.history else 0.0
    evaluation = training["evaluation"]
    score = EVALUATIONS[evaluation["strategy"]]
    decoding, searched = searched_decoding(result.checkpoint, training, folders, work / "decoding_search")
    if searched:
        settings = {**training.get("decoding", {}), **searched["chosen"]}
        training["decoding"] = {k: v for k, v in settings.items() if v is not None}  # null: left out
        training["decoding_searched"] = searched
    scored: dict[str, dict[str, float]] = {}
    for precision in PRECISIONS:  # each made, scored and kept aside
        store_checkpoint(result.checkpoint, work / f"{precision}.pt", precision=precision, decoding=decoding)
        scored[precision] = score(work / f"{precision}.pt", folders, evaluation)
    full = scored.pop("fp32")
    key = evaluation["metric"]
    chosen = _smallest_for(evaluation, {p: scored[p][key] for p in PRECISIONS[:0:-1]}, full[key])
    target = ZOO_DIR / card.weights
    atomic_write_bytes(target, (work / f"{chosen}.pt").read_bytes())  # the file scored, as it was
    figures = scored.get(chosen, full)
    crop = int(recipe["data"].get("crop", 256))
    batch = int(recipe.get("optim", {}).get("batch_size", 8))
    training.update({"steps": result.steps, "epochs": result.epochs,
                     "images_seen": result.steps * batch * int(recipe.get("optim", {}).get("accumulate", 1)),
                     "crop": crop, "minutes_here": round(trained_minutes, 1), "precision": chosen,
                     "fp32_figures": full,
                     "other_precisions": {p: f for p, f in scored.items() if p != chosen}})
    training.pop("fp16", None)  # cards before int8 storage said only whether weights were fp16
    training.pop("stored_from", None)  # describes weights made earlier and re-stored (--store)
    new = _with_figures(dataclasses.replace(card, training=training), figures, target, folders,
                        command=f"python -m segscope.zoo.build {card.name}")
    new.save()
    return new


def _with_figures(card: ZooCard, figures: dict[str, float], weights: Path, folders: dict[str, Path], *,
                  command: str, timed: bool = True) -> ZooCard:
    """``card`` with the held-out ``figures`` of ``weights``, their speed here (unless not
    ``timed``: the card's stays), sha256 and size."""
    evaluation = card.training["evaluation"]
    if not timed:
        return dataclasses.replace(card, figures=_figures(card, figures, command),
                                   sha256=sha256_of(weights), size_bytes=weights.stat().st_size)
    timing = SPEEDS.get(evaluation["strategy"], _seconds_per_image)
    seconds, description = timing(weights, folders, evaluation)
    return dataclasses.replace(
        card,
        figures=_figures(card, figures, command),
        speed={"seconds_per_image": round(seconds, 3), "description": description},
        sha256=sha256_of(weights), size_bytes=weights.stat().st_size)


def _figures(card: ZooCard, figures: dict[str, float], command: str) -> tuple[Figure, ...]:
    """The card's figures, measured again by ``command``. A peer's figure comes from the
    evaluation's ``peer`` or else stays as the card had it (``benchmarks/zoo.py --write-card``
    writes it there, with its command after ``; peer:``)."""
    evaluation = card.training["evaluation"]
    made = []
    for metric, value in figures.items():
        peer, peer_value = _peer(evaluation, metric)
        old = next((f for f in card.figures if f.metric == metric), None)
        how = command
        if peer is None and old is not None and old.peer is not None:
            peer, peer_value = old.peer, old.peer_value
            how += "; peer: " + old.command.split("; peer: ", 1)[1] if "; peer: " in old.command else ""
        made.append(Figure(metric=metric, value=round(value, 4), data=evaluation["data"], command=how,
                           peer=peer, peer_value=peer_value))
    return tuple(made)


def rescore(card: ZooCard, *, data: Path, work: Path) -> ZooCard:
    """Score the shipped weights again with the card's evaluation (after a change to how the
    model predicts or is scored) and rewrite the card's figures and speed; nothing is trained.
    The card's ``decoding`` (which may have been chosen after the build) is written into the
    weights first, at their precision: the network stays as it was."""
    training = dict(card.training)
    folders = SPLITS[training["split"]["strategy"]](training["split"], data, work)
    weights = ZOO_DIR / card.weights
    decoding = card_decoding(training)
    if decoding:
        work.mkdir(parents=True, exist_ok=True)
        store_checkpoint(verified_weights(card.name), work / "decoded.pt",
                         precision=training.get("precision", "fp32"), decoding=decoding)
        atomic_write_bytes(weights, (work / "decoded.pt").read_bytes())
    figures = EVALUATIONS[training["evaluation"]["strategy"]](weights, folders, training["evaluation"])
    training.pop("fp32_figures", None)  # the build's fp32 checkpoint is not shipped: not scored again
    new = _with_figures(dataclasses.replace(card, training=training), figures, weights, folders,
                        command=f"python -m segscope.zoo.build {card.name} --rescore")
    new.save()
    return new


def store(card: ZooCard, *, precision: str, data: Path, work: Path) -> ZooCard | None:
    """Store the shipped weights again at ``precision`` (smaller than theirs) when the held-out
    figure, scored again, is worse than the card's by less than the evaluation's tolerance; then
    rewrite the weights and the card's figures. ``None`` (nothing written) when it would lose more.
    For weights trained before int8 storage existed; a build chooses the precision itself."""
    from segscope.checkpoint import load_checkpoint, save_checkpoint

    training = dict(card.training)
    evaluation = training["evaluation"]
    key = evaluation["metric"]
    shipped = next(f.value for f in card.figures if f.metric == key)
    folders = SPLITS[training["split"]["strategy"]](training["split"], data, work)
    work.mkdir(parents=True, exist_ok=True)
    candidate = work / f"stored_{precision}.pt"
    save_checkpoint(candidate, load_checkpoint(verified_weights(card.name)), precision=precision)
    figures = EVALUATIONS[evaluation["strategy"]](candidate, folders, evaluation)
    kept = _smallest_for(evaluation, {precision: figures[key]}, shipped)
    if kept != precision:
        print(f"{card.name}: {precision} weights score {key} {figures[key]:.4f} against the shipped "
              f"{shipped:.4f}; the shipped weights stay", flush=True)
        return None
    target = ZOO_DIR / card.weights
    atomic_write_bytes(target, candidate.read_bytes())
    training["stored_from"] = {"precision": training.get("precision"), key: shipped}
    training["precision"] = precision
    # Restored to float32 on load, the network runs as fast as before: the card's speed stays.
    new = _with_figures(dataclasses.replace(card, training=training), figures, target, folders,
                        command=f"python -m segscope.zoo.build {card.name} --store {precision}", timed=False)
    new.save()
    return new


def _peer(evaluation: dict[str, Any], metric: str) -> tuple[str | None, float | None]:
    peer = evaluation.get("peer", {})
    return (peer.get("name"), peer.get(metric)) if metric in peer else (None, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="zoo models to rebuild (default: all)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the datasets' folder")
    parser.add_argument("--work", type=Path, default=Path("zoo_work"), help="work folder (resumable)")
    parser.add_argument("--minutes", type=float, help="time box per model for this call (then resume)")
    parser.add_argument("--rescore", action="store_true",
                        help="score the shipped weights again and rewrite the figures; train nothing")
    parser.add_argument("--store", choices=PRECISIONS[1:],
                        help="store the shipped weights again at this precision if that loses nothing "
                        "measurable (the card's tolerance); train nothing")
    args = parser.parse_args(argv)
    if args.rescore and args.store:
        parser.error("--rescore and --store are two runs: --store scores the weights it writes")
    cards = zoo_cards()
    unfinished = 0
    for name in args.names or sorted(cards):
        if name not in cards:
            parser.error(f"no zoo card {name!r}; cards: {sorted(cards)}")
        if args.rescore:
            print(rescore(cards[name], data=args.data, work=args.work / name).describe(), flush=True)
            continue
        if args.store:
            stored = store(cards[name], precision=args.store, data=args.data, work=args.work / name)
            unfinished += stored is None
            if stored is not None:
                print(stored.describe(), flush=True)
            continue
        made = build(cards[name], data=args.data, work=args.work / name, minutes=args.minutes)
        if made is None:
            unfinished += 1
        else:
            print(made.describe(), flush=True)
    return 3 if unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
