"""``segscope serve``: a small offline web app over segscope (needs segscope[serve]).

Open an image from a folder or upload one; run any method or zoo model with a form made from its
parameters (large images tiled); see the overlay with its legend and, when a truth is present,
its scores; compare methods side by side; correct by pointing (positive and negative clicks, a
box, a brush, an eraser, undo); download the result as a label PNG, COCO JSON or ``.npz``. See
:mod:`segscope.serve.app` for the routes and what keeps it safe.
"""

from __future__ import annotations

__all__ = ["Settings", "create_app", "serve"]


def __getattr__(name: str) -> object:
    # Starlette is imported when the app is asked for, so that `import segscope.serve.catalogue`
    # works without the serve extra.
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
