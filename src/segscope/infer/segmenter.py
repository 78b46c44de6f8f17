"""Run a trained checkpoint (PyTorch or exported ONNX) as a segscope method.

Images larger than the tile are segmented by a sliding window: tiles overlap, and each tile's
class probabilities are blended with a Gaussian weight that trusts tile centres more than tile
borders (as nnU-Net does), which removes seams. Flip test-time augmentation averages the
prediction of the image and of its mirror.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..checkpoint import Checkpoint, InputSpec
from ..result import Provenance, Segmentation
from .predictor import build_network, normalise_image, predicts

__all__ = ["Segmenter", "closed_objects", "export_onnx", "gaussian_weight", "sliding_window", "tile_starts"]

Logits = Callable[[np.ndarray], np.ndarray]  # (N, C_in, h, w) float32 -> (N, C, h, w) logits


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins covering ``0..length`` with the last tile flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def gaussian_weight(tile: int | Sequence[int], sigma_scale: float = 1 / 8) -> np.ndarray:
    """A Gaussian centred on a ``tile`` (a side, for a square, or one side per axis), normalised to
    a maximum of 1, never 0; its sigma is ``sigma_scale`` times each side (nnU-Net's 1/8)."""
    sides = (tile, tile) if isinstance(tile, int) else tuple(tile)
    weight = np.ones((), np.float64)
    for side in sides:
        axis = np.arange(side) - (side - 1) / 2
        weight = np.multiply.outer(weight, np.exp(-(axis**2) / (2 * (side * sigma_scale) ** 2)))
    weight /= weight.max()
    return np.maximum(weight, 1e-3).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def sliding_window(
    image: np.ndarray,
    logits_fn: Logits,
    *,
    num_classes: int,
    tile: int | None,
    overlap: float = 0.25,
    batch_size: int = 4,
    fixed_size: bool = False,
) -> np.ndarray:
    """Class probabilities (C, *S) of a normalised (C_in, *S) input: an (H, W) image or a
    (D, H, W) volume, in windows of ``tile`` along every spatial axis.

    Windows overlap by ``overlap`` and are blended with :func:`gaussian_weight`. With ``tile``
    None, or an input no larger than the tile, it goes through at once (unless ``fixed_size``: a
    backend that only takes tile-sized input, such as an exported ONNX model, gets it padded to
    the tile).
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
    size = image.shape[1:]
    if tile is None or (max(size) <= tile and not fixed_size):
        return _softmax(logits_fn(image[None]))[0]
    pads = [max(0, tile - n) for n in size]
    if any(pads):
        image = np.pad(image, ((0, 0), *((0, p) for p in pads)),
                       mode="reflect" if min(size) > 1 else "edge")
    full = image.shape[1:]
    stride = max(1, round(tile * (1 - overlap)))
    weight = gaussian_weight((tile,) * len(size))
    total = np.zeros((num_classes, *full), np.float32)
    norm = np.zeros(full, np.float32)
    origins = list(itertools.product(*(tile_starts(n, tile, stride) for n in full)))
    for k in range(0, len(origins), batch_size):
        chunk = origins[k : k + batch_size]
        windows = [tuple(slice(o, o + tile) for o in origin) for origin in chunk]
        batch = np.stack([image[(slice(None), *window)] for window in windows])
        probs = _softmax(logits_fn(batch))
        for window, p in zip(windows, probs, strict=True):
            total[(slice(None), *window)] += p * weight
            norm[window] += weight
    return (total / norm)[(slice(None), *(slice(0, n) for n in size))]


@predicts("semantic")
class Segmenter:
    """A trained model as a method: ``Segmenter.from_checkpoint(path).segment(image)``.

    Parameters
    ----------
    logits_fn : callable
        Normalised (N, C_in, h, w) float32 array to (N, C, h, w) logits.
    class_names : sequence of str
    inputs : InputSpec
        What the training images were: their normalisation (mean and standard deviation per input
        channel, after per-image percentiles when the model was trained so) and dtype; images of
        another dtype are brought to its units, or refused
        (:func:`~segscope.infer.predictor.to_training_units`).
    tile : int or None
        Sliding-window tile; images larger than it are tiled. None runs whole images.
    fixed_size : bool
        The backend only takes ``tile``-sized input (exported ONNX models).
    name : str
        Recorded as the method in each result's provenance (the model file).
    architecture : str or None
        The network's registered name, recorded in each result's ``provenance.details``.
    batch_size : int
        Sliding windows per forward pass; 1 uses the least memory.

    A checkpoint's ``decoding`` (or an ONNX model's metadata) may set :attr:`flip`,
    :attr:`score_threshold` and :attr:`seed_threshold`, the defaults of :meth:`segment`'s options
    of those names.
    """

    task = "semantic"
    decoded_by = ("flip", "score_threshold", "seed_threshold")
    """The defaults a checkpoint's ``decoding`` may set (a zoo card's ``decoding``, for one)."""
    flip = False
    """Average each image's probabilities with its mirror image's, unless ``segment`` says."""
    score_threshold: float | None = None
    """The two-class threshold ``segment`` applies unless it is given one (None: most probable)."""
    seed_threshold: float | None = None
    """Two-class models whose first class separates objects of the second (membranes between
    cells): ``segment`` closes every object by a seeded watershed unless it is told otherwise
    (None: off; see :meth:`segment`)."""

    def __init__(
        self,
        logits_fn: Logits,
        *,
        class_names: Sequence[str],
        inputs: InputSpec,
        tile: int | None = None,
        fixed_size: bool = False,
        name: str = "checkpoint",
        batch_size: int = 4,
        architecture: str | None = None,
    ) -> None:
        if fixed_size and tile is None:
            raise ValueError("a fixed-size backend needs a tile size")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.logits_fn = logits_fn
        self.class_names = list(class_names)
        self.inputs = inputs
        self.tile = tile
        self.fixed_size = fixed_size
        self.name = name
        self.architecture = architecture

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], *, device: str | None = None, tile: int | str | None = "auto"
    ) -> Segmenter:
        """Load a training checkpoint (read with ``weights_only=True``).

        ``tile``: ``"auto"`` tiles images larger than twice the training crop; an int sets the
        tile; None runs every image whole.
        """
        from ..checkpoint import load_checkpoint

        return cls.from_checkpoint_data(load_checkpoint(path), device=device, tile=tile, name=str(path))

    @classmethod
    def from_checkpoint_data(
        cls, checkpoint: Checkpoint, *, device: str | None = None, tile: int | str | None = "auto",
        name: str = "checkpoint",
    ) -> Segmenter:
        """A segmenter from a checkpoint already read; ``name`` (the file) goes into provenance."""
        if not (tile is None or tile == "auto" or (isinstance(tile, int) and tile > 0)):
            raise ValueError(f"tile must be 'auto', None or a positive int, got {tile!r}")
        import torch

        model, dev = build_network(checkpoint, device=device)

        def logits_fn(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(np.ascontiguousarray(batch)).to(dev)).float().cpu().numpy()

        crop = checkpoint.inputs.crop
        return cls(
            logits_fn,
            class_names=checkpoint.class_names,
            inputs=checkpoint.inputs,
            tile=(2 * crop if crop else None) if tile == "auto" else tile,  # type: ignore[arg-type]
            name=name,
            architecture=checkpoint.model,
        )._decoded(checkpoint.decoding)

    def _decoded(self, decoding: dict[str, float]) -> Segmenter:
        """This segmenter with the defaults ``decoding`` sets (validated like ``segment``'s)."""
        unknown = sorted(set(decoding) - set(self.decoded_by))
        if unknown:
            raise ValueError(f"{self.name}: decoding settings {unknown} are not a semantic model's "
                             f"({', '.join(self.decoded_by)})")
        if "flip" in decoding:
            self.flip = bool(decoding["flip"])
        if decoding.get("score_threshold") is not None:
            self.score_threshold = self._checked_threshold(float(decoding["score_threshold"]))
        if decoding.get("seed_threshold") is not None:
            self.seed_threshold = self._checked_threshold(float(decoding["seed_threshold"]), "seed_threshold")
        return self

    def _checked_threshold(self, threshold: float, name: str = "score_threshold") -> float:
        if len(self.class_names) != 2:
            raise ValueError(f"{self.name}: {name} applies to models of two classes; this one "
                             f"has {len(self.class_names)} ({', '.join(self.class_names)})")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {threshold}")
        return threshold

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str]) -> Segmenter:
        """Load a model written by ``segscope export`` (its metadata holds names and normalisation)."""
        import json

        import onnxruntime as ort

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such ONNX model")
        try:
            session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
        except Exception as exc:  # onnxruntime raises its own types for a file that is not a model
            raise ValueError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
        meta = session.get_modelmeta().custom_metadata_map
        if "segscope" not in meta:
            raise ValueError(f"{path}: not exported by segscope (no 'segscope' metadata)")
        info = json.loads(meta["segscope"])
        input_name = session.get_inputs()[0].name

        def logits_fn(batch: np.ndarray) -> np.ndarray:
            return session.run(None, {input_name: np.ascontiguousarray(batch, np.float32)})[0]

        return cls(
            logits_fn,
            class_names=info["class_names"],
            inputs=InputSpec(tuple(info["mean"]), tuple(info["std"]), info.get("dtype"),
                             percentiles=None if info.get("percentiles") is None
                             else tuple(info["percentiles"])),
            tile=int(info["tile"]),
            fixed_size=True,
            name=str(path),
            architecture=info.get("model", {}).get("name"),
        )._decoded(dict(info.get("decoding") or {}))

    def for_tiles(self) -> Segmenter:
        """One window per forward pass (tiles already bound the work per call); a shallow copy
        that shares the network, so ``segscope.segment``'s predictor keeps its batch."""
        import copy

        single = copy.copy(self)
        single.batch_size = 1
        return single

    def normalise(self, image: np.ndarray, *, channel_axis: int | None = None) -> np.ndarray:
        """A (C_in, H, W) float32 array, normalised as in training (no dtype rescaling)."""
        return normalise_image(image, self.inputs, channel_axis=channel_axis)

    def probabilities(
        self, image: np.ndarray, *, overlap: float = 0.25, flip: bool | None = None,
        channel_axis: int | None = None,
    ) -> np.ndarray:
        """Class probabilities (C, H, W) of an image; ``flip`` None: :attr:`flip`."""
        flip = self.flip if flip is None else flip
        x = self.normalise(image, channel_axis=channel_axis)
        n = len(self.class_names)
        probs = sliding_window(
            x, self.logits_fn, num_classes=n, tile=self.tile, overlap=overlap, fixed_size=self.fixed_size,
            batch_size=self.batch_size,
        )
        if flip:
            mirrored = sliding_window(
                np.ascontiguousarray(x[:, :, ::-1]),
                self.logits_fn,
                num_classes=n,
                tile=self.tile,
                overlap=overlap,
                fixed_size=self.fixed_size,
                batch_size=self.batch_size,
            )
            probs = (probs + mirrored[:, :, ::-1]) / 2
        return probs

    def segment(
        self, image: np.ndarray, *, overlap: float = 0.25, flip: bool | None = None,
        score_threshold: float | None = None, seed_threshold: float | Literal[False] | None = None,
        channel_axis: int | None = None,
    ) -> Segmentation:
        """A semantic :class:`Segmentation` with the class probabilities attached.

        Each pixel takes its most probable class. ``score_threshold`` (models of two classes
        only) chooses the threshold instead: the second class wherever its probability is at
        least this, the first elsewhere (0.5 is the most probable class, up to ties).

        ``seed_threshold`` (models of two classes whose first class separates objects of the
        second, such as membranes between cells) closes every object instead: the connected
        regions where the second class's probability is at least this are seeds, a watershed
        grows them down the probability until they meet, and the one-pixel lines where they meet
        are the first class (:func:`closed_objects`). A weak stretch of membrane then no longer
        joins two cells. With ``score_threshold`` as well, pixels below it stay the first class
        too. False turns a model's default seeds off.

        ``flip`` averages the image's probabilities with its mirror image's (test-time flip).
        Each option left as None takes the model's default (:attr:`flip`,
        :attr:`score_threshold`, :attr:`seed_threshold`: off unless the checkpoint's
        ``decoding`` sets them).
        """
        flip = self.flip if flip is None else flip
        score_threshold = self.score_threshold if score_threshold is None \
            else self._checked_threshold(score_threshold)
        if seed_threshold is True:
            raise ValueError("seed_threshold is a probability, False (off) or None (the model's default)")
        seeds = self.seed_threshold if seed_threshold is None else \
            None if seed_threshold is False else self._checked_threshold(seed_threshold, "seed_threshold")
        start = time.perf_counter()
        probs = self.probabilities(image, overlap=overlap, flip=flip, channel_axis=channel_axis)
        if seeds is not None:
            class_map = (closed_objects(probs[1], seed_threshold=seeds) > 0).astype(np.uint8)
            if score_threshold is not None:
                class_map[probs[1] < score_threshold] = 0
        elif score_threshold is None:
            class_map = probs.argmax(0).astype(np.uint8 if len(self.class_names) <= 255 else np.int32)
        else:
            class_map = (probs[1] >= score_threshold).astype(np.uint8)
        chosen = {"score_threshold": score_threshold, "seed_threshold": seeds}
        provenance = Provenance(
            self.name,
            parameters={"overlap": overlap, "flip": flip, "tile": self.tile,
                        **{k: v for k, v in chosen.items() if v is not None}},
            details={"model": self.architecture, **_units_note(image, self.inputs)},
            seconds=time.perf_counter() - start,
        )
        return Segmentation.from_class_map(
            class_map,
            num_classes=len(self.class_names),
            class_names=self.class_names,
            probabilities=probs,
            provenance=provenance,
        )


def closed_objects(probability: np.ndarray, *, seed_threshold: float) -> np.ndarray:
    """Object labels that a one-pixel line of label 0 closes, from one class's probability map.

    The seeds are the connected regions (4-connected in 2-D, faces in n-D) where ``probability``
    is at least ``seed_threshold``; a watershed of the negated probability grows each until it
    meets another, and the pixels where two meet are 0 (Beucher and Meyer's marker-controlled
    watershed, as electron-microscopy pipelines split cells on a membrane map). Every pixel but
    the lines joins an object (but the few the lines cut off from their seed, which join the
    lines), so an object is never joined to its neighbour through a gap in a weak boundary, and
    each object is one connected piece. Without any seed, every pixel is 0.

    Parameters
    ----------
    probability : (H, W) or (D, H, W) float ndarray
        The objects' class probability.
    seed_threshold : float
        The probability a seed's pixels reach.

    Returns
    -------
    ndarray of int32
        Objects numbered from 1; 0 on the lines between them.

    References
    ----------
    .. [1] S. Beucher and F. Meyer, "The morphological approach to segmentation: the watershed
           transformation", in Mathematical Morphology in Image Processing, 1993.

    Examples
    --------
    >>> p = np.array([[0.9, 0.8, 0.4, 0.7, 0.95]])  # two cells and a weak membrane between
    >>> closed_objects(p, seed_threshold=0.85).tolist()
    [[1, 1, 0, 2, 2]]
    """
    from scipy import ndimage
    from skimage.segmentation import watershed

    probability = np.asarray(probability)
    seeds, count = ndimage.label(probability >= seed_threshold)
    if count == 0:
        return np.zeros(probability.shape, np.int32)
    labels = watershed(-probability, seeds, watershed_line=True).astype(np.int32)
    # The lines can cut a few pixels off their basin; those join the lines, so that each object
    # is the one connected piece that holds its seed (and connected components give it back).
    pieces, _ = ndimage.label(labels > 0)
    kept = np.zeros(int(pieces.max()) + 1, bool)
    kept[np.unique(pieces[seeds > 0])] = True  # seeds lie inside objects: piece 0 (lines) stays out
    labels[~kept[pieces]] = 0
    return labels


def _units_note(image: np.ndarray, inputs: InputSpec) -> dict[str, str]:
    """What provenance says when the image was brought to the training dtype's units."""
    dtype, trained = np.asarray(image).dtype.name, inputs.dtype
    if inputs.percentiles is not None:
        return {"input_units": "each channel from its percentiles {:g} and {:g} to 0..1".format(
            *inputs.percentiles)}
    return {} if trained is None or dtype == trained else {"input_units": f"{dtype} scaled to {trained}"}


def export_onnx(
    checkpoint_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    tile: int | None = None,
    opset: int = 17,
) -> dict[str, Any]:
    """Export a checkpoint to ONNX at a fixed tile size (batch dynamic), written atomically.

    ``tile`` (default twice the training crop) is rounded up to a multiple the network takes at a
    fixed size (its ``export_divisor``: 32 for most, 256 for SwiftNet's pyramid pooling).

    The class names, normalisation and tile go into the model's metadata, so the file alone is
    enough to run it (``Segmenter.from_onnx``). Returns that metadata.
    """
    import io
    import json
    import warnings

    import onnx
    import torch

    from ..atomic import atomic_write_bytes
    from ..checkpoint import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint.task != "semantic":
        raise ValueError(f"{checkpoint_path}: ONNX export covers semantic models; this is a "
                         f"{checkpoint.task} model")
    model, _ = build_network(checkpoint, device="cpu")
    if getattr(model, "spatial_dims", 2) != 2:
        raise ValueError(f"{checkpoint_path}: ONNX export covers networks of 2-D images; {checkpoint.model} "
                         "takes volumes (run it with segscope.segment, or the checkpoint's own predictor)")
    size = tile or 2 * int(checkpoint.inputs.crop or 256)
    size += (-size) % model.export_divisor
    example = torch.zeros(1, model.in_channels, size, size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The trace fixes the padding for this tile size, which is what a fixed-size export wants.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buffer,
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    info = {
        "class_names": list(checkpoint.class_names),
        "mean": list(checkpoint.inputs.mean),
        "std": list(checkpoint.inputs.std),
        "percentiles": None if checkpoint.inputs.percentiles is None else list(checkpoint.inputs.percentiles),
        "tile": size,
        "dtype": checkpoint.inputs.dtype,
        "model": {"name": checkpoint.model, **checkpoint.options},
        "decoding": dict(checkpoint.decoding),
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = "segscope", json.dumps(info)
    atomic_write_bytes(output, proto.SerializeToString())
    return info
