"""Fit an edge network's learned region merging on BSDS500 train (``segscope.merging``).

    python benchmarks/bsds_merging.py [--model edges] [--rounds 2] [--out bench_out/merging.json]

Each train image's boundary map (the network's defaults) gives its finest regions; every merge of
their hierarchy becomes a sample: the two regions' features, and the share of their pixel pairs
the annotators put in different segments. Round 1 merges by mean boundary strength (the plain
hierarchy); each later round merges in the order of the model fitted so far and adds its merges
(so the model also sees the states its own order leads to), then fits again on all of them.

Prints and writes the model as a checkpoint's ``decoding`` entries (``merge_<feature>``): put
them in the edge model's card (``training.decoding``) and rescore it (``python -m
segscope.zoo.build edges --rescore``). Only train images are read; compare on val with
``python benchmarks/bsds.py --regions-only --methods "ucm (learned; merging=false),ucm (learned)"``,
which runs the plain hierarchy (gPb-owt-ucm's order) beside the learned one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--model", default="edges", help="the edge network: a zoo name or a checkpoint")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--every", type=int, default=1, help="every N-th train image")
    parser.add_argument("--out", type=Path, default=Path("bench_out/merging.json"))
    args = parser.parse_args()

    import segscope
    from segscope.classical.edges import edge_network
    from segscope.io import read_bsds_groundtruth
    from segscope.merging import MergeModel, MergeSamples, fit_merge_model, merge_samples

    root = args.data / "bsds500"
    paths = sorted((root / "images" / "train").glob("*.jpg"))[::args.every]
    if not paths:
        raise SystemExit(f"no BSDS500 train images under {root / 'images' / 'train'}")
    network = edge_network(args.model)
    start = time.perf_counter()
    images, maps, truths = [], [], []
    for path in paths:
        image = segscope.imread(path)
        images.append(image)
        maps.append(network.boundaries(image, thin=False).astype(np.float32))
        truth = read_bsds_groundtruth(root / "groundTruth" / "train" / f"{path.stem}.mat")
        truths.append([s.labels for s in truth.segmentations])
    print(f"{len(paths)} train images' maps in {time.perf_counter() - start:.0f} s")

    def loss(model: MergeModel, samples: MergeSamples) -> float:
        p = np.clip(model.probability(samples.features), 1e-9, 1 - 1e-9)
        y, w = samples.apart, samples.weight / samples.weight.mean()
        return float(np.mean(w * -(y * np.log(p) + (1 - y) * np.log(1 - p))))

    model: MergeModel | None = None
    pooled: MergeSamples | None = None
    for round_ in range(1, args.rounds + 1):
        start = time.perf_counter()
        samples = [merge_samples(m, i, t, model=model, min_size=network.min_size)
                   for m, i, t in zip(maps, images, truths, strict=True)]
        batch = samples[0]
        for more in samples[1:]:
            batch = batch + more
        pooled = batch if pooled is None else pooled + batch
        model = fit_merge_model(pooled)
        print(f"round {round_}: {len(batch.apart)} merges ({len(pooled.apart)} in all), "
              f"{time.perf_counter() - start:.0f} s; weighted cross-entropy of this round's merges "
              f"{loss(model, batch):.4f}")
    if model is None or pooled is None:
        raise SystemExit("--rounds must be at least 1")
    decoding = {key: round(value, 4) for key, value in model.to_decoding().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(decoding, indent=2) + "\n")
    print(json.dumps(decoding, indent=2))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
