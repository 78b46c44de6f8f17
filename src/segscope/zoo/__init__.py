"""Trained models that ship inside the package: the zoo.

Each zoo model is two files in this folder: ``<name>.pt``, a segscope checkpoint (weights in
int8 or fp16 where that loses nothing measurable, and the inference defaults its card's
``training.decoding`` sets, such as test-time flips), and ``<name>.json``, its card. The card says what the
model does (task, classes and their colours), what it expects (bands, dtype, value range, pixel
scale), how it was made (data, licence, the exact recipe and command, steps and images seen), what
it scores on held-out data and how fast it runs here (with the commands that measured them), and
the weights' sha256 and version. The registry is the folder: adding a model adds its two files
and touches nothing else.

A zoo name is a method wherever a method goes (``segscope.segment(image, "membranes")``,
``segscope segment ... -m membranes``, ``compare``, tiled jobs, ``predict``, ``export``). The
weights are checked against the card's sha256 before they are loaded, so a damaged or replaced
file is refused with a clear message; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes

__all__ = ["ZOO_DIR", "Figure", "ZooCard", "ZooIntegrityError", "verified_weights", "zoo_card", "zoo_cards"]

ZOO_DIR = Path(__file__).resolve().parent


class ZooIntegrityError(ValueError):
    """A zoo model's weights do not match the sha256 on its card."""


@dataclass(frozen=True)
class Figure:
    """One measured figure of a zoo model: what, on which data, and the command that measured it."""

    metric: str
    value: float
    data: str
    command: str
    peer: str | None = None
    peer_value: float | None = None


@dataclass(frozen=True)
class ZooCard:
    """A zoo model's card (see the module's docstring); read from ``<name>.json``."""

    name: str
    version: str
    task: str
    summary: str
    architecture: str
    class_names: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...]
    inputs: dict[str, Any]
    training: dict[str, Any]
    figures: tuple[Figure, ...]
    speed: dict[str, Any]
    weights: str
    sha256: str
    size_bytes: int
    licence: str
    notes: tuple[str, ...] = field(default=())

    @property
    def weights_path(self) -> Path:
        return ZOO_DIR / self.weights

    @classmethod
    def from_file(cls, path: Path) -> ZooCard:
        try:
            raw = json.loads(path.read_text())
            raw["class_names"] = tuple(raw["class_names"])
            raw["colours"] = tuple(tuple(int(v) for v in c) for c in raw["colours"])
            raw["figures"] = tuple(Figure(**f) for f in raw["figures"])
            raw["notes"] = tuple(raw.get("notes", ()))
            card = cls(**raw)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a valid zoo card ({exc})") from exc
        if card.name != path.stem:
            raise ValueError(f"{path}: the card names the model {card.name!r}, its file {path.stem!r}")
        if len(card.colours) != len(card.class_names):
            raise ValueError(f"{path}: {len(card.class_names)} classes but {len(card.colours)} colours")
        return card

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def save(self) -> Path:
        """Write the card to the zoo folder as ``<name>.json``, atomically; its path."""
        path = ZOO_DIR / f"{self.name}.json"
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path

    def describe(self) -> str:
        """A few lines for ``segscope models``."""
        figures = "; ".join(
            f"{f.metric} {f.value:.3f} on {f.data}" + (f" ({f.peer} {f.peer_value:.3f})" if f.peer else "")
            for f in self.figures) or "not measured"
        return (f"{self.name} (v{self.version}, {self.task}, {self.architecture}): {self.summary}\n"
                f"    classes: {', '.join(self.class_names)}\n"
                f"    input: {self.inputs.get('description', '')}\n"
                f"    held-out: {figures}\n"
                f"    speed: {self.speed.get('description', 'not measured')}; weights "
                f"{self.size_bytes / 1e6:.1f} MB, sha256 {self.sha256[:12]}...")


@cache
def zoo_cards() -> dict[str, ZooCard]:
    """Every card in the zoo folder, by name."""
    return {path.stem: ZooCard.from_file(path) for path in sorted(ZOO_DIR.glob("*.json"))}


def zoo_card(name: str) -> ZooCard:
    cards = zoo_cards()
    if name not in cards:
        raise ValueError(f"no zoo model named {name!r}; the zoo has {sorted(cards)}")
    return cards[name]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_VERIFIED: dict[tuple[str, int, int], str] = {}


def verified_weights(name: str) -> Path:
    """The path of a zoo model's weights, after checking them against the card's sha256 (once per
    file version in a process)."""
    card = zoo_card(name)
    path = card.weights_path
    if not path.is_file():
        raise ZooIntegrityError(f"zoo model {name!r}: its weights {path} are missing; reinstall segscope "
                                "or rebuild them with `make zoo`")
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _VERIFIED.get(key) != card.sha256:
        found = sha256_of(path)
        if found != card.sha256:
            raise ZooIntegrityError(
                f"zoo model {name!r}: {path} does not match the sha256 on its card ({found[:16]}... "
                f"instead of {card.sha256[:16]}...); the file is damaged or was replaced. Reinstall "
                "segscope, or rebuild the zoo with `make zoo`")
        _VERIFIED[key] = found
    return path
