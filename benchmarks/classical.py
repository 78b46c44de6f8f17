"""Time every classical method against the fastest public implementation of the same algorithm.

    python benchmarks/classical.py [--repeat 3]

A 2048x2048 grey image and a 1024x1024 colour image (scikit-image samples, tiled), both methods
in the same run, best of ``--repeat``; the ratio is segscope / peer (1.00 = the wrapper costs
nothing). Methods no library has are compared with the target the issue sets: region_growing
against scikit-image's marker watershed on the same seeds, split_and_merge against 1 s.
The first call of a numba-compiled method is reported apart.

Agreement where the faster path could differ is asserted by the tests, not here: Canny equals
``skimage.feature.canny`` pixel for pixel (tests/classical/test_methods.py, 31 cases), the local
thresholds equal scikit-image's ``threshold_local`` / ``threshold_niblack`` / ``threshold_sauvola``,
and h-maxima / h-minima (inside the watersheds) equal scikit-image's on every drawn image.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import skimage.filters as skf
from skimage import data, segmentation

import segscope
from segscope.classical.watershed import gradient_surface, minima_markers


def _box_niblack(grey: np.ndarray, window: int, k: float) -> np.ndarray:
    """The fastest public local mean and deviation: two float32 box filters (OpenCV)."""
    data32 = grey.astype(np.float32)
    mean = cv2.boxFilter(data32, -1, (window, window), borderType=cv2.BORDER_REFLECT_101)
    square = cv2.boxFilter(data32 * data32, -1, (window, window), borderType=cv2.BORDER_REFLECT_101)
    return grey > mean - k * np.sqrt(np.maximum(square - mean * mean, 0))


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    grey = np.tile(data.camera(), (4, 4))  # 2048 x 2048 uint8
    colour = np.tile(data.astronaut(), (2, 2, 1))  # 1024 x 1024 x 3 uint8
    small_colour = data.astronaut()  # 512 x 512: for the slow pure-Python peers

    first = time.perf_counter()
    segscope.segment(grey[:64, :64], "region_growing")
    segscope.segment(grey[:64, :64], "split_and_merge")
    compile_s = time.perf_counter() - first

    # Seeds: the automatic markers (h-minima of the gradient), not a finished labelling.
    surface = gradient_surface(grey, smoothing=1.0)
    markers = minima_markers(surface, 0.1 * float(surface.max() - surface.min()))
    sobel = skf.sobel(skf.gaussian(grey.astype(float), sigma=1.0, preserve_range=True))
    rows: list[tuple[str, str, Callable[[], object], Callable[[], object] | None, str]] = [
        (
            "otsu",
            "grey",
            lambda: segscope.segment(grey, "otsu"),
            lambda: grey > cv2.threshold(grey, 0, 255, cv2.THRESH_OTSU)[0],
            "OpenCV",
        ),
        (
            "multi_otsu",
            "grey",
            lambda: segscope.segment(grey, "multi_otsu"),
            lambda: np.digitize(grey, skf.threshold_multiotsu(grey)),
            "scikit-image",
        ),
        (
            "triangle",
            "grey",
            lambda: segscope.segment(grey, "triangle"),
            lambda: grey > cv2.threshold(grey, 0, 255, cv2.THRESH_TRIANGLE)[0],
            "OpenCV",
        ),
    ]
    for name in ("li", "yen", "isodata", "mean", "minimum"):
        rows.append(
            (
                name,
                "grey",
                lambda n=name: segscope.segment(grey, n),
                lambda n=name: grey > getattr(skf, f"threshold_{n}")(grey),
                "scikit-image",
            )
        )
    rows += [
        (
            "threshold",
            "grey",
            lambda: segscope.segment(grey, "threshold", value=100),
            lambda: cv2.threshold(grey, 100, 1, cv2.THRESH_BINARY)[1],
            "OpenCV",
        ),
        (
            "adaptive_mean",
            "grey",
            lambda: segscope.segment(grey, "adaptive_mean"),
            lambda: cv2.adaptiveThreshold(grey, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 35, 0),
            "OpenCV adaptiveThreshold",
        ),
        (
            "adaptive_gaussian",
            "grey",
            lambda: segscope.segment(grey, "adaptive_gaussian"),
            lambda: cv2.adaptiveThreshold(grey, 1, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 35, 0),
            "OpenCV adaptiveThreshold",
        ),
        (
            "niblack",
            "grey",
            lambda: segscope.segment(grey, "niblack"),
            lambda: _box_niblack(grey, 25, 0.2),
            "two OpenCV boxFilter passes",
        ),
        (
            "sauvola",
            "grey",
            lambda: segscope.segment(grey, "sauvola"),
            lambda: _box_niblack(grey, 25, 0.2),
            "two OpenCV boxFilter passes",
        ),
        (
            "edges canny",
            "grey",
            lambda: segscope.classical.edges(grey, operator="canny"),
            lambda: cv2.Canny(grey, 50, 150),
            "OpenCV Canny",
        ),
        (
            "watershed (markers)",
            "grey",
            lambda: segscope.segment(grey, "watershed", markers=markers),
            lambda: cv2.watershed(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), markers.astype(np.int32).copy()),
            "OpenCV watershed",
        ),
        (
            "region_growing",
            "grey",
            lambda: segscope.segment(grey, "region_growing", seeds=markers),
            lambda: segmentation.watershed(sobel, markers),
            "skimage watershed (target <= 2x)",
        ),
        ("split_and_merge", "grey", lambda: segscope.segment(grey, "split_and_merge"), None, "target < 1 s"),
        (
            "connected_components",
            "grey",
            lambda: segscope.segment(grey > 100, "connected_components"),
            lambda: cv2.connectedComponents((grey > 100).astype(np.uint8), connectivity=8),
            "OpenCV",
        ),
        (
            "felzenszwalb",
            "colour",
            lambda: segscope.segment(colour, "felzenszwalb"),
            lambda: segmentation.felzenszwalb(colour, scale=500, sigma=0.8, min_size=200),
            "scikit-image",
        ),
        (
            "slic",
            "colour",
            lambda: segscope.segment(colour, "slic", n_segments=400),
            lambda: segmentation.slic(colour, n_segments=400, compactness=10, sigma=1, start_label=1),
            "scikit-image",
        ),
        (
            "kmeans",
            "colour",
            lambda: segscope.segment(colour, "kmeans"),
            lambda: cv2.kmeans(
                colour.reshape(-1, 3).astype(np.float32),
                4,
                None,
                (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4),
                3,
                cv2.KMEANS_PP_CENTERS,
            ),
            "OpenCV full fit",
        ),
        (
            "mean_shift",
            "colour",
            lambda: segscope.segment(colour, "mean_shift"),
            lambda: cv2.pyrMeanShiftFiltering(colour, 12, 30),
            "OpenCV filter only",
        ),
        (
            "region_merging",
            "colour 512",
            lambda: segscope.segment(small_colour, "region_merging"),
            None,
            "scikit-image RAG (inside)",
        ),
        ("edge_regions", "grey", lambda: segscope.segment(grey, "edge_regions"), None, ""),
    ]
    print(f"first-call compile of numba kernels: {compile_s:.2f} s (cached on disk afterwards)")
    print(f"{'method':24s} {'image':10s} {'segscope s':>11s} {'peer s':>9s} {'ratio':>7s}  peer")
    for name, image, ours, peer, peer_name in rows:
        ours_s = best_of(ours, args.repeat)
        if peer is None:
            print(f"{name:24s} {image:10s} {ours_s:11.3f} {'':>9s} {'':>7s}  {peer_name}")
            continue
        peer_s = best_of(peer, args.repeat)
        print(f"{name:24s} {image:10s} {ours_s:11.3f} {peer_s:9.3f} {ours_s / peer_s:7.2f}  {peer_name}")


if __name__ == "__main__":
    main()
