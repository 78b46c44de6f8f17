"""The robustness campaign: every corpus file (corpus.py) through every reader, every command of
the ``segscope`` CLI and the Python entry points that take it; and hostile values for every
numeric and list option of the commands.

    python tests/robustness/campaign.py [--docs docs/robustness.md]

Each (input, target) pair is judged:

- ``ok``: read or segmented;
- ``refused``: a ``ValueError``/``TypeError``/``OSError`` (Python) or a non-zero exit with a
  message (CLI) that names the file, or argparse's usage error for a bad option value;
- a defect otherwise: ``CRASH <type>`` (any other exception, or a traceback out of the CLI),
  ``UNNAMED`` (refused without naming the file), ``HANG`` (over 30 s) or ``MEMORY`` (the process
  grew by 500 MiB).

It prints one table per kind of input and the totals; ``--docs`` rewrites the tables in that
page between the campaign markers. It needs only names that segscope has had since its first
release where it can, and skips a target whose function the installed version lacks, so the same
campaign measures an older checkout (``PYTHONPATH=old/src python campaign.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import make_corpus

TIMEOUT_S = 30
MEMORY_MIB = 500
START, END = "<!-- campaign:start -->", "<!-- campaign:end -->"


class Hang(Exception):
    pass


@dataclass
class Context:
    scratch: Path
    good_image: Path  # a folder with one ordinary image
    checkpoint: Path | None  # a small trained checkpoint, when torch is there

    def fresh(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(dir=self.scratch, prefix=name))
        return path


def _function(module: str, name: str) -> Callable[..., object] | None:
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return None


def cli(*argv: object) -> Callable[[Path, Context], tuple[int, str]]:
    """A CLI call; ``{F}`` stands for the input, ``{OUT}`` a fresh output folder, ``{CK}`` the
    checkpoint and ``{IMG}`` the good image folder."""
    def run(path: Path, ctx: Context) -> tuple[int, str]:
        from segscope.cli.main import main

        out = ctx.fresh("out")
        args = [str(a).format(F=path, OUT=out, CK=ctx.checkpoint, IMG=ctx.good_image) for a in argv]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(args)
            except SystemExit as exit_:  # argparse: a usage error
                code = exit_.code if isinstance(exit_.code, int) else 2
                return (code, "usage: " + stderr.getvalue())
        return int(code), stderr.getvalue()
    return run


def python(module: str, name: str, call: Callable[[Callable[..., object], Path, Context], object]
           ) -> Callable[[Path, Context], tuple[int, str]] | None:
    function = _function(module, name)
    if function is None:
        return None

    def run(path: Path, ctx: Context) -> tuple[int, str]:
        call(function, path, ctx)  # type: ignore[arg-type]
        return 0, ""
    return run


def _tiled(function: Callable[..., object], path: Path, ctx: Context) -> object:
    return function(path, "otsu", ctx.fresh("tiled") / "out.zarr", tile=64, overlap=0, workers=1,
                    progress=False)


class NotApplicable(Exception):
    """The target cannot take this input (no cell in the table)."""


def _train(path: Path, ctx: Context) -> tuple[int, str]:
    """Train with the input's bytes as the one label PNG (named for the image's stem): the
    message must name that label file."""
    if not path.is_file() or path.is_symlink():
        raise NotApplicable()
    labels = ctx.fresh("labels")
    target = labels / "img.png"
    shutil.copyfile(path, target)
    code, message = cli("train", "--model", "unet", "--option", "base_width=4", "--option", "depth=1",
                        "--images", str(ctx.good_image), "--labels", str(labels), "--num-classes", "2",
                        "--epochs", "1", "--batch-size", "1", "-o", "{OUT}")(path, ctx)
    return code, message.replace(str(target), str(path))


def targets() -> dict[str, dict[str, Callable[[Path, Context], tuple[int, str]] | None]]:
    """kind -> target name -> call (None where this version of segscope lacks the function)."""
    return {
        "image": {
            "imread": python("segscope.io", "imread", lambda f, p, c: f(p)),
            "image_info": python("segscope.io", "image_info", lambda f, p, c: f(p)),
            "read_label_png": python("segscope.io", "read_label_png", lambda f, p, c: f(p)),
            "segment_tiled": python("segscope", "segment_tiled", _tiled),
            "info": cli("info", "{F}"),
            "segment": cli("segment", "{F}", "-m", "otsu", "-o", "{OUT}"),
            "segment --tile": cli("segment", "{F}", "-m", "otsu", "--tile", "64", "--overlap", "0",
                                  "--workers", "1", "-o", "{OUT}/out.zarr"),
            "compare": cli("compare", "{F}", "--methods", "otsu", "-o", "{OUT}"),
            "predict": cli("predict", "--checkpoint", "{CK}", "{F}", "-o", "{OUT}"),
            "train (as a label)": _train,
        },
        "annotation": {
            "reader": python("segscope.io.datasets", "read_annotations", lambda f, p, c: f(p)),
            "evaluate": cli("evaluate", "--pred", "{F}", "--truth", "{F}"),
            "compare --truth": cli("compare", "{IMG}", "--methods", "otsu", "--truth", "{F}", "-o", "{OUT}"),
        },
        "checkpoint": {
            "segscope.segment": python("segscope", "segment",
                                       lambda f, p, c: f(np.zeros((16, 16, 3), np.uint8), p)),
            "segment -m": cli("segment", "{IMG}", "-m", "{F}", "-o", "{OUT}"),
            "predict": cli("predict", "--checkpoint", "{F}", "{IMG}", "-o", "{OUT}"),
            "export": cli("export", "--checkpoint", "{F}", "--format", "onnx", "-o", "{OUT}/m.onnx"),
        },
    }


# Hostile values for the commands' numeric and list options: (label, argv), with {IMG} the good
# image folder, {F} its one image and {OUT} a fresh output folder.
_NUMBERS = ["0", "-1", "nan", "inf", "1e308", "", ","]
_OPTIONS = [
    ("evaluate", "--num-classes", ["--pred", "{IMG}", "--truth", "{IMG}"], _NUMBERS),
    ("evaluate", "--iou-threshold", ["--pred", "{IMG}", "--truth", "{IMG}", "--task", "instance"], _NUMBERS),
    ("evaluate", "--ignore", ["--pred", "{IMG}", "--truth", "{IMG}"], _NUMBERS),
    ("compare", "--limit", ["{IMG}", "--methods", "otsu", "-o", "{OUT}"], _NUMBERS),
    ("compare", "--methods", ["{IMG}", "-o", "{OUT}"], ["", ",", "otsu,,otsu", "nothing", "otsu,otsu"]),
    ("segment", "--tile", ["{F}", "-m", "otsu", "--workers", "1", "-o", "{OUT}/x.zarr"], _NUMBERS),
    ("segment", "--overlap", ["{F}", "-m", "otsu", "--tile", "64", "--workers", "1", "-o", "{OUT}/x.zarr"],
     _NUMBERS),
    ("segment", "--workers", ["{IMG}", "-m", "otsu", "-o", "{OUT}"], _NUMBERS),
    ("segment", "-p", ["{IMG}", "-m", "sauvola", "-o", "{OUT}"],
     ["window_size=0", "window_size=-1", "window_size=nan", "window_size=100001", "k=inf", "nothing=1",
      "window_size"]),
]
ARGUMENTS: list[tuple[str, list[str]]] = [
    (f"{command} {option} {value!r}", [command, *extra, option, value])
    for command, option, extra, values in _OPTIONS for value in values
]


def judge(run: Callable[[Path, Context], tuple[int, str]], path: Path, ctx: Context, *,
          must_name: bool = True) -> str:
    """The verdict on one call (see the module's docstring); ``must_name``: a refusal must name
    the input file (not for a bad option value, which the message names instead)."""
    def alarm(signum: int, frame: object) -> None:
        raise Hang()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT_S)
    try:
        code, message = run(path, ctx)
        verdict = "ok" if code == 0 else "refused" if message.startswith("usage: ") or \
            not must_name or path.name in message else "UNNAMED"
    except NotApplicable:
        verdict = ""
    except Hang:
        verdict = "HANG"
    except (ValueError, TypeError, OSError) as error:
        verdict = "refused" if not must_name or path.name in str(error) else "UNNAMED"
    except Exception as error:
        verdict = f"CRASH {type(error).__name__}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return "MEMORY" if grown > MEMORY_MIB else verdict


CLEAN = ("ok", "refused")


def make_checkpoint(ctx: Context) -> Path | None:
    if _function("torch", "save") is None:
        return None
    from segscope.cli.main import main

    labels = ctx.fresh("ck_labels")
    from PIL import Image

    image = np.asarray(Image.open(next(ctx.good_image.iterdir())))
    Image.fromarray((image > 100).astype(np.uint8)).save(labels / "img.png")
    out = ctx.fresh("ck")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["train", "--model", "unet", "--option", "base_width=4", "--option", "depth=1",
              "--images", str(ctx.good_image), "--labels", str(labels), "--num-classes", "2",
              "--epochs", "1", "--batch-size", "1", "-o", str(out)])
    return out / "best.pt"


def run_campaign(scratch: Path) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """kind -> [(input class, target -> verdict)]."""
    from PIL import Image

    corpus = make_corpus(scratch / "corpus")
    good = scratch / "good"
    good.mkdir()
    yy, xx = np.mgrid[:48, :64]
    Image.fromarray(np.where((yy - 24) ** 2 + (xx - 32) ** 2 < 150, 200, 40).astype(np.uint8)
                    ).save(good / "img.png")
    ctx = Context(scratch / "work", good, None)
    ctx.scratch.mkdir()
    ctx.checkpoint = make_checkpoint(ctx)
    table: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for kind, calls in targets().items():
        rows = table.setdefault(kind, [])
        for name, entry_kind, path in corpus:
            if entry_kind != kind:
                continue
            verdicts = {target: judge(run, path, ctx) for target, run in calls.items()
                        if run is not None and (target != "predict" or ctx.checkpoint)}
            rows.append((name, {target: v for target, v in verdicts.items() if v}))
    rows = table.setdefault("argument", [])
    for label, argv in ARGUMENTS:
        rows.append((label, {argv[0]: judge(cli(*argv), ctx.good_image / "img.png", ctx,
                                            must_name=False)}))
    return table


def markdown(table: dict[str, list[tuple[str, dict[str, str]]]]) -> str:
    lines = []
    tried = clean = 0
    for kind, rows in table.items():
        columns = list(dict.fromkeys(t for _, verdicts in rows for t in verdicts))
        lines += ["", f"**{kind} inputs** ({len(rows)})", "",
                  "| input | " + " | ".join(f"`{c}`" for c in columns) + " |",
                  "| --- |" + " --- |" * len(columns)]
        for name, verdicts in rows:
            lines.append(f"| {name} | " + " | ".join(verdicts.get(c, "") for c in columns) + " |")
            tried += len(verdicts)
            clean += sum(v in CLEAN for v in verdicts.values())
    inputs = sum(len(rows) for rows in table.values())
    head = (f"{inputs} inputs, {tried} (input, target) pairs tried, {clean} handled cleanly "
            f"({100 * clean / max(tried, 1):.1f}%).")
    return "\n".join([head, *lines])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", help="rewrite the tables of this page between the campaign markers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        text = markdown(run_campaign(Path(scratch)))
    print(text)
    if args.docs:
        page = Path(args.docs).read_text()
        before, rest = page.split(START)
        _, after = rest.split(END)
        Path(args.docs).write_text(f"{before}{START}\n{text}\n{END}{after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
