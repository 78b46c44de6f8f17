"""The zoo: models that ship inside the package, each with a card, checked against its sha256."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("torch", reason="running zoo models needs segscope[deep] (torch)")

import segscope
from segscope import zoo
from segscope.cli.main import main
from segscope.resolve import prompted_models

CARDS = zoo.zoo_cards()
PROMPTED = set(prompted_models())
"""Zoo models that follow prompts (click models): they run through segscope.prompt, not segment."""


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
    assert saved.inputs.channels == int(card.inputs["bands"])
    # The network's last layer has one output per declared class.
    from segscope.models import get_model

    net = get_model(saved.model, **{**saved.options, "num_classes": len(card.class_names)})
    net.load_state_dict({k: v.float() for k, v in saved.state_dict.items()})
    bands = int(card.inputs["bands"])
    rng = np.random.default_rng(0)
    # A card says whether its model takes images or volumes (spatial_dims 3: (Z, Y, X)).
    spatial = (20, 24, 28) if card.inputs.get("spatial_dims", 2) == 3 else (64, 80)
    image = rng.integers(0, 256, spatial if bands == 1 else (*spatial, bands)).astype(card.inputs["dtype"])
    if name in PROMPTED:
        with pytest.raises(ValueError, match="click model"):
            segscope.segment(image, name)
        result = segscope.prompt(image, points=[(32, 40, 1)], method=name)
        assert result.provenance.method == f"prompt:{name}"
    else:
        result = segscope.segment(image, name)
        assert result.provenance.method == name
    assert result.kind == card.task and result.labels.shape == spatial
    # The card's inference defaults (its decoding, stored in the weights) are the predictor's.
    from segscope.infer import predictor_for

    predictor = predictor_for(path)  # the one segment used, kept open
    merging = getattr(predictor, "merging", None)  # an edge network's learned merge order
    learned = merging.to_decoding() if merging is not None else {}
    for key, value in card.training.get("decoding", {}).items():
        actual = learned[key] if key in learned else getattr(predictor, key)
        assert actual == pytest.approx(float(value)), (name, key)
    if card.task == "regions":
        # An edge network's one output map is its boundaries; the regions it gives have no class.
        assert len(result) >= 1 and not result.class_names
        return
    assert tuple(result.class_names) == card.class_names
    # Every segment's class is one of the card's (an instance model's background is no segment).
    assert set(np.unique(result.categories).tolist()) <= set(range(len(card.class_names)))


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


@pytest.mark.parametrize("name", sorted(CARDS))
def test_a_zoo_name_is_a_method_on_the_command_line(name, tmp_path, capsys):
    card = CARDS[name]
    rng = np.random.default_rng(1)
    if card.inputs.get("spatial_dims", 2) == 3:  # volumes: NIfTI in, NIfTI labels out
        from segscope.io import write_volume

        source, written = tmp_path / "a.nii.gz", "a.nii.gz"
        write_volume(source, rng.normal(100, 20, (20, 24, 28)).astype(np.float32), spacing=(1.0, 1.0, 1.0))
    else:
        source, written = tmp_path / "a.png", "a.png"
        image = rng.integers(0, 256, (40, 48) if card.inputs["bands"] == 1 else
                             (40, 48, card.inputs["bands"])).astype(np.uint8)
        segscope.imwrite(source, image)
    if name in PROMPTED:  # a click model follows the prompts of a JSON file
        prompts = tmp_path / "prompts.json"
        prompts.write_text('{"a.png": {"points": [[20, 24, 1], [5, 5, 0]]}}')
        assert main(["prompt", str(source), "--prompts", str(prompts), "-m", name,
                     "-o", str(tmp_path / "out")]) == 0
        assert main(["segment", str(source), "-m", name, "-o", str(tmp_path / "refused")]) != 0
    else:
        assert main(["segment", str(source), "-m", name, "-o", str(tmp_path / "out")]) == 0
        assert main(["predict", "--checkpoint", name, str(source), "-o", str(tmp_path / "p")]) == 0
    assert (tmp_path / "out" / written).is_file()
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert f"{name} (v{card.version}" in listing and card.sha256[:12] in listing


def test_a_zoo_model_exports_to_onnx_and_gives_the_same_classes(tmp_path):
    pytest.importorskip("onnxruntime")
    # Exported models are semantic ones (sliding windows of class probabilities).
    images = [n for n in CARDS if CARDS[n].task == "semantic" and CARDS[n].inputs.get("spatial_dims", 2) == 2]
    name = min(images, key=lambda n: CARDS[n].size_bytes)
    card = CARDS[name]
    # One tile the size of the image, which every network takes at a fixed size (the export rounds
    # a tile up to its network's multiple; padding a network with global context changes it).
    shape = (256, 256) if card.inputs["bands"] == 1 else (256, 256, card.inputs["bands"])
    image = np.random.default_rng(2).integers(0, 256, shape).astype(np.uint8)
    onnx_file = tmp_path / f"{name}.onnx"
    assert main(["export", "--checkpoint", name, "--tile", "256", "-o", str(onnx_file)]) == 0
    exported = segscope.segment(image, onnx_file).class_map()
    assert np.mean(exported == segscope.segment(image, name).class_map()) > 0.99


def test_export_rounds_the_tile_up_to_what_the_network_takes_at_a_fixed_size(tmp_path):
    pytest.importorskip("onnxruntime")
    import torch

    from segscope.checkpoint import Checkpoint, InputSpec, save_checkpoint
    from segscope.infer import export_onnx
    from segscope.models import get_model

    # SwiftNet averages its stride-32 features over 8x8 grids: a 40-pixel tile (2x2 features)
    # cannot be exported at that size, so it becomes 256; a U-Net needs only multiples of 32.
    networks = (("swiftnet", {"width": 0.25}, 256), ("unet", {"base_width": 4, "depth": 5}, 32))
    for name, options, divisor in networks:
        options = {"num_classes": 2, "in_channels": 1, **options}
        torch.manual_seed(0)
        model = get_model(name, **options)
        assert model.export_divisor == divisor
        path = tmp_path / f"{name}.pt"
        save_checkpoint(path, Checkpoint(task="semantic", model=name, options=options,
                                         state_dict=model.state_dict(), class_names=("a", "b"),
                                         inputs=InputSpec((0.5,), (0.25,), "uint8", crop=128)))
        info = export_onnx(path, tmp_path / f"{name}.onnx", tile=40)
        assert info["tile"] == (40 + divisor - 1) // divisor * divisor
        tile = info["tile"]
        image = np.random.default_rng(0).integers(0, 256, (tile, tile)).astype(np.uint8)
        exported = segscope.segment(image, tmp_path / f"{name}.onnx").probabilities
        assert np.allclose(exported, segscope.segment(image, str(path)).probabilities, atol=1e-4)


def test_an_unknown_method_lists_the_zoo_too():
    with pytest.raises(ValueError, match="zoo models: "):
        segscope.segment(np.zeros((8, 8), np.uint8), "no_such_method")


def test_every_nth_split_holds_out_the_benchmarks_fifth(tmp_path):
    from segscope.zoo.build import SPLITS

    for folder in ("images", "labels"):
        (tmp_path / "data" / "set" / folder).mkdir(parents=True)
        for k in range(12):
            (tmp_path / "data" / "set" / folder / f"{k:02d}.png").write_bytes(b"")
    spec = {"strategy": "every_nth", "images": "set/images", "labels": "set/labels", "n": 5}
    folders = SPLITS["every_nth"](spec, tmp_path / "data", tmp_path / "work")
    stems = [f"{k:02d}" for k in range(12)]
    assert sorted(p.stem for p in folders["val_images"].iterdir()) == stems[4::5]
    assert sorted(p.stem for p in folders["train_labels"].iterdir()) == sorted(set(stems) - set(stems[4::5]))


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


def test_build_time_boxes_resumes_and_rewrites_the_card(tmp_path, monkeypatch):
    """``python -m segscope.zoo.build`` end to end on a toy card: split by stems, a time box that
    stops the first call with nothing written, then the same call finishing and rewriting weights,
    sha256, figures and training facts."""
    import json

    import torch

    from segscope.io import read_label_png, write_label_png
    from segscope.zoo import build

    rng = np.random.default_rng(0)
    for folder in ("image", "label"):
        (tmp_path / "data" / "toy" / folder).mkdir(parents=True)
    for k in range(6):
        label = np.zeros((32, 32), np.uint8)
        label[rng.integers(0, 16):, rng.integers(0, 16):] = 1
        segscope.imwrite(tmp_path / "data" / "toy" / "image" / f"{k}.png",
                         (label * 150 + rng.integers(0, 60, label.shape)).astype(np.uint8))
        write_label_png(tmp_path / "data" / "toy" / "label" / f"{k}.png", label)
    card = json.loads((zoo.ZOO_DIR / "membranes.json").read_text())
    card.update(name="toy", weights="toy.pt", sha256="", size_bytes=0, figures=[], speed={}, notes=[])
    card["training"] = {
        "split": {"strategy": "stems", "images": "toy/image", "labels": "toy/label", "held_out": ["5"]},
        "recipe": {"model": {"name": "unet", "options": {"base_width": 4, "depth": 2}},
                   "data": {"num_classes": 2, "class_names": ["membrane", "cell"], "crop": 32},
                   "optim": {"batch_size": 5}, "schedule": {"epochs": 2}, "seed": 0},
        "evaluation": {"strategy": "miou", "metric": "miou", "num_classes": 2, "data": "toy 5",
                       "data_shape": "32x32"},
        "decoding": {"flip": 1}}
    zoo_dir = tmp_path / "zoo"
    zoo_dir.mkdir()
    (zoo_dir / "toy.json").write_text(json.dumps(card))
    monkeypatch.setattr(zoo, "ZOO_DIR", zoo_dir)
    monkeypatch.setattr(build, "ZOO_DIR", zoo_dir)
    zoo.zoo_cards.cache_clear()
    try:
        args = ["toy", "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work")]
        assert build.main([*args, "--minutes", "0"]) == 3  # one epoch, then the time box
        assert not (zoo_dir / "toy.pt").exists()
        assert build.main(args) == 0
        zoo.zoo_cards.cache_clear()
        made = zoo.zoo_card("toy")
        assert made.sha256 == zoo.sha256_of(zoo_dir / "toy.pt")
        assert made.training["steps"] == 2 and made.training["images_seen"] == 10
        assert [f.metric for f in made.figures] == ["miou"] and 0 <= made.figures[0].value <= 1
        assert made.speed["seconds_per_image"] > 0
        # the smallest precision whose figure is not worse than fp32's, stored as it was scored
        chosen = made.training["precision"]
        assert set(made.training["other_precisions"]) == {"int8", "fp16"} - {chosen}
        scored = {chosen: made.figures[0].value,
                  **{p: f["miou"] for p, f in made.training["other_precisions"].items()}}
        full = made.training["fp32_figures"]["miou"]
        assert chosen == build.smallest_precision(
            {p: scored[p] for p in ("int8", "fp16") if p in scored}, full, tolerance=1e-3)
        stored = torch.load(zoo_dir / "toy.pt", weights_only=True)
        assert any(t.dtype == torch.int8 for t in stored["state_dict"].values()) == (chosen == "int8")
        assert stored["decoding"] == {"flip": 1.0}  # the card's inference defaults, in the weights
        assert segscope.segment(np.zeros((32, 32), np.uint8), "toy").provenance.parameters["flip"] is True
        # --rescore scores the shipped file again: nothing trains, the weights stay, the figure
        # comes back the same (the build scored these very bytes) under the rescoring command.
        weights = (zoo_dir / "toy.pt").read_bytes()
        assert build.main([*args, "--rescore"]) == 0
        zoo.zoo_cards.cache_clear()
        again = zoo.zoo_card("toy")
        assert (zoo_dir / "toy.pt").read_bytes() == weights and again.sha256 == made.sha256
        assert again.figures[0].value == made.figures[0].value
        assert again.figures[0].command == "python -m segscope.zoo.build toy --rescore"
        assert again.training["steps"] == 2 and "fp32_figures" not in again.training
        # --store int8 keeps the shipped weights unless int8 scores within the card's tolerance
        for tolerance, kept in ((-1.0, False), (1.0, True)):
            card = json.loads((zoo_dir / "toy.json").read_text())
            card["training"]["evaluation"]["precision_tolerance"] = tolerance
            card["figures"][0].update(peer="smp_unet", peer_value=0.5,
                                      command="python -m segscope.zoo.build toy; peer: python zoo.py toy")
            (zoo_dir / "toy.json").write_text(json.dumps(card))
            zoo.zoo_cards.cache_clear()
            before = (zoo_dir / "toy.pt").read_bytes()
            assert build.main([*args, "--store", "int8"]) == (0 if kept else 3)
            zoo.zoo_cards.cache_clear()
            after = zoo.zoo_card("toy")
            if not kept:
                assert (zoo_dir / "toy.pt").read_bytes() == before and after.sha256 == again.sha256
                continue
            stored = torch.load(zoo_dir / "toy.pt", weights_only=True)
            assert any(t.dtype == torch.int8 for t in stored["state_dict"].values())
            assert stored["decoding"] == {"flip": 1.0}  # the inference defaults stay
            assert after.training["precision"] == "int8" and after.sha256 == zoo.sha256_of(zoo_dir / "toy.pt")
            assert after.training["stored_from"] == {"precision": chosen, "miou": again.figures[0].value}
            # the peer's figure, written by benchmarks/zoo.py, stays with its command
            assert after.figures[0].command == ("python -m segscope.zoo.build toy --store int8; "
                                                "peer: python zoo.py toy")
            assert (after.figures[0].peer, after.figures[0].peer_value) == ("smp_unet", 0.5)
            assert after.speed == again.speed  # int8 weights run as float32: the speed is not timed again
        # building again makes and scores new files: what --store re-stored is no longer described
        assert build.main(args) == 0
        zoo.zoo_cards.cache_clear()
        assert "stored_from" not in zoo.zoo_card("toy").training
        # a decoding chosen after the build reaches the shipped weights with --rescore
        card = json.loads((zoo_dir / "toy.json").read_text())
        card["training"]["decoding"] = {"flip": 0}
        (zoo_dir / "toy.json").write_text(json.dumps(card))
        zoo.zoo_cards.cache_clear()
        assert build.main([*args, "--rescore"]) == 0
        zoo.zoo_cards.cache_clear()
        assert torch.load(zoo_dir / "toy.pt", weights_only=True)["decoding"] == {"flip": 0.0}
        assert zoo.zoo_card("toy").sha256 == zoo.sha256_of(zoo_dir / "toy.pt")
        assert segscope.segment(np.zeros((32, 32), np.uint8), "toy").provenance.parameters["flip"] is False
        # a setting the card searches is chosen on the training pairs (never the held-out one) and
        # reaches the card and the shipped weights beside the card's other defaults
        # (null: the setting left out, here the most probable class)
        card["training"]["decoding_search"] = {"score_threshold": [0.2, None, 0.8]}
        (zoo_dir / "toy.json").write_text(json.dumps(card))
        zoo.zoo_cards.cache_clear()
        assert build.main(args) == 0
        zoo.zoo_cards.cache_clear()
        searched = zoo.zoo_card("toy").training["decoding_searched"]
        assert searched["on"] == "the 5 training pairs" and searched["metric"] == "miou"
        assert [t["score_threshold"] for t in searched["tried"]] == [0.2, None, 0.8]
        best = max(searched["tried"], key=lambda t: t["miou"])["score_threshold"]
        assert searched["chosen"] == {"score_threshold": best}
        chosen = {} if best is None else {"score_threshold": best}
        assert zoo.zoo_card("toy").training["decoding"] == {"flip": 0, **chosen}
        stored = torch.load(zoo_dir / "toy.pt", weights_only=True)
        assert stored["decoding"] == {"flip": 0.0, **chosen}
        from segscope.metrics import Evaluator

        train = tmp_path / "work" / "toy" / "split" / "train"
        for tried in searched["tried"]:  # each figure: the training pairs segmented at that threshold
            evaluator = Evaluator(task="semantic", num_classes=2)
            for image in sorted((train / "images").iterdir()):
                found = segscope.segment(segscope.imread(image), str(tmp_path / "work" / "toy" / "fp32.pt"),
                                         score_threshold=tried["score_threshold"] or 0.5, flip=False)
                evaluator.update(found.class_map(), read_label_png(train / "labels" / image.name))
            assert evaluator.compute()["miou"] == pytest.approx(tried["miou"], abs=1e-4)
    finally:
        zoo.zoo_cards.cache_clear()


def test_the_objects_split_maps_each_images_objects_for_training_and_holds_out_one_per_pair(tmp_path):
    # The split click models train on (zoo/objects.py): connected components of a class become
    # objects, unlabelled pixels are marked, and each held-out object is a pair of its own.
    from segscope.io import read_label_png, write_label_png
    from segscope.zoo.build import NOT_ANNOTATED, SPLITS

    rng = np.random.default_rng(0)
    for folder in ("images", "labels"):
        (tmp_path / "data" / "street" / folder).mkdir(parents=True)
    for k in range(4):
        label = np.zeros((40, 50), np.uint8)
        label[5:15, 5:15] = 1
        label[20:30, 30:45] = 1
        label[30:35, 0:5] = 2  # another class: not an object here
        label[0, :] = 9  # unlabelled
        write_label_png(tmp_path / "data" / "street" / "labels" / f"{k}.png", label)
        segscope.imwrite(tmp_path / "data" / "street" / "images" / f"{k}.png",
                         rng.integers(0, 256, (40, 50, 3)).astype(np.uint8))
    source = {"name": "street", "kind": "class_components", "images": "street/images",
              "labels": "street/labels", "classes": [1], "ignore": 9, "min_size": 20}
    spec = {"strategy": "objects", "train": [source], "held_out": [{**source, "limit": 3}]}
    folders = SPLITS["objects"](spec, tmp_path / "data", tmp_path / "work")
    maps = [read_label_png(p) for p in sorted(folders["train_labels"].iterdir())]
    assert len(maps) == 4 and len(list(folders["train_images"].iterdir())) == 4
    for labels in maps:
        assert set(np.unique(labels).tolist()) == {0, 1, 2, NOT_ANNOTATED}
        assert (labels[0] == NOT_ANNOTATED).all() and (labels[30:35, 0:5] == 0).all()
        assert (labels[5:15, 5:15] == 1).all() and (labels[20:30, 30:45] == 2).all()
    held = [read_label_png(p) for p in sorted(folders["val_labels"].iterdir())]
    assert len(held) == 3 and all(set(np.unique(h).tolist()) == {0, 1, NOT_ANNOTATED} for h in held)
    assert (held[0][5:15, 5:15] == 1).all() and (held[1][20:30, 30:45] == 1).all()
    # Made once: a second call finds the split complete and reuses it.
    stamp = {p: p.stat().st_mtime_ns for p in folders["val_labels"].iterdir()}
    SPLITS["objects"](spec, tmp_path / "data", tmp_path / "work")
    assert {p: p.stat().st_mtime_ns for p in folders["val_labels"].iterdir()} == stamp
    # A source's name starts the file names it writes, so it may hold no separator.
    bad = {**spec, "train": [{**source, "name": "my_set"}]}
    with pytest.raises(ValueError, match="no '_' or '/' in its name"):
        SPLITS["objects"](bad, tmp_path / "data", tmp_path / "w2")


def test_an_unknown_kind_of_object_source_is_named(tmp_path):
    from segscope.zoo.objects import objects_from

    with pytest.raises(ValueError, match="unknown kind 'polygons'; kinds: "):
        next(objects_from({"name": "x", "kind": "polygons"}, tmp_path))
