"""``make demo``: every registered method on scikit-image's bundled samples, as an HTML gallery.

Run with ``python -m segscope.demo [OUTDIR]`` (default ``demo_out``). Works offline: the sample
images ship inside scikit-image.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import segscope
from segscope.classical import plot_histogram
from segscope.io import write_label_png
from segscope.viz import GalleryItem, write_gallery

SAMPLES = ("camera", "coins", "astronaut")


def sample(name: str) -> np.ndarray:
    from skimage import data

    return np.asarray(getattr(data, name)())


def write_samples(outdir: str | Path) -> dict[str, np.ndarray]:
    """Write the samples as ``<name>.png`` into ``outdir`` (``make serve`` opens them); the images."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    images = {name: sample(name) for name in SAMPLES}
    for name, image in images.items():
        segscope.imwrite(outdir / f"{name}.png", image)
    return images


def run(outdir: Path) -> Path:
    from segscope.cli._progress import progress

    images = write_samples(outdir)
    sections = []
    originals = []
    for name, image in images.items():
        originals.append(GalleryItem(f"{name} {image.shape} {image.dtype}",
                                     path=str(outdir / f"{name}.png")))
    sections.append(("Input images (scikit-image samples)", originals))
    jobs = [(m, n) for m in segscope.methods() for n in SAMPLES]
    items: dict[str, list[GalleryItem]] = {}
    for info, name in progress(jobs, desc="demo", unit="run"):
        image = images[name]
        seg = segscope.segment(image, info.name)
        stem = f"{name}_{info.name}"
        write_label_png(outdir / f"{stem}_labels.png", seg.labels)
        segscope.overlay(image, seg, path=outdir / f"{stem}_overlay.png")
        prov = seg.provenance
        details = {"segments": str(len(seg)), "seconds": f"{prov.seconds:.3f}" if prov and
                   prov.seconds is not None else "?"}
        if prov:
            details.update({k: _short(v) for k, v in prov.details.items()})
        items.setdefault(info.name, []).append(
            GalleryItem(f"{name}: {seg.kind}", path=str(outdir / f"{stem}_overlay.png"),
                        details=details))
        chosen = prov.details.get("thresholds", prov.details.get("threshold")) if prov else None
        if isinstance(chosen, (int, float, list)):
            values = chosen if isinstance(chosen, list) else [chosen]
            plot_histogram(image, thresholds=values, title=f"{name}: {info.name}",
                           path=outdir / f"{stem}_histogram.png")
            items[info.name].append(GalleryItem(f"{name}: histogram, chosen threshold",
                                                path=str(outdir / f"{stem}_histogram.png")))
    for info in segscope.methods():
        sections.append((f"{info.name} [{info.task}]: {info.summary}", items[info.name]))
    sections.append(("The three tasks on one scene (segscope.datasets.synthetic_shapes)", _tasks(outdir)))
    index = outdir / "index.html"
    write_gallery(index, sections, title="segscope demo",
                  intro=f"segscope {segscope.__version__}: every registered method on "
                  f"{', '.join(SAMPLES)}. Label PNGs sit beside this page.")
    return index


def _tasks(outdir: Path) -> list[GalleryItem]:
    """A synthetic scene's semantic, instance and panoptic truth, and the panoptic fusion of the
    first two, to show what each task asks for."""
    from segscope.datasets import SHAPES_THINGS, synthetic_shapes
    from segscope.panoptic import fuse

    scene = synthetic_shapes(1, 192, seed=7)[0]
    fused = fuse(scene.semantic, scene.instances, things=SHAPES_THINGS, min_stuff_area=64)
    views = [
        ("scene", None, "sky and ground (stuff), discs and squares (things) hiding one another"),
        ("semantic", scene.semantic, "a class per pixel: every disc one colour, every square another"),
        ("instance", scene.instances, "each object its own mask; stuff is not labelled"),
        ("panoptic", scene.panoptic, "every pixel a class, and things an instance too"),
        ("fused", fused, "panoptic.fuse(semantic, instances): the same panoptic result from the parts"),
    ]
    items = []
    for name, seg, caption in views:
        path = outdir / f"shapes_{name}.png"
        if seg is None:
            segscope.imwrite(path, scene.image)
        else:
            segscope.overlay(scene.image, seg, alpha=0.6, path=path)
        items.append(GalleryItem(f"{name}: {caption}", path=str(path)))
    return items


def _short(value: object) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) < 60 else text[:57] + "..."


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    outdir = Path(argv[0]) if argv else Path("demo_out")
    index = run(outdir)
    print(f"demo gallery: {index.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
