"""Every command and Python example in the README runs, as written, on small stand-in files.

The README's fenced blocks are parsed here (nothing is copied from it), so an example that
drifts from the code fails this test. Each path a command names is made in a scratch folder as a
small file of the right kind. The only changes to the commands are listed in ``ADAPTED``, each
with its reason. ``make`` lines are run by CI itself (``make test``) and by ``tests/test_demo.py``
(the demo gallery).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the README's deep examples need segscope[deep] (torch)")
pytest.importorskip("dask", reason="the README's tiled examples need segscope[scale]")

README = Path(__file__).resolve().parents[1] / "README.md"

# (text in a README command, what this test runs instead, why)
ADAPTED = [
    ("--minutes 30", "--minutes 30 --epochs 1", "one epoch of a toy set, not half an hour"),
    ("--model unet ", "--model unet --option base_width=8 ", "a small U-Net keeps the test fast"),
    (" --scheduler tcp://head:8786", "",
     "no cluster here (tests/tiled runs a job through a scheduler address)"),
]
NOT_RUN = {
    "make demo": "tests/test_demo.py builds the demo gallery",
    "make test": "CI runs it",
    "make serve": "tests/serve/test_browser.py runs the app in Chromium",
    "segscope serve photos/ --port 8000": "a server runs until stopped; tests/serve runs the app",
}
# Files the README's commands read but no README command writes: made by these commands first.
SETUP = [
    "segscope train --model fcn --images camvid/train --labels camvid/trainannot --classes camvid.txt "
    "--ignore 11 --epochs 1 -o runs/fcn",
    "segscope segment dsb2018/train/images -m watershed_instances -o nuclei_out/",
]


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block of the README."""
    return [(m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", README.read_text(), re.S | re.M)]


def readme_commands() -> list[str]:
    commands = []
    for language, text in readme_blocks():
        if language or not text.startswith(("segscope ", "make ")):
            continue  # Python examples, and the layout tree
        for line in text.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                commands.append(" ".join(line.split()))
    return commands


def _scene(rng: np.random.Generator, shape: tuple[int, int], count: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image with bright discs on noise, and its instance labels (0 background)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for k in range(1, count + 1):
        cy, cx = rng.integers(8, shape[0] - 8), rng.integers(8, shape[1] - 8)
        labels[((yy - cy) ** 2 + (xx - cx) ** 2 <= rng.integers(4, 7) ** 2) & (labels == 0)] = k
    image = rng.normal(50, 10, (*shape, 3))
    image[labels > 0] += 140
    return np.clip(image, 0, 255).astype(np.uint8), labels


def make_workspace(root: Path) -> None:
    from scipy.io import savemat

    import segscope
    from segscope.io import PanopticRecord, write_coco_panoptic, write_label_png

    rng = np.random.default_rng(0)

    def folder(name: str) -> Path:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    (root / "camvid.txt").write_text("\n".join(f"class{k}" for k in range(11)) + "\n")
    for split, count in (("train", 8), ("val", 2)):
        for k in range(count):
            image, objects = _scene(rng, (48, 64), 3)
            label = (objects > 0).astype(np.uint8)
            label[:2] = 11  # CamVid's void
            segscope.imwrite(folder(f"camvid/{split}") / f"f{k}.png", image)
            write_label_png(folder(f"camvid/{split}annot") / f"f{k}.png", label)
            if split == "val":  # photos/ are the val frames, so `evaluate --pred out/` pairs them
                segscope.imwrite(folder("photos") / f"f{k}.png", image)
    for k in range(20):  # --holdout 16 leaves 4 to train on
        image, objects = _scene(rng, (64, 64), 5)
        segscope.imwrite(folder("dsb2018/train/images") / f"n{k}.png", image)
        write_label_png(folder("dsb2018/train/labels") / f"n{k}.png", objects.astype(np.uint16))
        if k < 2:
            segscope.imwrite(folder("slides") / f"n{k}.png", image)
            write_label_png(folder("truth") / f"n{k}.png", objects.astype(np.uint16))
            segscope.imwrite(folder("cells") / f"n{k}.png", image[..., 0])
            segscope.imwrite(folder("em_sections") / f"s{k}.png", image[..., 1])
            segscope.imwrite(folder("scans") / f"s{k}.tif", image[..., 1])
            segscope.imwrite(folder("folder") / f"n{k}.png", image)
            segscope.imwrite(folder("bsds500/images/val") / f"b{k}.png", image)
            cell = np.empty((1, 1), dtype=object)
            cell[0, 0] = {"Segmentation": (objects > 0).astype(np.uint16) + 1,
                          "Boundaries": np.zeros(objects.shape, bool)}
            savemat(folder("bsds500/groundTruth/val") / f"b{k}.mat", {"groundTruth": cell})
    from segscope.io import write_volume

    # Two small MRI-like volumes: a bright ellipsoid (class 1) beside a dimmer one (class 2).
    zz, yy, xx = np.indices((24, 32, 28))
    for k in range(2):
        first = ((zz - 12) / 5) ** 2 + ((yy - 12 - k) / 4) ** 2 + ((xx - 14) / 4) ** 2 < 1
        second = ((zz - 12) / 5) ** 2 + ((yy - 21) / 4) ** 2 + ((xx - 14 + k) / 3) ** 2 < 1
        scan = (rng.normal(100, 10, zz.shape) + 300 * first + 150 * second).astype(np.float32)
        write_volume(folder("volumes") / f"case_0{k + 1}.nii.gz", scan, spacing=(1.0, 1.0, 1.0))
        write_volume(folder("volume_labels") / f"case_0{k + 1}.nii.gz", (first + 2 * second).astype(np.uint8))
    image, objects = _scene(rng, (64, 64), 5)
    segscope.imwrite(root / "image.png", image)
    segscope.imwrite(root / "cells.tif", image[..., 0])
    for name in ("scene.tif", "slide.tif", "big.tif"):
        segscope.imwrite(root / name, _scene(rng, (300, 260), 40)[0][..., 0])
    segscope.imwrite(root / "mosaic.tif", _scene(rng, (300, 260), 40)[0])
    truth = segscope.Segmentation.from_labels(objects, kind="instance",
                                              categories={k: 0 for k in range(1, int(objects.max()) + 1)})
    write_coco_panoptic(root / "truth_panoptic.json",
                        [PanopticRecord(1, "a.png", truth.to_panoptic())])
    pred = segscope.segment(image, "watershed_instances")
    write_coco_panoptic(root / "panoptic.json", [PanopticRecord(1, "a.png", pred.to_panoptic())])


def adapt(command: str) -> str:
    for text, instead, _why in ADAPTED:
        command = command.replace(text, instead)
    return command


def test_the_readme_is_parsed_into_commands_and_examples():
    commands = readme_commands()
    assert "segscope methods" in commands and len(commands) >= 20
    assert all(c.startswith(("segscope ", "make ")) for c in commands), commands
    assert sum(language == "python" for language, _ in readme_blocks()) >= 2
    # Every adaptation still matches the README, so none is stale.
    for text, _instead, _why in ADAPTED:
        assert any(text in c for c in commands), text


def test_every_readme_command_and_example_runs(tmp_path, monkeypatch, capsys):
    from segscope.cli.main import main

    make_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    commands = [c for c in readme_commands() if c not in NOT_RUN]
    # Training first: the README's earlier commands use the checkpoints it trains later.
    ordered = [c for c in commands if c.startswith("segscope train")] + SETUP + \
        [c for c in commands if not c.startswith("segscope train")]
    for command in ordered:
        argv = shlex.split(adapt(command))
        assert argv[0] == "segscope"
        code = main(argv[1:])
        assert code == 0, f"README command failed ({code}): {command}\n{capsys.readouterr()}"
    # What the commands promised is there.
    assert (tmp_path / "runs/unet/best.pt").is_file() and (tmp_path / "unet.onnx").is_file()
    assert (tmp_path / "report/index.html").is_file() and (tmp_path / "scores.json").is_file()
    assert (tmp_path / "scene_labels.zarr").is_dir() and (tmp_path / "nuclei.tif").is_file()
    assert list((tmp_path / "out_onnx").iterdir()) and list((tmp_path / "labels").glob("*.txt"))

    for language, text in readme_blocks():
        if language == "python":
            namespace: dict[str, object] = {}
            exec(compile(text, f"README.md python block:\n{text}", "exec"), namespace)
    assert (tmp_path / "overlay.png").is_file() and (tmp_path / "cells.npz").is_file()
    assert (tmp_path / "nuclei.zarr").is_dir()
