"""HTML pages: a gallery of result pictures that opens offline (no CDN, no scripts)."""

from __future__ import annotations

import base64
import html
import io as _io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes

__all__ = ["GalleryItem", "png_data_uri", "write_gallery"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:22px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.grid{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;background:#fafafa;border:1px solid #e3e3e3;border-radius:6px;padding:8px}
figure img{max-width:360px;max-height:300px;display:block;image-rendering:pixelated}
figcaption{font-size:12px;color:#444;margin-top:6px;max-width:360px}
code{background:#f1f1f1;padding:1px 4px;border-radius:3px}
"""


@dataclass
class GalleryItem:
    """One picture: a PNG path (relative links) or an array (embedded), with a caption."""

    caption: str
    path: str | None = None
    image: np.ndarray | None = None
    details: dict[str, str] = field(default_factory=dict)


def png_data_uri(image: np.ndarray) -> str:
    """An RGB(A) uint8 array as a ``data:image/png;base64`` URI, for self-contained pages."""
    from PIL import Image

    buffer = _io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_gallery(
    path: str | os.PathLike[str],
    sections: Sequence[tuple[str, Sequence[GalleryItem]]],
    *,
    title: str = "segscope gallery",
    intro: str = "",
) -> None:
    """Write an HTML page with one titled grid of captioned pictures per section (atomically)."""
    out = Path(path)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><div class='grid'>")
        for item in items:
            if item.image is not None:
                src = png_data_uri(item.image)
            elif item.path is not None:
                src = html.escape(os.path.relpath(item.path, out.parent))
            else:
                raise ValueError(f"gallery item {item.caption!r} has neither path nor image")
            extra = "".join(f"<br>{html.escape(k)}: <code>{html.escape(v)}</code>"
                            for k, v in item.details.items())
            parts.append(f"<figure><img src='{src}' alt='{html.escape(item.caption)}'>"
                         f"<figcaption>{html.escape(item.caption)}{extra}</figcaption></figure>")
        parts.append("</div>")
    parts.append("</body></html>")
    atomic_write_bytes(out, "\n".join(parts).encode("utf-8"))
