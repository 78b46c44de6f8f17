"""The zoo: models that ship inside the package, each with a card, checked against its sha256."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("torch", reason="running zoo models needs segscope[deep] (torch)")

import segscope
from segscope import zoo
from segscope.cli.main import main

CARDS = zoo.zoo_cards()


def test_the_zoo_has_cards_and_their_weights():
    assert CARDS, "no zoo model ships with the package"
    total = 0
    for name, card in CARDS.items():
        assert card.weights_path.is_file(), name
        assert card.sha256 and card.size_bytes == card.weights_path.stat().st_size, name
        assert card.figures, f"{name}: a card without measured figures"
        total += card.size_bytes
    assert total <= 30e6, f"the zoo's weights take {total / 1e6:.1f} MB, over the 30 MB budget"


@pytest.mark.parametrize("name", sorted(CARDS))
def test_a_zoo_model_loads_checks_and_segments_with_its_declared_classes(name):
    from segscope.checkpoint import load_checkpoint

    card = CARDS[name]
    path = zoo.verified_weights(name)
    saved = load_checkpoint(path)
    assert tuple(saved.class_names) == card.class_names
    assert saved.training is None  # weights only: no optimizer state ships
    bands = int(card.inputs["bands"])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 80) if bands == 1 else (64, 80, bands)).astype(card.inputs["dtype"])
    result = segscope.segment(image, name)
    assert result.kind == card.task and result.labels.shape == (64, 80)
    assert tuple(result.class_names) == card.class_names
    assert result.provenance.method == name
    assert set(np.unique(result.class_map())) <= set(range(len(card.class_names)))


def test_a_changed_byte_in_the_weights_is_refused(tmp_path, monkeypatch):
    name = sorted(CARDS)[0]
    copy = tmp_path / "zoo"
    shutil.copytree(zoo.ZOO_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    weights = copy / CARDS[name].weights
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(zoo, "ZOO_DIR", copy)
    zoo.zoo_cards.cache_clear()
    monkeypatch.setattr(zoo, "_VERIFIED", {})
    try:
        with pytest.raises(zoo.ZooIntegrityError, match="does not match the sha256 on its card"):
            zoo.verified_weights(name)
        with pytest.raises(zoo.ZooIntegrityError, match="damaged or was replaced"):
            segscope.segment(np.zeros((8, 8), np.uint8), name)
    finally:
        zoo.zoo_cards.cache_clear()


def test_a_zoo_name_is_a_method_on_the_command_line(tmp_path, capsys):
    name = sorted(CARDS)[0]
    card = CARDS[name]
    image = np.random.default_rng(1).integers(0, 256, (40, 48) if card.inputs["bands"] == 1 else
                                              (40, 48, card.inputs["bands"])).astype(np.uint8)
    segscope.imwrite(tmp_path / "a.png", image)
    assert main(["segment", str(tmp_path / "a.png"), "-m", name, "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "a.png").is_file()
    assert main(["predict", "--checkpoint", name, str(tmp_path / "a.png"), "-o", str(tmp_path / "p")]) == 0
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert f"{name} (v{card.version}" in listing and card.sha256[:12] in listing


def test_an_unknown_method_lists_the_zoo_too():
    with pytest.raises(ValueError, match="zoo models: "):
        segscope.segment(np.zeros((8, 8), np.uint8), "no_such_method")


def test_colour_masks_become_label_pngs_and_areas_stay_whole(tmp_path):
    # The split the aerial card needs: whole areas held out, RGB masks turned into classes.
    from segscope.io import read_label_png
    from segscope.zoo.build import SPLITS

    colours = {"#3C1098": 0, "#8429F6": 1, "#9B9B9B": 255}
    rgb = {0: (0x3C, 0x10, 0x98), 1: (0x84, 0x29, 0xF6), 255: (0x9B, 0x9B, 0x9B)}
    rng = np.random.default_rng(0)
    truths = {}
    for area in ("tile_1", "tile_2", "tile_3"):
        (tmp_path / "data" / "aerial" / area / "images").mkdir(parents=True)
        (tmp_path / "data" / "aerial" / area / "masks").mkdir(parents=True)
        classes = rng.choice([0, 1, 255], size=(6, 7)).astype(np.uint8)
        mask = np.zeros((6, 7, 3), np.uint8)
        for value, colour in rgb.items():
            mask[classes == value] = colour
        segscope.imwrite(tmp_path / "data" / "aerial" / area / "images" / "part_1.png", mask)
        segscope.imwrite(tmp_path / "data" / "aerial" / area / "masks" / "part_1.png", mask)
        truths[area] = classes
    spec = {"strategy": "colour_masks", "root": "aerial", "train": ["tile_1", "tile_2"], "val": ["tile_3"],
            "colours": colours}
    folders = SPLITS["colour_masks"](spec, tmp_path / "data", tmp_path / "work")
    trained = sorted(p.name for p in folders["train_labels"].iterdir())
    assert trained == ["tile_1_part_1.png", "tile_2_part_1.png"]
    assert [p.name for p in folders["val_images"].iterdir()] == ["tile_3_part_1.png"]
    assert np.array_equal(read_label_png(folders["val_labels"] / "tile_3_part_1.png"), truths["tile_3"])
    spec["colours"] = {"#3C1098": 0}
    with pytest.raises(ValueError, match=r"colours \['#"):
        SPLITS["colour_masks"](spec, tmp_path / "data", tmp_path / "work2")
