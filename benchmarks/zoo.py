"""A zoo model against a peer trained by the same recipe, scored the same way, in one run.

    python benchmarks/zoo.py membranes [--peer smp_unet] [--work bench_out/zoo] [--tiled 512]

The shipped model (``segscope.zoo``) is scored on its card's held-out data with its card's
evaluation; the peer (segmentation_models_pytorch's Unet with a ResNet-18 encoder and no
pretrained weights, by default) is trained on the card's split with the card's recipe (same data,
augmentation, optimiser, batch and number of epochs, so the same number of steps), then scored the
same way (with the card's ``decoding``, such as test-time flips, added to the peer's checkpoint
too, and any setting the card's ``decoding_search`` lists chosen for the peer on its training
pairs as the build chose ours, so both are post-processed alike; the peer's figures as trained
are printed as well). It prints both and their difference, and with ``--write-card`` records the
peer's figures on the card. The peer's run resumes from its work folder, so a second call scores
without training; ``--peer none`` scores and draws the zoo model alone.

It also draws held-out images next to their truth, our prediction and the peer's, in the card's
colours (``--picture``, black where the truth is unlabelled). With ``--tiled TILE``, the largest
held-out image is segmented again as a tiled job (``segscope.segment_tiled``, TILE-pixel tiles) and
compared with the whole-image prediction: time and agreement, and a picture.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from deep_common import colour_panel, register_peer
from segscope.zoo import ZooCard, zoo_card
from segscope.zoo.build import (
    DEFAULT_DATA,
    EVALUATIONS,
    SPLITS,
    card_decoding,
    filled_recipe,
    searched_decoding,
    store_checkpoint,
    validation_pairs,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--peer", default="smp_unet", help="a model name, or 'none' (ours only)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("bench_out/zoo"))
    parser.add_argument("--write-card", action="store_true", help="record the peer's figures on the card")
    parser.add_argument("--picture", type=Path, help="default: docs/figures/zoo_NAME.png")
    parser.add_argument("--rows", type=int, default=4, help="held-out images in the picture")
    parser.add_argument("--tiled", type=int, help="also run the largest held-out image as a tiled job")
    args = parser.parse_args()
    from segscope.zoo import verified_weights

    card = zoo_card(args.name)
    work = args.work / args.name
    training = card.training
    folders = SPLITS[training["split"]["strategy"]](training["split"], args.data, work)
    evaluation = training["evaluation"]
    score = EVALUATIONS[evaluation["strategy"]]
    ours = score(verified_weights(args.name), folders, evaluation)
    models = [str(verified_weights(args.name))]
    if args.peer == "none":
        print(f"\n{args.name} on {evaluation['data']}: "
              + ", ".join(f"{metric} {value:.4f}" for metric, value in ours.items()))
    else:
        checkpoint = _compare_with_peer(args, card, folders, ours, work)
        models.append(str(checkpoint))
    root = Path(__file__).resolve().parents[1]
    picture = args.picture or root / "docs" / "figures" / f"zoo_{args.name}.png"
    pairs = validation_pairs(folders)
    chosen = [pairs[round(k)] for k in np.linspace(0, len(pairs) - 1, min(args.rows, len(pairs)))]
    _picture(card, chosen, models, picture)
    shown = "" if args.peer == "none" else f" | {args.peer}"
    print(f"picture: {picture} (image | truth | {args.name}{shown})")
    if args.tiled:
        _tiled(card, max(pairs, key=lambda p: p[0].stat().st_size)[0], args.tiled, work)
    return 0


def _compare_with_peer(args: argparse.Namespace, card: ZooCard, folders: dict[str, Path],
                       ours: dict[str, float], work: Path) -> Path:
    """Train (or resume) the peer by the card's recipe, score it the card's way, print both, and
    with ``--write-card`` record its figures; the peer's checkpoint."""
    from segscope.train import TrainConfig, train

    training, evaluation = card.training, card.training["evaluation"]
    register_peer()
    recipe = filled_recipe(training["recipe"], args.data, work)
    recipe["model"] = {"name": args.peer, "options": {}}
    recipe["data"].update({k: str(v) for k, v in folders.items()})
    recipe["output"] = str(work / args.peer)
    last = work / args.peer / "last.pt"
    start = time.perf_counter()
    result = train(TrainConfig.from_dict(recipe), resume=last if last.exists() else None, progress=False)
    minutes = (time.perf_counter() - start) / 60
    checkpoint = Path(result.checkpoint)
    as_trained = EVALUATIONS[evaluation["strategy"]](checkpoint, folders, evaluation)
    # The zoo model is scored with its card's inference defaults: the peer is too, with any
    # setting the card searches chosen for the peer the same way, on its training pairs.
    decoding, searched = searched_decoding(checkpoint, training, folders, work / f"{args.peer}_search")
    if searched:
        print(f"{args.peer}: decoding chosen on {searched['on']}: {searched['chosen']} (tried: "
              + "; ".join(", ".join(f"{k} {'off' if v is None else format(v, 'g')}" for k, v in t.items())
                          for t in searched["tried"]) + ")")
    if decoding:
        decoded = work / f"{args.peer}_decoded.pt"
        store_checkpoint(checkpoint, decoded, precision="fp32", decoding=decoding)
        checkpoint = decoded
        print(f"{args.peer} as trained (no decoding): "
              + ", ".join(f"{metric} {value:.4f}" for metric, value in as_trained.items()))
    theirs = EVALUATIONS[evaluation["strategy"]](checkpoint, folders, evaluation) if decoding else as_trained

    ours_decoding = card_decoding(training)
    print(f"\n{args.name} against {args.peer}, same recipe ({result.steps} steps each), "
          f"on {evaluation['data']}" + (f", decoded by {ours_decoding} and {decoding}" if decoding else ""))
    print(f"{'metric':14s} {args.name:>12s} {args.peer:>12s} {'difference':>11s}")
    for metric, value in ours.items():
        print(f"{metric:14s} {value:12.4f} {theirs[metric]:12.4f} {value - theirs[metric]:+11.4f}")
    print(f"peer trained {minutes:.1f} min in this call; zoo model trained "
          f"{training.get('minutes_here')} min ({training.get('steps')} steps)")
    results = {"ours": ours, "peer": theirs, "peer_as_trained": as_trained, "peer_steps": result.steps,
               "peer_minutes": minutes, "ours_decoding": ours_decoding, "peer_decoding": decoding,
               "peer_decoding_searched": searched}
    (work / "results.json").write_text(json.dumps(results, indent=2))
    if args.write_card:
        command = f"cd benchmarks && python zoo.py {args.name} --peer {args.peer} --write-card"
        figures = tuple(dataclasses.replace(f, peer=args.peer, peer_value=round(theirs[f.metric], 4),
                                            command=f"{f.command.split('; peer: ')[0]}; peer: {command}")
                        if f.metric in theirs else f for f in card.figures)
        dataclasses.replace(card, figures=figures).save()
    return checkpoint


def _colours(card: ZooCard, classes: np.ndarray) -> np.ndarray:
    """Class indices in the card's colours; values outside the classes (unlabelled) black."""
    table = np.zeros((256, 3), np.uint8)
    table[: len(card.colours)] = card.colours
    return table[np.clip(classes, 0, 255)]


def _small(picture: np.ndarray, height: int, *, labels: bool) -> np.ndarray:
    from PIL import Image

    if picture.shape[0] <= height:
        return picture
    width = round(picture.shape[1] * height / picture.shape[0])
    resample = Image.Resampling.NEAREST if labels else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(picture).resize((width, height), resample))


def _truth(card: ZooCard, path: Path) -> np.ndarray:
    """The label file as class indices, through the recipe's ``label_map``."""
    from segscope.io.labels import apply_label_map, read_label_png

    mapping = card.training["recipe"]["data"].get("label_map") or {}  # JSON keys are text
    return apply_label_map(read_label_png(path), {int(k): int(v) for k, v in mapping.items()})


def _picture(card: ZooCard, pairs: list[tuple[Path, Path]], models: list[str], path: Path) -> None:
    import segscope

    rows = []
    for image_path, label_path in pairs:
        image = segscope.imread(image_path)
        shown = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        panels = [_small(shown.astype(np.uint8), 256, labels=False),
                  _small(_colours(card, _truth(card, label_path)), 256, labels=True)]
        panels += [_small(_colours(card, segscope.segment(image, m).class_map()), 256, labels=True)
                   for m in models]
        rows.append(panels)
    path.parent.mkdir(parents=True, exist_ok=True)
    colour_panel(rows, path)


def _tiled(card: ZooCard, image_path: Path, tile: int, work: Path) -> None:
    """The largest held-out image as a tiled job against the whole-image prediction."""
    import segscope
    from segscope.tiled import segment_tiled

    image = segscope.imread(image_path)
    start = time.perf_counter()
    whole = segscope.segment(image, card.name).class_map()
    whole_seconds = time.perf_counter() - start
    start = time.perf_counter()
    tiled = segment_tiled(image_path, card.name, work / "tiled.zarr", tile=tile, overlap=tile // 8,
                          workers=1, overwrite=True, progress=False)
    tiled_seconds = time.perf_counter() - start
    labels = tiled.read()
    agree = float(np.mean(labels == whole))
    size = f"{image.shape[1]}x{image.shape[0]}"
    print(f"\ntiled job on the largest held-out image, {image_path.name} ({size}): {tiled_seconds:.1f} s in "
          f"{tile}-pixel tiles (overlap {tile // 8}) against {whole_seconds:.1f} s whole; "
          f"{100 * agree:.2f}% of pixels agree")
    root = Path(__file__).resolve().parents[1]
    picture = root / "docs" / "figures" / f"zoo_{card.name}_tiled.png"
    shown = [_small(image[..., :3], 512, labels=False), _small(_colours(card, labels), 512, labels=True)]
    colour_panel([shown], picture)
    print(f"picture: {picture} (image | tiled prediction)")


if __name__ == "__main__":
    sys.exit(main())
