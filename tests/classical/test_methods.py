"""Every classical method: agreement with reference implementations and invariants."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.filters as skf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage
from skimage import data, segmentation

import segscope
from segscope.classical import edges, histogram, plot_histogram

SAMPLES = {"camera": data.camera(), "coins": data.coins(), "astronaut": data.astronaut()}


@pytest.mark.parametrize("name", ["li", "yen", "triangle", "isodata", "mean", "minimum"])
@pytest.mark.parametrize("scale", [1, 4])  # uint8 and uint16
def test_histogram_thresholds_equal_scikit_image(name, scale):
    image = data.camera().astype(np.uint16) * scale + 3 if scale > 1 else data.camera()
    try:
        expected = float(getattr(skf, f"threshold_{name}")(image))
    except RuntimeError:  # the reference finds no threshold: we say so as a ValueError
        with pytest.raises(ValueError, match="no threshold found"):
            segscope.segment(image, name)
        return
    seg = segscope.segment(image, name)
    chosen = seg.provenance.details["threshold"]
    if name == "triangle" and image.dtype == np.uint8:
        # OpenCV's triangle on uint8 (used for speed) may land one grey level off; same split rule
        assert abs(chosen - expected) <= 1
    else:
        assert chosen == pytest.approx(expected)
    assert np.array_equal(seg.class_map(), (image > chosen).astype(np.uint8))


def test_threshold_failure_is_a_clear_error():
    image = np.zeros((10, 10), np.uint8)
    image[0, 0] = 255
    with pytest.raises(ValueError, match="minimum: no threshold found"):
        segscope.segment(image, "minimum")


def test_otsu_uint8_fast_path_equals_scikit_image_on_many_images():
    rng = np.random.default_rng(3)
    for image in [*SAMPLES.values(), rng.integers(0, 256, (50, 60), dtype=np.uint8)]:
        gray = segscope.imagecheck.to_gray(image)
        seg = segscope.segment(image, "otsu")
        assert seg.provenance.details["threshold"] == float(skf.threshold_otsu(gray))


def test_multi_otsu_with_two_classes_equals_otsu():
    image = data.coins()
    two = segscope.segment(image, "multi_otsu", classes=2)
    assert np.array_equal(two.class_map(), segscope.segment(image, "otsu").class_map())
    assert len(two.provenance.details["thresholds"]) == 1  # multi-level methods report a list
    seg = segscope.segment(image, "multi_otsu", classes=4)
    assert len(seg.provenance.details["thresholds"]) == 3
    assert seg.provenance.details["thresholds"] == pytest.approx(
        skf.threshold_multiotsu(image, classes=4).tolist())


def test_adaptive_gaussian_equals_scikit_image_threshold_local():
    image = data.camera()
    seg = segscope.segment(image, "adaptive_gaussian", block_size=31, offset=5)
    local = skf.threshold_local(image.astype(float), 31, method="gaussian", offset=5, mode="reflect")
    assert np.array_equal(seg.class_map(), (image > local).astype(np.uint8))


@pytest.mark.parametrize("offset", [0, 5, -2.5])
def test_adaptive_mean_sums_integer_blocks_exactly(offset):
    # Exact block sums (an int64 correlation with mirrored borders) are the reference; scikit-image's
    # float running mean may only disagree on ties, where the pixel equals its block's mean - offset.
    from scipy import ndimage

    image = data.camera()
    sums = ndimage.correlate(image.astype(np.int64), np.ones((31, 31), np.int64), mode="reflect")
    expected = (image.astype(np.float64) + offset) * 31 * 31 > sums
    seg = segscope.segment(image, "adaptive_mean", block_size=31, offset=offset)
    np.testing.assert_array_equal(seg.class_map(), expected.astype(np.uint8))
    local = skf.threshold_local(image.astype(float), 31, method="mean", offset=offset, mode="reflect")
    differ = seg.class_map() != (image > local)
    assert np.allclose(image[differ] + offset, (sums[differ] / 31**2))


@pytest.mark.parametrize("method", ["niblack", "sauvola"])
@pytest.mark.parametrize("kind", ["uint8", "uint16"])
def test_local_document_thresholds_equal_scikit_image(method, kind):
    # uint8 sums its squares in 16/32-bit integers, uint16 in float64: both exact, both equal
    # skimage. (Float images sum in a different order from skimage's integral image, so pixels
    # near their threshold can differ: 1493 of page()/255 at window 7, k=0.5, as before.)
    image = {"uint8": data.page(), "uint16": data.page().astype(np.uint16) * 250}[kind]
    for window, k in ((25, 0.2), (7, 0.5), (51, -0.1)):
        seg = segscope.segment(image, method, window_size=window, k=k)
        local = getattr(skf, f"threshold_{method}")(image, window_size=window, k=k)
        assert np.array_equal(seg.class_map(), (image > local).astype(np.uint8))


def test_adaptive_gaussian_equals_scikit_image_on_more_images():
    for image in (data.coins(), data.page(), data.moon(), data.text()):
        for block, offset in ((3, 0), (11, 5), (35, -2.5)):
            seg = segscope.segment(image, "adaptive_gaussian", block_size=block, offset=offset)
            local = skf.threshold_local(image.astype(float), block, method="gaussian",
                                        offset=offset, mode="reflect")
            assert np.array_equal(seg.class_map(), (image > local).astype(np.uint8))


def test_histogram_counts_and_plot(tmp_path):
    image = data.astronaut()
    hist = histogram(image)
    assert hist.counts.shape == (3, 256) and hist.counts.sum() == image.size
    assert np.array_equal(hist.counts[0], np.bincount(image[..., 0].ravel(), minlength=256))
    float_hist = histogram(data.camera().astype(np.float32) / 255, bins=16)
    assert float_hist.counts.shape == (1, 16) and float_hist.edges.size == 17
    picture = plot_histogram(data.camera(), thresholds=[100.0], path=tmp_path / "h.png")
    assert picture.ndim == 3 and (tmp_path / "h.png").is_file()


@pytest.mark.parametrize("operator", ["sobel", "prewitt", "scharr", "roberts"])
def test_gradient_operators_equal_scikit_image(operator):
    image = data.camera()
    assert np.allclose(edges(image, operator=operator),
                       getattr(skf, operator)(image.astype(float)))


def _canny_cases():
    rng = np.random.default_rng(5)
    for name in ("camera", "coins", "page", "moon", "text"):
        for sigma in (0.0, 0.5, 1.0, 3.0):
            yield getattr(data, name)(), sigma, None, None
    yield data.camera(), 1.0, 20, 60
    yield data.camera().astype(np.uint16) * 257, 2.0, None, None
    yield data.camera() / 255.0, 1.0, 0.05, 0.3
    yield data.camera().astype(np.float32) / 255, 1.5, None, None
    yield data.camera().astype(np.int16), 1.0, None, None  # scikit-image's own path
    for shape in ((1, 9), (20, 1), (3, 3), (5, 7), (12, 40)):  # smaller than the kernel
        yield rng.integers(0, 256, shape).astype(np.uint8), 3.0, None, None


def test_canny_equals_scikit_image():
    # Our compiled Canny (float32 smoothing for 8/16-bit images) against skimage.feature.canny,
    # pixel for pixel: across these 31 cases not one edge pixel differs.
    from skimage.feature import canny

    for image, sigma, low, high in _canny_cases():
        ours = edges(image, operator="canny", sigma=sigma, low_threshold=low, high_threshold=high)
        theirs = canny(image, sigma=sigma, low_threshold=low, high_threshold=high)
        assert ours.dtype == bool and np.array_equal(ours, theirs), (image.shape, image.dtype, sigma)
    with pytest.raises(ValueError, match="must not exceed"):
        edges(data.camera(), operator="canny", low_threshold=100, high_threshold=50)


def test_canny_and_log():
    image = data.camera()
    assert np.allclose(edges(image, operator="log", sigma=2),
                       np.abs(ndimage.gaussian_laplace(image.astype(float), 2)))
    with pytest.raises(ValueError, match="operator must be one of"):
        edges(image, operator="sobell")


@pytest.mark.parametrize("mode", ["watershed", "enclosed"])
def test_edge_regions_partition(mode):
    seg = segscope.segment(data.coins(), "edge_regions", mode=mode)
    assert (seg.labels > 0).all() and len(seg) > 1


def test_felzenszwalb_and_slic_equal_scikit_image():
    image = data.astronaut()
    fz = segscope.segment(image, "felzenszwalb", scale=100, sigma=0.5, min_size=20)
    ref = segmentation.felzenszwalb(image, scale=100, sigma=0.5, min_size=20, channel_axis=-1)
    assert np.array_equal(fz.labels, ref + 1)
    sl = segscope.segment(image, "slic", n_segments=200, compactness=10, sigma=1)
    ref = segmentation.slic(image, n_segments=200, compactness=10, sigma=1, start_label=1)
    assert np.array_equal(sl.labels, ref)


def test_connected_components_equal_scipy():
    rng = np.random.default_rng(0)
    mask = ndimage.binary_opening(rng.random((80, 90)) > 0.6)
    for connectivity, structure in ((1, None), (2, np.ones((3, 3)))):
        seg = segscope.segment(mask, "connected_components", connectivity=connectivity)
        ref, count = ndimage.label(mask, structure=structure)
        assert len(seg) == count
        # same partition up to renumbering
        pairs = set(zip(seg.labels.ravel().tolist(), ref.ravel().tolist(), strict=True))
        assert len(pairs) == count + 1


def test_kmeans_is_stable_and_ordered():
    image = data.astronaut()
    a = segscope.segment(image, "kmeans", k=3, seed=1)
    b = segscope.segment(image, "kmeans", k=3, seed=2)
    agree = (a.class_map() == b.class_map()).mean()
    assert agree > 0.95
    centres = np.array(a.provenance.details["centres"]).mean(axis=1)
    assert np.all(np.diff(centres) > 0)
    regions = segscope.segment(image, "kmeans", k=3, connected=True)
    assert regions.kind == "regions" and len(regions) >= 3
    # the result matches OpenCV's nearest-centre assignment for the recorded centres
    full = np.array(a.provenance.details["centres"], np.float32)
    dist = ((image.reshape(-1, 1, 3).astype(np.float32) - full[None]) ** 2).sum(-1)
    assert np.array_equal(a.class_map().ravel(), dist.argmin(1))


def test_mean_shift_needs_uint8():
    with pytest.raises(TypeError, match="uint8"):
        segscope.segment(data.camera().astype(np.float32), "mean_shift")
    seg = segscope.segment(data.coins(), "mean_shift", min_size=50)
    assert (seg.areas() >= 50).all()


def test_region_merging_reduces_superpixels():
    seg = segscope.segment(data.astronaut(), "region_merging", n_segments=300, threshold=25)
    assert 1 < len(seg) < seg.provenance.details["superpixels"]
    bnd = segscope.segment(data.coins(), "region_merging", criterion="boundary", threshold=0.05)
    assert len(bnd) >= 1


# ------------------------------------------------------------ our own algorithms
def _distinct_seeds(draw, shape):
    n = draw(st.integers(1, 6))
    cells = draw(st.lists(st.tuples(st.integers(0, shape[0] - 1), st.integers(0, shape[1] - 1)),
                          min_size=n, max_size=n, unique=True))
    return cells


@settings(max_examples=60, deadline=None)
@given(data_=st.data(), tolerance=st.one_of(st.none(), st.floats(0, 50)))
def test_region_growing_properties(data_, tolerance):
    # Seeds as a list of pairs are points even on an (N, 2) image, where an array would be ambiguous.
    image = data_.draw(hnp.arrays(np.uint8, st.tuples(st.integers(1, 15), st.integers(1, 15))))
    seeds = _distinct_seeds(data_.draw, image.shape)
    seg = segscope.segment(image, "region_growing", seeds=seeds, tolerance=tolerance)
    for k, (r, c) in enumerate(seeds, start=1):
        assert seg.labels[r, c] == k  # every seed keeps its own label
        region = seg.labels == k
        assert ndimage.label(region)[1] == 1  # and its region is connected (4-neighbours)
    if tolerance is None:
        assert (seg.labels > 0).all()  # without tolerance the image is covered
    fortran = segscope.segment(np.asfortranarray(image), "region_growing", seeds=seeds,
                               tolerance=tolerance)
    assert np.array_equal(fortran.labels, seg.labels)


def test_region_growing_hand_worked_order():
    # The middle pixel (5) is 1 from region A's mean (4) and 4 from B's (9): it joins A.
    image = np.array([[4, 5, 9]], np.uint8)
    seg = segscope.segment(image, "region_growing", seeds=np.array([[0, 0], [0, 2]]))
    assert seg.labels.tolist() == [[1, 1, 2]]
    # with a tolerance below every distance nothing grows
    seg = segscope.segment(image, "region_growing", seeds=np.array([[0, 0], [0, 2]]),
                           tolerance=0.5)
    assert seg.labels.tolist() == [[1, 0, 2]]


def test_region_growing_follows_watershed_on_a_clear_image():
    image = data.coins()
    markers = np.zeros(image.shape, np.int32)
    markers[image < 30] = 1
    markers[image > 150] = 2
    seg = segscope.segment(image, "region_growing", seeds=markers)
    ref = segmentation.watershed(skf.sobel(image.astype(float)), markers)
    assert (seg.labels == ref).mean() > 0.9


@settings(max_examples=60, deadline=None)
@given(image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20))),
       threshold=st.integers(0, 120))
def test_split_and_merge_regions_pass_the_homogeneity_test(image, threshold):
    seg = segscope.segment(image, "split_and_merge", threshold=threshold, min_block=1, min_size=0)
    assert (seg.labels > 0).all()
    maxima = ndimage.maximum(image, seg.labels, seg.ids)
    minima = ndimage.minimum(image, seg.labels, seg.ids)
    assert (np.asarray(maxima) - np.asarray(minima) <= threshold).all()
    for seg_id in seg.ids:
        assert ndimage.label(seg.labels == seg_id)[1] == 1  # merged only through adjacency
    fortran = segscope.segment(np.asfortranarray(image), "split_and_merge", threshold=threshold,
                               min_block=1, min_size=0)
    assert np.array_equal(fortran.labels, seg.labels)


def test_split_and_merge_hand_worked():
    image = np.zeros((4, 4), np.uint8)
    image[:2, :2] = 100  # one homogeneous quadrant differs
    seg = segscope.segment(image, "split_and_merge", threshold=10, min_block=1, min_size=0)
    assert len(seg) == 2
    assert seg.provenance.details["blocks"] == 4  # the root splits once into four quadrants


@pytest.mark.parametrize("name", sorted(m.name for m in segscope.methods()))
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "bool"])
def test_every_method_accepts_common_dtypes(name, dtype):
    image = data.coins()[:64, :64]
    if dtype == "bool":
        image = image > 100
    elif dtype == "uint16":
        image = image.astype(np.uint16) * 100
    elif dtype == "float32":
        image = image.astype(np.float32) / 255
    if name == "mean_shift" and dtype != "uint8":
        with pytest.raises(TypeError, match="uint8"):
            segscope.segment(image, name)
        return
    if name == "minimum" and dtype in ("bool", "uint16"):
        # 2 values, or sparse 16-bit histograms, have no two-peaked histogram to split
        with pytest.raises(ValueError, match="no threshold found"):
            segscope.segment(image, name)
        return
    if name in ("multi_otsu", "kmeans") and dtype == "bool":
        with pytest.raises(ValueError, match="distinct"):
            segscope.segment(image, name)
        return
    seg = segscope.segment(image, name)
    assert seg.shape == (64, 64)
    # The result is of the task the method is registered for, whatever the input's dtype.
    assert seg.kind == next(m.task for m in segscope.methods() if m.name == name)


@pytest.mark.parametrize("name", sorted(m.name for m in segscope.methods()))
def test_every_method_on_rgba_and_multiband(name):
    rgba = np.dstack([data.astronaut()[:48, :48], np.full((48, 48), 255, np.uint8)])
    assert segscope.segment(rgba, name).shape == (48, 48)
    if name == "mean_shift":  # 8-bit grey or RGB only
        return
    bands = np.random.default_rng(0).random((5, 40, 40)).astype(np.float32)
    if name == "region_merging":
        with pytest.raises(ValueError, match="1 or 3 bands"):
            segscope.segment(bands, name, channel_axis=0)
        return
    assert segscope.segment(bands, name, channel_axis=0).shape == (40, 40)


def test_seed_points_on_an_n_by_2_image_are_unambiguous():
    image = np.array([[0, 0], [0, 50], [90, 90]], np.uint8)
    as_points = segscope.segment(image, "region_growing", seeds=[(0, 0), (2, 1)])
    assert as_points.labels[0, 0] == 1 and as_points.labels[2, 1] == 2
    label_image = np.array([[1, 0], [0, 0], [0, 2]], np.int32)  # same shape as the image
    as_labels = segscope.segment(image, "region_growing", seeds=label_image)
    assert as_labels.labels[0, 0] == 1 and as_labels.labels[2, 1] == 2
    ws = segscope.segment(image, "watershed", markers=[(0, 0), (2, 0)])
    assert ws.labels[0, 0] != ws.labels[2, 0]


@settings(max_examples=50, deadline=None)
@given(data_=st.data(), min_size=st.integers(1, 30))
def test_absorb_small_merges_whole_regions_until_none_is_small(data_, min_size):
    from segscope.classical._common import absorb_small

    shape = data_.draw(st.tuples(st.integers(1, 12), st.integers(1, 12)))
    labels = data_.draw(hnp.arrays(np.int64, shape, elements=st.integers(1, 6)))
    values = data_.draw(hnp.arrays(np.float64, (*shape, 2), elements=st.floats(0, 255)))
    # Start from connected regions, as every caller does.
    start = np.zeros(shape, np.int64)
    for value in np.unique(labels):
        pieces, _ = ndimage.label(labels == value)
        start[pieces > 0] = pieces[pieces > 0] + start.max()
    out = absorb_small(start, values, min_size)
    assert out.dtype == np.int32 and out.min() == 1
    assert np.array_equal(np.unique(out), np.arange(1, out.max() + 1))  # sequential
    pairs = set(zip(start.ravel().tolist(), out.ravel().tolist(), strict=True))
    assert len(pairs) == len(np.unique(start))  # no input region was split
    sizes = np.bincount(out.ravel())[1:]
    for region in range(1, out.max() + 1):
        assert ndimage.label(out == region)[1] == 1  # merged only through adjacency
    if (sizes < min_size).any():
        assert len(sizes) == 1  # a small region is left only when it is the whole image


def test_mean_shift_groups_modes_closer_than_half_the_colour_radius():
    from segscope.classical.clustering import _group_close_colours

    ramp = np.repeat(np.arange(0, 40, 4, dtype=np.float64)[None, :, None], 3, axis=0)
    assert _group_close_colours(ramp, 5.0).max() == 1  # small steps chain into one region
    step = ramp.copy()
    step[:, 5:] += 50
    labels = _group_close_colours(step, 5.0)
    assert labels.max() == 2 and (labels[:, :5] == 1).all() and (labels[:, 5:] == 2).all()


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]),
                  hnp.array_shapes(min_dims=2, max_dims=2, max_side=25), elements=st.floats(0, 20, width=32)),
       st.sampled_from([0.25, 1.0, 3.0, 30.0]))
def test_h_extrema_equal_scikit_image(image, h):
    # Vincent's hybrid reconstruction (no sort) against skimage's, exact on any float image.
    from skimage import morphology

    from segscope.classical._common import h_maxima, h_minima

    assert np.array_equal(h_maxima(image, h), morphology.h_maxima(image, h))
    assert np.array_equal(h_minima(image, h), morphology.h_minima(image, h))


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, max_side=30)))
def test_fill_holes_equals_scipy(mask):
    from segscope.classical._common import fill_holes

    assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
