"""Star-convex polygons: encoding and decoding, the stardist family's training, prediction and tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _configs import config_of
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.draw import ellipse

import segscope
from segscope.models import get_model, get_model_info
from segscope.star import (
    decode_polygons,
    flipped_rays,
    grid_pixels,
    object_probability,
    polygons_to_labels,
    star_distances,
)
from segscope.train import train
from segscope.train.star import star_loss, star_targets

TINY = {"base_width": 8, "depth": 2, "head_width": 16, "n_rays": 16}


def _ellipses(seed: int, size: int = 128, count: int = 12) -> np.ndarray:
    """Non-touching random nucleus-like ellipses (long radius 7 to 16 pixels, aspect ratio up to
    2, any orientation), some cut by the image border."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    for _ in range(count):
        cy, cx = rng.integers(0, size, 2)
        radius = rng.uniform(7, 16)
        rr, cc = ellipse(cy, cx, radius, radius / rng.uniform(1, 2), labels.shape,
                         rotation=rng.uniform(0, np.pi))
        grown = np.zeros_like(labels, bool)
        grown[np.clip(rr, 1, size - 2), np.clip(cc, 1, size - 2)] = True
        if rr.size > 30 and not labels[grown].any():
            labels[rr, cc] = labels.max() + 1
    return labels


def _matched_ious(truth: np.ndarray, found: np.ndarray) -> list[float]:
    ious = []
    for value in range(1, int(truth.max()) + 1):
        mask = truth == value
        ids, counts = np.unique(found[mask], return_counts=True)
        other = found == ids[np.argmax(counts)]
        ious.append(float((mask & other).sum() / (mask | other).sum()))
    return ious


def test_star_distances_known_answer():
    labels = np.zeros((9, 11), np.int32)
    labels[2:7, 2:9] = 1
    # From the centre (4, 5): 3 pixels to the last one on the right and left, 2 up and down, each
    # plus half a pixel to the edge. Rays at 0, 90, 180 and 270 degrees (x right, y down).
    assert star_distances(labels, n_rays=4)[4, 5].tolist() == [3.5, 2.5, 3.5, 2.5]
    # At 45 degrees the ray leaves the object at the corner of pixel (6, 7): 2.5 * sqrt(2).
    assert star_distances(labels, n_rays=8)[4, 5, 1] == pytest.approx(2.5 * np.sqrt(2))
    assert (star_distances(labels, n_rays=4)[labels == 0] == 0).all()
    probability = object_probability(labels)
    assert probability[4, 5] == 1.0 and probability[2, 2] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="n_rays must be at least 3"):
        star_distances(labels, n_rays=2)


@pytest.mark.parametrize(("grid", "shape"), [(2, (48, 48)), (2, (47, 50)), (4, (45, 52))])
def test_targets_on_a_grid_are_the_full_targets_at_its_pixels(grid, shape):
    truth = _ellipses(grid, size=52, count=8)[: shape[0], : shape[1]]
    at = grid_pixels(grid)
    np.testing.assert_array_equal(star_distances(truth, n_rays=16, grid=grid),
                                  star_distances(truth, n_rays=16)[at])
    truth_t = torch.from_numpy(truth).long()
    truth_t[:3] = -1  # not annotated
    for coarse, fine in zip(star_targets(truth_t, 16, grid=grid), star_targets(truth_t, 16), strict=True):
        np.testing.assert_array_equal(coarse.numpy(), fine.numpy()[(Ellipsis, *at)])
    with pytest.raises(ValueError, match="grid must be at least 1"):
        star_distances(truth, grid=0)


@pytest.mark.parametrize("grid", [2, 4])
def test_stardist_resizes_its_grid_to_the_pixels_the_grid_stands_for(grid):
    torch.manual_seed(0)
    model = get_model("stardist", in_channels=1, **TINY, grid=grid).eval()
    x = torch.randn(1, 1, 45, 58)
    with torch.no_grad():
        full, coarse = model(x), model.forward_grid(x)
    at = grid_pixels(grid)
    for f, c in zip(full, coarse, strict=True):
        assert f.shape[-2:] == (45, 58)
        assert c.shape[-2:] == (len(range(45)[at[0]]), len(range(58)[at[1]]))
        torch.testing.assert_close(f[(Ellipsis, *at)], c)  # exactly the grid's values there
        # between them, linear: a pixel half-way between two grid pixels of a row takes their mean
        if grid == 2:
            torch.testing.assert_close(f[..., 1, 2], (c[..., 0, 0] + c[..., 0, 1]) / 2)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**16))
def test_encoding_then_decoding_gives_every_object_back(seed):
    truth = _ellipses(seed)
    found, scores = decode_polygons(object_probability(truth), star_distances(truth, n_rays=64))
    assert len(scores) == truth.max()  # one polygon per object, the rest suppressed
    assert min(_matched_ious(truth, found)) > 0.95
    # With 32 rays (the model's default) the polygons are coarser, but still close on average.
    found, _ = decode_polygons(object_probability(truth), star_distances(truth, n_rays=32))
    assert np.mean(_matched_ious(truth, found)) > 0.95
    # From a grid of 2 (a quarter of the candidates), drawn at the image's resolution.
    found, _ = decode_polygons(object_probability(truth)[grid_pixels(2)],
                               star_distances(truth, n_rays=32, grid=2), grid=2, shape=truth.shape)
    assert found.shape == truth.shape and np.mean(_matched_ious(truth, found)) > 0.95


def test_decoding_a_grid_needs_the_image_shape_it_came_from():
    probability = np.zeros((8, 8))
    distances = np.zeros((8, 8, 16))
    with pytest.raises(ValueError, match="needs the image's shape"):
        decode_polygons(probability, distances, grid=2)
    with pytest.raises(ValueError, match=r"not the grid of 2 of a 20x16 image \(\(10, 8\)\)"):
        decode_polygons(probability, distances, grid=2, shape=(20, 16))
    labels, _ = decode_polygons(probability, distances, grid=2, shape=(17, 16))
    assert labels.shape == (17, 16)


def test_a_grid_proposes_where_four_cells_meet_with_their_mean_maps():
    # One object: a disc of radius 6 around pixel (10, 12) (a grid-of-2 corner, cells 4-5 x 5-6).
    probability = np.zeros((10, 10))
    probability[4:6, 5:7] = [[0.9, 0.7], [0.5, 0.3]]  # mean 0.6 at the corner they share
    distances = np.zeros((10, 10, 16))
    distances[4:6, 5:7] = 6.0
    distances[4, 5] = 10.0  # the corner's distances are the mean: 7
    labels, scores = decode_polygons(probability, distances, prob_threshold=0.5, grid=2, shape=(20, 20))
    # Only the corner the four cells share reaches 0.5 (its neighbours: 0.4 at most), though
    # a cell does: one polygon, centred at pixel (10, 12), its rays 7 long.
    assert scores.tolist() == pytest.approx([0.6])
    rows, cols = np.nonzero(labels)
    # 10 +- 7 and 12 +- 7 (a pixel on the lower edge is outside: polygons_to_labels)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 16, 5, 19)


def test_suppression_keeps_the_most_probable_of_overlapping_polygons():
    centres = np.array([[20.0, 20.0], [21.0, 20.0], [20.0, 50.0]])
    distances = np.full((3, 16), 8.0)
    labels, kept = polygons_to_labels(centres, distances, (40, 70), iou_threshold=0.4)
    assert kept.tolist() == [0, 2] and set(np.unique(labels)) == {0, 1, 2}
    labels, kept = polygons_to_labels(centres, distances, (40, 70))  # threshold 1: all painted
    assert kept.tolist() == [0, 1, 2]
    # The first polygon owns what it shares with the second.
    assert labels[20, 13] == 1 and labels[28, 20] == 2


def test_stardist_outputs_and_overfits_one_batch():
    torch.manual_seed(0)
    model = get_model("stardist", in_channels=1, **TINY)
    assert get_model_info("stardist").predictor == "star_polygons"
    gridded = get_model("stardist", in_channels=1, **TINY, grid=2)  # the heads work on 2x2 cells
    for net in (model, gridded):
        for mode in (True, False):
            out = net.train(mode)(torch.randn(2, 1, 44, 52))
            assert type(out).__name__ == "StarOutput"
            assert [tuple(t.shape) for t in out] == [(2, 1, 44, 52), (2, 16, 44, 52)]
    model.train()
    truth = torch.from_numpy(_ellipses(3, size=48, count=4)).long()
    truth[0] = -1  # a row not annotated: ignored by the loss
    x = (truth > 0).float()[None, None] + 0.1 * torch.randn(1, 1, 48, 48)
    probability, distances, annotated = (t[None] for t in star_targets(truth, 16))
    assert not annotated[0, 0].any() and annotated[0, 1:].all()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        out = model(x)
        loss = star_loss(out.probability[:, 0], out.distances, probability, distances, annotated)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def _write_ellipses(root: Path, count: int, size: int) -> Path:
    from segscope.io import imwrite, write_label_png

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    rng = np.random.default_rng(0)
    for k in range(count):
        labels = _ellipses(k, size=size, count=8)
        image = np.clip(40 + 150 * (labels > 0) + rng.normal(0, 10, labels.shape), 0, 255).astype(np.uint8)
        imwrite(root / "images" / f"{k}.png", image)
        write_label_png(root / "labels" / f"{k}.png", labels.astype(np.uint16))
    return root


def test_stardist_trains_predicts_and_tiles_like_the_whole_image(tmp_path):
    pytest.importorskip("zarr", reason="tiled processing needs segscope[scale]")
    import tifffile

    from segscope.tiled import segment_tiled

    root = _write_ellipses(tmp_path / "data", 6, 64)
    config = config_of(model="stardist", model_options=TINY, train_images=str(root / "images"),
                       train_labels=str(root / "labels"), output=str(tmp_path / "run"), num_classes=1,
                       class_names=["nucleus"], holdout=2, crop=64, epochs=20, batch_size=4, lr=1e-2,
                       scale=(1.0, 1.0), seed=0, val_every=10)
    result = train(config, progress=False)
    assert result.metric == "val_f1"
    assert [row["epoch"] for row in result.history if "val_f1" in row] == [10, 20]
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]
    # Once training ended, the thresholds were chosen on the validation images and ship with it.
    from segscope.checkpoint import load_checkpoint
    from segscope.train.star import OVERLAP_THRESHOLDS, PROBABILITY_THRESHOLDS

    decoding = load_checkpoint(result.checkpoint).decoding
    assert decoding["default_score"] in PROBABILITY_THRESHOLDS
    assert decoding["nms_threshold"] in OVERLAP_THRESHOLDS
    chosen = segscope.segment(segscope.imread(root / "images" / "4.png"), str(result.checkpoint))
    assert chosen.provenance.parameters["score_threshold"] == decoding["default_score"]
    # The tiling check below keeps StarDist's suppression overlap, 0.4: twenty steps leave hundreds
    # of weak overlapping polygons, whose suppression chains a stricter overlap lets run further
    # than the halo.
    import dataclasses

    from segscope.checkpoint import save_checkpoint

    fixed = tmp_path / "fixed.pt"
    trained = load_checkpoint(result.checkpoint)
    save_checkpoint(fixed, dataclasses.replace(trained, decoding={"nms_threshold": 0.4}))
    # A checkpoint's decoding may make test-time flips the default (stored as a number, read back
    # as a flag); a caller's flip=False still wins.
    flipped = tmp_path / "flipped.pt"
    save_checkpoint(flipped, dataclasses.replace(trained, decoding={**trained.decoding, "flip": 1.0}))
    some = segscope.imread(root / "images" / "4.png")
    by_default = segscope.segment(some, str(flipped))
    assert by_default.provenance.parameters["flip"] is True
    assert np.array_equal(by_default.labels, segscope.segment(some, str(result.checkpoint), flip=True).labels)
    assert segscope.segment(some, str(flipped), flip=False).provenance.parameters["flip"] is False
    # Twenty steps do not make the probabilities confident: a lower threshold finds the objects.
    options = {"score_threshold": 0.2}
    image = segscope.imread(root / "images" / "5.png")
    whole = segscope.segment(image, str(fixed), **options)
    assert whole.kind == "instance" and list(whole.class_names) == ["nucleus"] and len(whole) > 0
    assert (whole.categories == 0).all() and np.isfinite(whole.scores).all()
    # bfloat16 inference: the same maps to bfloat16's rounding, not bit for bit (autocast ran).
    from segscope.cli.main import main
    from segscope.infer import load_predictor

    predictor = load_predictor(fixed)
    x = predictor._tensor(image, None)
    plain, half = predictor.maps(x), predictor.maps(x, mixed_precision="bf16")
    gap = np.abs(plain.probability - half.probability).max()
    assert 0 < gap < 0.05 and np.abs(plain.distances - half.distances).max() < 0.05 * plain.distances.max()
    assert segscope.segment(image, str(fixed), mixed_precision="bf16").provenance.parameters[
        "mixed_precision"] == "bf16"
    with pytest.raises(ValueError, match="mixed_precision must be one of cuda, bf16, off"):
        predictor.maps(x, mixed_precision="fp8")
    assert main(["predict", "--checkpoint", str(fixed), "--mixed-precision", "bf16",
                 "-o", str(tmp_path / "bf16"), str(root / "images" / "5.png")]) == 0
    assert len(list((tmp_path / "bf16").glob("5*.png"))) == 1

    big = np.concatenate([np.concatenate([segscope.imread(root / "images" / f"{k}.png") for k in row], 1)
                          for row in ((0, 1, 2), (3, 4, 5))], 0)
    tifffile.imwrite(tmp_path / "big.tif", big, tile=(32, 32))
    tiled = segment_tiled(tmp_path / "big.tif", fixed, tmp_path / "out.zarr", tile=64,
                          overlap=48, params=options, workers=1, progress=False).read()
    reference = segscope.segment(big, str(fixed), **options).labels
    assert reference.max() > 6
    # The same objects, whatever their numbers: each tiled label maps to exactly one whole-image one.
    pairs = np.unique(np.stack([tiled.ravel(), reference.ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


@pytest.mark.parametrize("axis", [0, 1])
def test_mirrored_images_give_the_same_distances_on_renumbered_rays(axis):
    truth = _ellipses(11)
    own = star_distances(truth, n_rays=32)
    mirrored = np.flip(star_distances(np.flip(truth, axis).copy(), n_rays=32), axis)
    assert np.array_equal(mirrored[..., flipped_rays(32, axis)], own)
    with pytest.raises(ValueError, match="even number of rays"):
        flipped_rays(5, 1)


@pytest.mark.parametrize("grid", [1, 2, 4])
@pytest.mark.parametrize("size", [(64, 64), (61, 66), (63, 59)])
def test_test_time_flips_of_an_exact_network_change_nothing(grid, size):
    # A "network" that computes the exact targets of the objects in its input, on its grid, is
    # mirror-covariant: averaged over the mirror images (padded so that their grid falls on the
    # image's, flipped back, rays renumbered) it gives its plain answer exactly, which a wrong
    # padding, flip or renumbering would break, at every grid and for odd and even sides.
    from scipy import ndimage

    from segscope.checkpoint import InputSpec
    from segscope.infer.star import StarPredictor
    from segscope.models.stardist import StarOutput

    class Exact(torch.nn.Module):
        n_rays = 16

        def __init__(self, grid):
            super().__init__()
            self.grid = grid

        def forward_grid(self, x):
            labels = ndimage.label(x[0, 0].numpy() > 0.5)[0]
            p = torch.from_numpy(object_probability(labels)[grid_pixels(self.grid)]).clamp(1e-4, 1 - 1e-4)
            d = torch.from_numpy(star_distances(labels, n_rays=16, grid=self.grid)).permute(2, 0, 1)
            return StarOutput(torch.logit(p)[None, None], d[None])

    truth = np.zeros(size, np.int32)  # whole objects, none at the edges a mirror is padded at
    for k, (cy, cx, a, b, angle) in enumerate([(14, 15, 9, 5, 0.3), (15, 44, 8, 6, 2.0), (43, 16, 7, 7, 0.0),
                                               (44, 43, 10, 6, 1.0)], start=1):
        truth[ellipse(cy, cx, a, b, size, rotation=angle)] = k
    predictor = StarPredictor(Exact(grid), class_names=["cell"], inputs=InputSpec((0.0,), (1.0,)),
                              device=torch.device("cpu"), name="exact")
    x = torch.from_numpy((truth > 0).astype(np.float32))[None, None]
    plain = predictor.maps(x)
    cells = tuple(len(range(n)[s]) for n, s in zip(size, grid_pixels(grid), strict=True))
    assert plain.probability.shape == cells
    for mirrors in (predictor.mirrors, ((), (2,), (3,), (2, 3))):  # the default, and every mirror image
        predictor.mirrors = mirrors
        flipped = predictor.maps(x, flip=True)
        assert np.allclose(plain.probability, flipped.probability, atol=1e-6)
        assert np.allclose(plain.distances, flipped.distances, atol=1e-5)
    # Decoded on the grid, at the image's resolution: every object comes back.
    found = predictor.segment(truth > 0, flip=True)
    assert found.provenance.parameters["flip"] is True and found.labels.shape == size
    assert np.mean(_matched_ious(truth, found.labels)) > 0.85
