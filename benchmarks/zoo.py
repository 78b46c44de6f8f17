"""A zoo model against a peer trained by the same recipe, scored the same way, in one run.

    python benchmarks/zoo.py membranes [--peer smp_unet] [--work bench_out/zoo]

The shipped model (``segscope.zoo``) is scored on its card's held-out data with its card's
evaluation; the peer (segmentation_models_pytorch's Unet with a ResNet-18 encoder and no
pretrained weights, by default) is trained on the card's split with the card's recipe (same data,
augmentation, optimiser, batch and number of epochs, so the same number of steps), then scored the
same way. It prints both and their difference, and with ``--write-card`` records the peer's figures
on the card.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from deep_common import register_peer
from segscope.zoo import ZOO_DIR, zoo_card
from segscope.zoo.build import DEFAULT_DATA, EVALUATIONS, SPLITS, _fill


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--peer", default="smp_unet")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("bench_out/zoo"))
    parser.add_argument("--write-card", action="store_true", help="record the peer's figures on the card")
    args = parser.parse_args()
    from segscope.train import TrainConfig, train
    from segscope.zoo import verified_weights

    card = zoo_card(args.name)
    work = args.work / args.name
    training = card.training
    folders = SPLITS[training["split"]["strategy"]](training["split"], args.data, work)
    evaluation = training["evaluation"]
    score = EVALUATIONS[evaluation["strategy"]]
    ours = score(verified_weights(args.name), folders, evaluation)

    register_peer()
    recipe = _fill(training["recipe"], args.data, work)
    recipe["model"] = {"name": args.peer, "options": {}}
    recipe["data"].update({k: str(v) for k, v in folders.items()})
    recipe["output"] = str(work / args.peer)
    start = time.perf_counter()
    result = train(TrainConfig.from_dict(recipe), progress=False)
    minutes = (time.perf_counter() - start) / 60
    theirs = score(result.checkpoint, folders, evaluation)

    print(f"\n{args.name} against {args.peer}, same recipe ({result.steps} steps each), "
          f"on {evaluation['data']}")
    print(f"{'metric':14s} {args.name:>12s} {args.peer:>12s} {'difference':>11s}")
    for metric, value in ours.items():
        print(f"{metric:14s} {value:12.4f} {theirs[metric]:12.4f} {value - theirs[metric]:+11.4f}")
    print(f"peer trained {minutes:.1f} min here; zoo model trained {training.get('minutes_here')} min "
          f"({training.get('steps')} steps)")
    (work / "results.json").write_text(json.dumps({"ours": ours, "peer": theirs, "peer_steps": result.steps,
                                                   "peer_minutes": minutes}, indent=2))
    if args.write_card:
        command = f"cd benchmarks && python zoo.py {args.name} --peer {args.peer} --write-card"
        figures = tuple(dataclasses.replace(f, peer=args.peer, peer_value=round(theirs[f.metric], 4),
                                            command=f"{f.command}; peer: {command}")
                        if f.metric in theirs else f for f in card.figures)
        path = ZOO_DIR / f"{args.name}.json"
        path.write_text(json.dumps(dataclasses.replace(card, figures=figures).to_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
