"""Cellpose 3 trained from scratch on the nuclei benchmark's training images, in its own environment.

    .venv-cellpose/bin/python benchmarks/peers/cellpose_peer.py TRAIN_ROOT HELD_OUT_ROOT IDS.txt MINUTES OUT/

Cellpose 3.1 pins NumPy below 2.1 and segscope pins 2.4, so the peer runs in its own virtual
environment (``make bench-cellpose``, versions from ``pyproject.toml``'s ``cellpose-peer`` extra)
and talks to the benchmark through files: it writes one label PNG per held-out image and a JSON of
what it did; ``dsb2018.py`` scores them as it scores everything else. Nothing is downloaded: the
network starts from random weights (``pretrained_model=False``), with Cellpose's nuclei defaults
(diameter 17, greyscale channels) and its own training loop, augmentation and flow decoding. Its
epoch count is its default scaled to the time budget: one epoch is timed, then as many as fit run
(the labels' flows are computed once before, outside the budget, as Cellpose caches them).
The last ``holdout`` training images validate it, as the other models' are.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def _grey(image: np.ndarray) -> np.ndarray:
    """Cellpose's greyscale input (channels [0, 0]): colour averaged, alpha dropped."""
    data = np.asarray(image, np.float32)
    return data[..., :3].mean(-1) if data.ndim == 3 else data


def main() -> None:
    train_root, held_root, ids_file, minutes, out = sys.argv[1:6]
    holdout = int(sys.argv[6]) if len(sys.argv) > 6 else 16
    from cellpose import io as cio
    from cellpose import models, train

    out_dir = Path(out)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    stems = sorted(p.stem for p in (Path(train_root) / "images").glob("*.png"))
    images = [cio.imread(str(Path(train_root) / "images" / f"{s}.png")) for s in stems]
    labels = [cio.imread(str(Path(train_root) / "labels" / f"{s}.png")).astype(np.int32) for s in stems]
    grey = [_grey(im) for im in images]
    # Labels to flows once, outside the budget (Cellpose caches them in _flows.tif files the same way).
    import torch
    from cellpose import dynamics

    flows = dynamics.labels_to_flows(labels, device=torch.device("cpu"))
    x_train, y_train = grey[:-holdout], flows[:-holdout]
    x_val, y_val = grey[-holdout:], flows[-holdout:]

    def fresh() -> models.CellposeModel:
        return models.CellposeModel(gpu=False, pretrained_model=False, model_type=None, diam_mean=17.0)

    budget = float(minutes) * 60
    start = time.perf_counter()
    model = fresh()
    first = train.train_seg(model.net, train_data=x_train, train_labels=y_train, test_data=x_val,
                            test_labels=y_val, channels=[0, 0], normalize=True, n_epochs=1,
                            save_path=str(out_dir), model_name="probe")
    epoch = time.perf_counter() - start
    epochs = max(1, int((budget - epoch) / epoch))
    model = fresh()
    start = time.perf_counter()
    saved = train.train_seg(model.net, train_data=x_train, train_labels=y_train, test_data=x_val,
                            test_labels=y_val, channels=[0, 0], normalize=True, n_epochs=epochs,
                            save_path=str(out_dir), model_name="cellpose_peer")
    seconds = time.perf_counter() - start
    path = saved[0] if isinstance(saved, tuple) else saved
    trained = models.CellposeModel(gpu=False, pretrained_model=str(path))
    ids = Path(ids_file).read_text().split()
    timing = 0.0
    for stem in ids:
        image = cio.imread(str(Path(held_root) / "images" / f"{stem}.png"))
        plane = _grey(image)
        tic = time.perf_counter()
        masks, _, _ = trained.eval(plane, channels=[0, 0], diameter=float(trained.diam_labels))
        timing += time.perf_counter() - tic
        cio.imsave(str(out_dir / "labels" / f"{stem}.png"), masks.astype(np.uint16))
    steps_per_epoch = int(np.ceil(len(x_train) / 8))  # train_seg's default batch of 8, every image each epoch
    (out_dir / "run.json").write_text(json.dumps({
        "epochs": epochs, "steps": epochs * steps_per_epoch, "train_minutes": seconds / 60,
        "probe_epoch_seconds": epoch, "seconds_per_image": timing / max(len(ids), 1),
        "probe": str(first[0] if isinstance(first, tuple) else first),
    }, indent=2))


if __name__ == "__main__":
    main()
