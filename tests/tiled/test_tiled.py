"""Tiled segmentation equals untiled segmentation, joins objects across seams and resumes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segscope
from segscope.io.large import GEOTIFF_TAGS, LargeImage

pytest.importorskip("zarr", reason="tiled processing needs segscope[scale] (zarr, dask)")
tifffile = pytest.importorskip("tifffile")

from segscope.tiled import run as tiled_run  # noqa: E402
from segscope.tiled import segment_tiled, tile_grid  # noqa: E402


def blobs(height: int = 300, width: int = 420, *, seed: int = 0, count: int = 60, bar: bool = True
          ) -> np.ndarray:
    """Bright discs of radius 4 to 14 on a noisy background, and a 220-pixel bar across tiles."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width), 30.0)
    yy, xx = np.mgrid[:height, :width]
    for _ in range(count):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(4, 15)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(150, 250)
    if bar:
        image[40:260, 200:212] = 220
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def write_tiff(path, image, tile=64):
    tifffile.imwrite(path, image, tile=(tile, tile))
    return path


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renumbering: the pairs (a, b) are one-to-one, background to background."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    one_to_one = pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))
    return bool(one_to_one and not np.any((a == 0) != (b == 0)))


def run(path, method, out, **kwargs):
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("progress", False)
    return segment_tiled(path, method, out, **kwargs)


# ---------------------------------------------------------------------------- exact equality
@pytest.mark.parametrize(("method", "params", "overlap"), [
    ("otsu", {}, 0), ("li", {}, 0), ("yen", {}, 0), ("triangle", {}, 0), ("isodata", {}, 0),
    ("mean", {}, 0), ("minimum", {}, 0), ("multi_otsu", {"classes": 3}, 0), ("threshold", {}, 0),
    ("adaptive_mean", {"block_size": 31}, 15), ("adaptive_gaussian", {"block_size": 31}, 20),
    ("niblack", {"window_size": 25}, 12), ("sauvola", {"window_size": 25}, 12),
])
def test_pixelwise_methods_tiled_equal_untiled_exactly(tmp_path, method, params, overlap):
    image = blobs()
    path = write_tiff(tmp_path / "big.tif", image)
    result = run(path, method, tmp_path / "out.zarr", params=params, tile=100, overlap=overlap)
    untiled = segscope.segment(image, method, **params)
    np.testing.assert_array_equal(result.read(), untiled.class_map())
    np.testing.assert_array_equal(result.to_segmentation().class_map(), untiled.class_map())
    assert result.tiles == 15 and result.kind == "semantic"
    if "threshold" in untiled.provenance.details:
        assert result.details["thresholds"] == [untiled.provenance.details["threshold"]]


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
@pytest.mark.parametrize("method", ["otsu", "multi_otsu", "triangle", "yen"])
def test_histogram_thresholds_of_other_dtypes_are_exact(tmp_path, dtype, method):
    image = blobs().astype(dtype) * (7 if dtype == np.uint16 else 0.013)
    path = write_tiff(tmp_path / "big.tif", image)
    result = run(path, method, tmp_path / "out.zarr", tile=128, overlap=0)
    np.testing.assert_array_equal(result.read(), segscope.segment(image, method).class_map())


def test_colour_images_are_tiled_on_their_luma(tmp_path):
    image = np.stack([blobs(seed=1), blobs(seed=2), blobs(seed=3)], axis=-1)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, image, tile=(64, 64), photometric="rgb")
    result = run(path, "otsu", tmp_path / "out.zarr", tile=96, overlap=0)
    np.testing.assert_array_equal(result.read(), segscope.segment(image, "otsu").class_map())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), tile=st.integers(17, 90), height=st.integers(40, 130),
       width=st.integers(40, 130))
def test_any_tile_size_gives_the_untiled_components(tmp_path_factory, seed, tile, height, width):
    rng = np.random.default_rng(seed)
    mask = rng.random((height, width)) < 0.45  # near the percolation threshold: long components
    folder = tmp_path_factory.mktemp("p")
    path = write_tiff(folder / "mask.tif", mask.astype(np.uint8), tile=16)
    for connectivity in (1, 2):
        result = run(path, "connected_components", folder / f"c{connectivity}.zarr", tile=tile,
                     overlap=0, params={"connectivity": connectivity, "min_size": 3})
        untiled = segscope.segment(mask, "connected_components", connectivity=connectivity, min_size=3)
        assert same_partition(result.read(), np.asarray(untiled.labels))
        assert result.objects == len(untiled)


def _reference_threshold(method: str, gray: np.ndarray) -> np.ndarray:
    """The class map the peer library gives: OpenCV for 8-bit triangle, scikit-image otherwise."""
    import cv2
    import skimage.filters as skf

    if method == "triangle" and gray.dtype == np.uint8:
        return cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_TRIANGLE)[1]
    if method == "multi_otsu":
        return np.digitize(gray, bins=skf.threshold_multiotsu(gray, classes=3), right=True)
    return (gray > getattr(skf, f"threshold_{method}")(gray)).astype(np.uint8)


def test_histogram_rules_match_the_peer_libraries_and_add_up_over_tiles():
    # One rule per method serves the untiled method and the tiled pass: it must give the peer's
    # answer on the whole image, and the histograms of two halves must add up to the whole one's.
    from segscope.tiling import grey_histogram

    rng = np.random.default_rng(3)
    checked = 0
    for trial in range(60):
        shape = tuple(rng.integers(2, 40, 2))
        gray = [rng.integers(0, 256, shape).astype(np.uint8),
                rng.integers(0, rng.integers(3, 3000), shape).astype(np.uint16),
                (rng.normal(0, 1, shape) * rng.uniform(0.1, 50)).astype(np.float32)][trial % 3]
        whole = grey_histogram(gray)
        half = shape[0] // 2
        if gray.dtype.kind in "iu" and half:
            summed = grey_histogram(gray[:half]) + grey_histogram(gray[half:])
            np.testing.assert_array_equal(summed.counts, whole.counts)
            assert summed.total == whole.total
        for method in ("otsu", "yen", "triangle", "isodata", "multi_otsu"):
            try:
                expected = _reference_threshold(method, gray)
            except (ValueError, RuntimeError):
                continue
            ours = segscope.segment(gray, method).class_map()
            np.testing.assert_array_equal(ours, expected, err_msg=f"{method} {gray.dtype} trial {trial}")
            checked += 1
    assert checked > 250


# --------------------------------------------------------------------- objects across seams
@pytest.mark.parametrize(("method", "overlap", "bar"), [
    ("watershed_instances", 40, False), ("watershed", 48, True), ("watershed", 48, False),
    ("connected_components", 0, True)])
def test_regions_and_instances_equal_untiled_after_relabelling(tmp_path, method, overlap, bar):
    # Objects are smaller than the overlap (the bar, longer, is one region for watershed).
    image = blobs(seed=5, bar=bar)
    path = write_tiff(tmp_path / "big.tif", image)
    result = run(path, method, tmp_path / "out.zarr", tile=100, overlap=overlap)
    untiled = np.asarray(segscope.segment(image, method).labels)
    labels = result.read()
    assert same_partition(labels, untiled)
    assert result.objects == len(np.unique(untiled)) - (0 in untiled)
    assert len(result.to_segmentation()) == result.objects
    # Numbered 1..n in the raster order of each object's first pixel.
    ids, first = np.unique(labels.ravel(), return_index=True)
    first = first[ids != 0]
    assert list(ids[ids != 0]) == list(range(1, result.objects + 1))
    assert np.all(np.diff(first) > 0)


def test_objects_on_tile_borders_come_out_whole(tmp_path):
    image = blobs(seed=7, count=90, bar=False)
    path = write_tiff(tmp_path / "big.tif", image)
    tile = 100
    labels = run(path, "watershed_instances", tmp_path / "out.zarr", tile=tile, overlap=40).read()
    untiled = np.asarray(segscope.segment(image, "watershed_instances").labels)
    seams = np.zeros(labels.shape, bool)
    seams[:, tile - 1::tile] = seams[:, tile::tile] = True
    seams[tile - 1::tile] = seams[tile::tile] = True
    crossing = np.unique(labels[seams & (labels > 0)])
    assert len(crossing) >= 10  # many objects lie across seams
    for label in crossing:
        # the object on the seam is exactly the untiled one: one label, no half-objects
        mine = labels == label
        theirs = untiled == np.bincount(untiled[mine]).argmax()
        np.testing.assert_array_equal(mine, theirs)


def test_naive_tiling_would_cut_the_objects_we_join(tmp_path):
    # Control: per-tile connected components without joining cut the bar; ours do not.
    image = blobs(seed=7)
    mask = image > 100
    naive = np.zeros(mask.shape, np.int64)
    for t in tile_grid(*mask.shape, tile=100, overlap=0):
        piece = segscope.segment(mask[t.core], "connected_components")
        naive[t.core] = np.where(piece.labels > 0, piece.labels + 1000 * t.index, 0)
    assert len(np.unique(naive[60:240, 203:209])) > 1
    path = write_tiff(tmp_path / "mask.tif", mask.astype(np.uint8))
    joined = run(path, "connected_components", tmp_path / "out.zarr", tile=100, overlap=0).read()
    assert len(np.unique(joined[60:240, 203:209])) == 1


def test_objects_larger_than_the_overlap_are_joined_across_seams(tmp_path):
    # The bar is 220 pixels long, the overlap 10: every tile sees it cut, the seams join it.
    image = blobs(seed=7)
    path = write_tiff(tmp_path / "big.tif", image)
    labels = run(path, "watershed", tmp_path / "out.zarr", tile=100, overlap=10).read()
    assert len(np.unique(labels[60:240, 203:209])) == 1


# ------------------------------------------------------------------------- resume, cluster
def test_an_interrupted_job_resumes_without_redoing_finished_tiles(tmp_path, monkeypatch):
    image = blobs(seed=2, bar=False)
    path = write_tiff(tmp_path / "big.tif", image)
    out = tmp_path / "out.zarr"
    done: list[int] = []
    original = tiled_run._tile_pass

    def stops_after_five(tile, **kwargs):
        if len(done) == 5:
            raise KeyboardInterrupt
        done.append(tile.index)
        return original(tile, **kwargs)

    monkeypatch.setattr(tiled_run, "_tile_pass", stops_after_five)
    with pytest.raises(KeyboardInterrupt):
        run(path, "watershed_instances", out, tile=100, overlap=40)
    assert len(done) == 5
    monkeypatch.setattr(tiled_run, "_tile_pass", lambda tile, **kw: (done.append(tile.index),
                                                                     original(tile, **kw))[1])
    result = run(path, "watershed_instances", out, tile=100, overlap=40)
    assert result.resumed == 5 and len(done) == 15 and len(set(done)) == 15
    untiled = np.asarray(segscope.segment(image, "watershed_instances").labels)
    assert same_partition(result.read(), untiled)
    assert not result.already_complete  # it ran the stages that were left
    again = run(path, "watershed_instances", out, tile=100, overlap=40)
    assert again.resumed == again.tiles and again.objects == result.objects and again.already_complete


def test_a_second_job_on_the_same_output_is_refused_while_the_first_runs(tmp_path):
    import fcntl

    path = write_tiff(tmp_path / "big.tif", blobs())
    out = tmp_path / "out.zarr"
    with open(tmp_path / "out.zarr.lock", "a+") as held:  # as a running job holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(FileExistsError, match="another segscope job is writing it now"):
            run(path, "otsu", out, tile=128, overlap=0, overwrite=True)
        assert not out.exists()
        fcntl.flock(held, fcntl.LOCK_UN)
    assert run(path, "otsu", out, tile=128, overlap=0).tiles == 12


def test_an_input_rewritten_in_place_is_another_job(tmp_path):
    # The same path, shape and dtype with other pixels: its tiles must not be reused.
    path = write_tiff(tmp_path / "big.tif", blobs(seed=1))
    out = tmp_path / "out.zarr"
    run(path, "otsu", out, tile=128, overlap=0)
    changed = blobs(seed=2)
    write_tiff(path, changed)
    with pytest.raises(FileExistsError, match="holds another job"):
        run(path, "otsu", out, tile=128, overlap=0)
    redone = run(path, "otsu", out, tile=128, overlap=0, overwrite=True)
    np.testing.assert_array_equal(redone.read(), segscope.segment(changed, "otsu").class_map())


def test_an_output_holding_another_job_is_refused_unless_overwritten(tmp_path):
    path = write_tiff(tmp_path / "big.tif", blobs())
    out = tmp_path / "out.zarr"
    run(path, "otsu", out, tile=128, overlap=0)
    with pytest.raises(FileExistsError, match=r"another job \(otsu on big.tif"):
        run(path, "li", out, tile=128, overlap=0)
    assert run(path, "li", out, tile=128, overlap=0, overwrite=True).method == "li"


@pytest.mark.slow
def test_a_two_worker_local_cluster_and_a_scheduler_address_run_the_same_job(tmp_path):
    distributed = pytest.importorskip("distributed")
    image = blobs(seed=4, bar=False)
    path = write_tiff(tmp_path / "big.tif", image)
    untiled = np.asarray(segscope.segment(image, "watershed_instances").labels)
    local = run(path, "watershed_instances", tmp_path / "a.zarr", tile=100, overlap=40, workers=2)
    assert local.executor == "local Dask cluster (2 processes)"
    assert same_partition(local.read(), untiled)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = run(path, "watershed_instances", tmp_path / "b.tif", tile=112, overlap=40,
                     scheduler=cluster.scheduler_address, workers=None)
    assert remote.executor.startswith(f"Dask cluster {cluster.scheduler_address}")
    assert same_partition(remote.read(), untiled)


# ------------------------------------------------------------------------- files and errors
def test_geotiff_tags_are_kept_and_zarr_inputs_read_lazily(tmp_path):
    import zarr

    image = blobs()
    geo = [(33550, "d", 3, (0.5, 0.5, 0.0), True),
           (33922, "d", 6, (0.0, 0.0, 0.0, 500000.0, 4100000.0, 0.0), True),
           (34735, "H", 8, (1, 1, 0, 1, 1024, 0, 1, 1), True)]
    path = tmp_path / "geo.tif"
    tifffile.imwrite(path, image, tile=(64, 64), extratags=geo)
    assert set(LargeImage(path).georeference) == {33550, 33922, 34735}
    result = run(path, "otsu", tmp_path / "out.tif", tile=128, overlap=0)
    with tifffile.TiffFile(result.path) as tif:
        page = tif.pages[0]
        assert tif.is_bigtiff and page.is_tiled and page.tilewidth == 128
        for code, _, _, value, _ in geo:
            assert tuple(np.ravel(page.tags[code].value)) == value, GEOTIFF_TAGS[code]
        np.testing.assert_array_equal(page.asarray(), segscope.segment(image, "otsu").class_map())
    assert not (tmp_path / "out.tif.parts.zarr").exists()

    store = tmp_path / "image.zarr"
    zarr.create_array(store, shape=image.shape, chunks=(50, 50), dtype="uint8")[:] = image
    lazy = LargeImage(store)
    np.testing.assert_array_equal(lazy.read(slice(10, 20), slice(5, 9)), image[10:20, 5:9])
    from_zarr = run(store, "otsu", tmp_path / "z.zarr", tile=128, overlap=0)
    np.testing.assert_array_equal(from_zarr.read(), segscope.segment(image, "otsu").class_map())


def test_clear_errors(tmp_path):
    path = write_tiff(tmp_path / "big.tif", blobs())
    with pytest.raises(ValueError, match="overlap must be at least 23"):
        run(path, "adaptive_gaussian", tmp_path / "a.zarr", params={"block_size": 35}, overlap=10)
    with pytest.raises(ValueError, match="connected=True cannot be tiled"):
        run(path, "kmeans", tmp_path / "b.zarr", params={"connected": True})
    with pytest.raises(ValueError, match=r"must end in \.zarr, \.tif or \.tiff"):
        run(path, "otsu", tmp_path / "c.png")
    with pytest.raises(ValueError, match="multiple of 16"):
        run(path, "otsu", tmp_path / "d.tif", tile=100)
    with pytest.raises(FileNotFoundError, match=r"missing\.tif"):
        run(tmp_path / "missing.tif", "otsu", tmp_path / "e.zarr")
    with pytest.raises(ValueError, match="either scheduler"):
        run(path, "otsu", tmp_path / "f.zarr", workers=2, scheduler="tcp://127.0.0.1:1")
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "d.tif").exists()


def test_cli_segment_tile(tmp_path, capsys):
    from segscope.cli.main import main

    image = blobs()
    path = write_tiff(tmp_path / "big.tif", image)
    out = tmp_path / "out.zarr"
    assert main(["segment", str(path), "-m", "watershed_instances", "--tile", "128", "--overlap", "40",
                 "-o", str(out), "--workers", "1", "-p", "min_size=30"]) == 0
    printed = capsys.readouterr().out
    assert "in 12 tiles on this process" in printed and "objects ->" in printed
    assert main(["segment", str(path), "-m", "watershed_instances", "--tile", "128", "--overlap", "40",
                 "-o", str(out), "--workers", "1", "-p", "min_size=30"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main(["segment", str(path), "-m", "otsu", "--tile", "128", "-o", str(out), "--workers", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_folders_run_in_parallel_on_local_workers_with_the_same_results(tmp_path, capsys):
    pytest.importorskip("distributed")
    from segscope.cli.main import main
    from segscope.io import read_label_png

    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(4):
        segscope.imwrite(folder / f"img{k}.png", blobs(120, 160, seed=k, count=12))
    assert main(["segment", str(folder), "-m", "watershed_instances", "-o", str(tmp_path / "serial")]) == 0
    assert main(["segment", str(folder), "-m", "watershed_instances", "-o", str(tmp_path / "parallel"),
                 "--workers", "2"]) == 0
    assert "segmented 4 of 4 images" in capsys.readouterr().out
    for k in range(4):
        np.testing.assert_array_equal(read_label_png(tmp_path / "serial" / f"img{k}.png"),
                                      read_label_png(tmp_path / "parallel" / f"img{k}.png"))


def test_whole_image_counts_are_shared_out_between_tiles(tmp_path):
    # slic's n_segments counts superpixels in the whole image: each tile asks for its share.
    image = blobs(seed=3)
    path = write_tiff(tmp_path / "big.tif", image)
    tiled = run(path, "slic", tmp_path / "out.zarr", params={"n_segments": 400}, tile=150, overlap=30)
    untiled = segscope.segment(image, "slic", n_segments=400)
    assert 0.6 < tiled.objects / len(untiled) < 1.6


@pytest.mark.parametrize("spatial_weight", [0.0, 0.5])
def test_kmeans_fits_one_set_of_centres_for_all_tiles(tmp_path, spatial_weight):
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 3, (30, 42)).repeat(10, 0).repeat(10, 1)
    image = np.clip(np.array([30, 120, 220])[levels] + rng.normal(0, 10, levels.shape), 0, 255)
    path = write_tiff(tmp_path / "levels.tif", image.astype(np.uint8))
    params = {"k": 3, "spatial_weight": spatial_weight}
    result = run(path, "kmeans", tmp_path / "out.zarr", params=params, tile=100, overlap=0)
    untiled = segscope.segment(image.astype(np.uint8), "kmeans", **params)
    # Classes are numbered by brightness, the same in every tile and as untiled.
    assert np.mean(result.read() == untiled.class_map()) > 0.999
    assert np.mean(result.read() == levels) > 0.999
    assert result.class_names == ("cluster_0", "cluster_1", "cluster_2")
