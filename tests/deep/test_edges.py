"""Learned edges: the rcf family, its agreement targets and loss, training, the boundary predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _configs import config_of
from hypothesis import given, settings
from hypothesis import strategies as st

import segscope
from segscope.edgemaps import edge_orientation, thin_boundaries
from segscope.models import get_model, get_model_info
from segscope.train import train
from segscope.train.boundaries import agreement, edge_loss

TINY = {"widths": [8, 8, 16], "convs": [1, 1, 1], "side_width": 4}


@settings(max_examples=25, deadline=None)
@given(angle=st.floats(0, np.pi), offset=st.floats(-3, 3))
def test_thinning_a_blurred_line_keeps_one_crest_across_it(angle, offset):
    # A straight ridge of any direction, blurred across 5 pixels: the crest survives and nothing
    # more than a pixel away from the line across it does.
    rows, cols = np.mgrid[:41, :41].astype(float) - 20
    distance = rows * np.cos(angle) - cols * np.sin(angle) - offset
    ridge = np.exp(-(distance**2) / 4)
    thin = thin_boundaries(ridge, border=0)
    kept = thin > 0.5
    inner = (np.abs(rows) < 15) & (np.abs(cols) < 15)
    assert (np.abs(distance[kept]) <= 1.0).all()
    # Along the line, a crest pixel in (almost) every step: the line is not broken up.
    assert kept[inner].sum() >= 0.8 * (inner & (np.abs(distance) <= 0.5)).sum()


def test_edge_orientation_is_the_direction_across_the_edge():
    ridge = np.zeros((21, 21))
    ridge[10] = 1.0  # a horizontal edge: across it runs along the rows (angle pi/2)
    assert edge_orientation(ridge)[10, 10] == pytest.approx(np.pi / 2, abs=1e-3)
    assert edge_orientation(ridge.T)[10, 10] == pytest.approx(0.0, abs=1e-3)


def test_agreement_is_the_share_of_annotators_and_fills_are_not_valid():
    one = torch.tensor([[1, 1, 2], [1, 1, 2], [3, 3, 3]])
    two = torch.tensor([[1, 1, 1], [1, 1, 1], [1, 1, 1]])
    filled = one.clone()
    filled[2, 2] = -100  # brought in by a rotation
    target, valid = agreement(torch.stack([one, two]))
    # Annotator one marks where its label changes to the right or below; two marks nothing.
    assert target.tolist() == [[0.0, 0.5, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]]
    assert valid.all()
    target, valid = agreement(torch.stack([filled, two]))
    assert not valid[2, 2] and valid.sum() == 8
    assert target[1, 2] == 0.0  # the pair with the fill is not a boundary


def test_edge_loss_balances_edges_and_leaves_out_disagreement():
    target = torch.zeros(1, 8, 8)
    target[0, 4] = 1.0
    target[0, 2] = 0.1  # marked by too few annotators: left out
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    right = torch.where(target[:, None] >= 0.3, 6.0, -6.0).expand(1, 2, 8, 8)
    wrong = -right
    assert edge_loss(right, target, valid) < 0.01 < edge_loss(wrong, target, valid)
    # Row 2 does not count whatever is predicted there.
    changed = right.clone()
    changed[:, :, 2] = 6.0
    assert edge_loss(changed, target, valid) == pytest.approx(float(edge_loss(right, target, valid)))


def test_rcf_gives_side_and_fused_maps_at_the_input_size_and_overfits():
    torch.manual_seed(0)
    model = get_model("rcf", **TINY)
    info = get_model_info("rcf")
    assert (info.task, info.adapter, info.predictor) == ("regions", "boundaries", "boundaries")
    for mode in (True, False):
        out = model.train(mode)(torch.randn(2, 3, 37, 45))
        assert type(out).__name__ == "EdgeOutput"
        assert [tuple(t.shape) for t in out] == [(2, 1, 37, 45), (2, 3, 37, 45)]
    model.train()
    segs = torch.zeros(1, 32, 32, dtype=torch.long)
    segs[0, 8:24, 8:24] = 1
    target, valid = agreement(segs)
    x = segs[None].float().expand(1, 3, 32, 32) + 0.1 * torch.randn(1, 3, 32, 32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        out = model(x)
        loss = edge_loss(torch.cat([out.fused, out.sides], 1), target[None], valid[None])
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]


def _write_squares(root: Path, count: int, size: int) -> Path:
    """Images of flat rectangles and their one-annotator label PNGs."""
    from segscope.io import imwrite, write_label_png

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for k in range(count):
        labels = np.ones((size, size), np.uint16)
        for j in range(4):
            r, c = rng.integers(0, size - 16, 2)
            h, w = rng.integers(10, 24, 2)
            labels[r:r + h, c:c + w] = j + 2
        grey = rng.uniform(20, 235, labels.max() + 1)[labels]
        image = np.clip(np.stack([grey] * 3, -1) + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)
        imwrite(root / "images" / f"{k}.png", image)
        write_label_png(root / "labels" / f"{k}.png", labels)
    return root


def test_rcf_trains_from_label_pngs_and_predicts_boundaries_and_regions(tmp_path):
    root = _write_squares(tmp_path / "data", 6, 64)
    config = config_of(model="rcf", model_options=TINY, train_images=str(root / "images"),
                       train_labels=str(root / "labels"), output=str(tmp_path / "run"), holdout=2,
                       crop=64, epochs=30, batch_size=4, lr=1e-2, scale=(1.0, 1.0), seed=0, val_every=15)
    result = train(config, progress=False)  # no classes given: an edge network has none
    assert result.metric == "val_ods"
    assert [row["epoch"] for row in result.history if "val_ods" in row] == [15, 30]
    assert result.best_score > 0.5

    from segscope.infer import BoundaryPredictor
    from segscope.io import read_label_png
    from segscope.metrics import label_boundaries

    predictor = BoundaryPredictor.from_checkpoint(result.checkpoint)
    image = segscope.imread(root / "images" / "5.png")
    truth = read_label_png(root / "labels" / "5.png")
    soft = predictor.boundaries(image)
    assert soft.shape == truth.shape and soft.min() >= 0 and soft.max() <= 1
    # The strongest thinned responses lie on (or a pixel from) the true boundaries.
    from scipy import ndimage

    near = ndimage.binary_dilation(label_boundaries(truth), iterations=1)
    strong = soft > 0.5 * soft.max()
    assert near[strong].mean() > 0.8
    regions = segscope.segment(image, str(result.checkpoint), level=0.5)
    assert regions.kind == "regions" and regions.labels.shape == truth.shape
    assert regions.provenance.parameters["level"] == 0.5
    assert len(regions) >= 2

    # The same network behind the classical entry points: edges(operator="learned") and ucm.
    from segscope.classical import edges, ucm

    assert np.array_equal(edges(image, operator="learned", model=str(result.checkpoint)), soft)
    hierarchy_regions = ucm(image, operator="learned", model=str(result.checkpoint))
    assert hierarchy_regions.provenance.details["level"] == predictor.default_level
    cut = predictor.hierarchy(image).cut(level=predictor.default_level)
    assert np.array_equal(hierarchy_regions.labels, cut)
    # ucm runs the network at the scales and with the flip it is given, as the predictor does.
    one_scale = predictor.map_hierarchy(predictor.boundaries(image, thin=False, scales=(1.0,), flip=True))
    assert np.array_equal(ucm(image, operator="learned", model=str(result.checkpoint), scales=(1.0,),
                              flip=True, level=0.3).labels, one_scale.cut(level=0.3))
    assert not np.array_equal(one_scale.ucm2(), predictor.hierarchy(image).ucm2())

    # A test-time flip averages each scale's map with the mirror image's, mirrored back.
    plain = predictor.boundaries(image, thin=False, scales=(1.0,))
    mirror = predictor.boundaries(image[:, ::-1], thin=False, scales=(1.0,))[:, ::-1]
    flipped = predictor.boundaries(image, thin=False, scales=(1.0,), flip=True)
    assert np.allclose(flipped, 0.5 * (plain + mirror), atol=1e-6) and not np.allclose(flipped, plain)
    # A checkpoint's decoding makes it the default, for every entry point; flip=False still turns it off.
    import dataclasses

    from segscope.checkpoint import load_checkpoint, save_checkpoint
    from segscope.classical.edges import learned_boundaries

    stored = tmp_path / "flipped.pt"
    save_checkpoint(stored, dataclasses.replace(load_checkpoint(result.checkpoint), decoding={"flip": 1.0}))
    assert BoundaryPredictor.from_checkpoint(stored).flip is True
    assert np.allclose(learned_boundaries(image, model=str(stored), thin=False),
                       predictor.boundaries(image, thin=False, flip=True), atol=1e-6)
    assert segscope.segment(image, str(stored), level=0.5).provenance.parameters["flip"] is True
    assert segscope.segment(image, str(stored), level=0.5, flip=False).provenance.parameters["flip"] is False
    # Merge weights in the decoding give the hierarchy its learned merge order, by default.
    from segscope.merging import MergeModel, merged_hierarchy

    model = MergeModel.from_decoding({"merge_bias": -2.0, "merge_boundary": 4.0,
                                      "merge_colour_distance": 1.0})
    merging = tmp_path / "merging.pt"
    trained = load_checkpoint(result.checkpoint)
    save_checkpoint(merging, dataclasses.replace(trained, decoding=model.to_decoding()))
    merger = BoundaryPredictor.from_checkpoint(merging)
    assert merger.merging == model and predictor.merging is None
    learned = merged_hierarchy(soft_map := predictor.boundaries(image, thin=False), image, model,
                               min_size=predictor.min_size)
    assert np.array_equal(merger.hierarchy(image).ucm2(), learned.ucm2())
    plain = predictor.map_hierarchy(soft_map).ucm2()
    assert np.array_equal(merger.hierarchy(image, merging=False).ucm2(), plain)
    assert not np.array_equal(learned.ucm2(), plain)
    merged = segscope.segment(image, str(merging), level=0.5)
    assert merged.provenance.parameters["merging"] is True
    assert np.array_equal(merged.labels, learned.cut(level=0.5))
    with pytest.raises(ValueError, match="no learned merging"):
        predictor.hierarchy(image, merging=True)
    with pytest.raises(ValueError, match="give the image"):
        merger.map_hierarchy(soft_map)
    save_checkpoint(merging, dataclasses.replace(trained, decoding={"merge_size": 1.0}))
    with pytest.raises(ValueError, match="merge_size"):
        BoundaryPredictor.from_checkpoint(merging)


def test_a_model_that_is_not_an_edge_network_is_refused_as_learned_edges(tmp_path):
    from segscope.classical import edges

    root = _write_squares(tmp_path / "data", 3, 32)
    config = config_of(model="unet", model_options={"base_width": 4, "depth": 2},
                       train_images=str(root / "images"), train_labels=str(root / "labels"),
                       output=str(tmp_path / "run"), num_classes=6, crop=32, epochs=1, batch_size=2,
                       scale=(1.0, 1.0), seed=0)
    checkpoint = train(config, progress=False).checkpoint
    with pytest.raises(ValueError, match="not an edge network"):
        edges(segscope.imread(root / "images" / "0.png"), operator="learned", model=str(checkpoint))
