"""``segscope serve`` in a real browser: Debian's Chromium driven by Playwright.

Chromium cannot be downloaded here; `.ci/run` installs Debian's package with apt-get, and these
tests skip (saying so) where it is missing. Screenshots go to a temporary folder, or to
``$SEGSCOPE_SCREENSHOTS`` when set (the README's pictures were made that way).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

import segscope  # noqa: E402
from segscope.io import load_segmentation, write_label_png  # noqa: E402
from segscope.io.formats import get_format  # noqa: E402
from segscope.serve import Settings, create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (.ci/run installs it with apt-get)",
                allow_module_level=True)

# As the machine's notes say: without the background-networking flags Chromium tries to reach
# Google's hosts at start, which this machine's closed network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
A, B = (slice(30, 50), slice(30, 50)), (slice(30, 50), slice(50, 62))  # the two parts of touching.png


def touching() -> np.ndarray:
    """A bright square touching a slightly darker strip: a positive click in the square takes the
    strip too (little contrast between them), a negative click in the strip must take it away."""
    image = np.full((80, 120), 30, np.uint8)
    image[A] = 200
    image[B] = 170
    return image


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data, transform

    root = tmp_path_factory.mktemp("browser_served")
    coins = data.coins()
    segscope.imwrite(root / "coins.png", coins)
    segscope.imwrite(root / "touching.png", touching())
    street = (transform.resize(data.astronaut(), (180, 240)) * 255).astype(np.uint8)
    segscope.imwrite(root / "street.png", street)
    (root / "truth").mkdir()
    write_label_png(root / "truth" / "coins.png", (coins > 110).astype(np.uint8))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[str]:
    import uvicorn

    port = free_port()
    app = create_app(Settings(folder=folder, workers=2, timeout=120, max_request_bytes=2**20))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("SEGSCOPE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


class Watch:
    """Every request a page makes that would leave this machine (aborted), and its page errors."""

    def __init__(self, page: Any, allowed: str) -> None:
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.allowed = urlparse(allowed).netloc if allowed else None
        page.route("**/*", self.handle)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def handle(self, route: Any) -> None:
        url = urlparse(route.request.url)
        if url.scheme in ("file", "data", "blob") or (self.allowed and url.netloc == self.allowed):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[tuple[Any, Watch]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    opened = context.new_page()
    watch = Watch(opened, server)
    opened.goto(server + "/")
    opened.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield opened, watch
    assert watch.outside == [] and watch.errors == []
    context.close()


def broken_images(page: Any) -> list[str]:
    """The images on the page (those given a source) that did not load."""
    return page.evaluate("() => [...document.images].filter(i => i.getAttribute('src'))"
                         ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80))")


def wait_result(page: Any, previous: str | None = None) -> str:
    """Wait for a new result (or an error); the result's job id."""
    page.wait_for_function(
        "(previous) => (document.querySelector('#result:not([hidden])') && "
        "document.querySelector('#result').dataset.job !== previous) || "
        "!document.querySelector('#error').hidden", arg=previous or "", timeout=120_000)
    assert page.locator("#error").is_hidden(), page.inner_text("#error")
    page.wait_for_function("() => { const o = document.querySelector('#overlay'); "
                           "return o.complete && o.naturalWidth > 0; }")
    return str(page.get_attribute("#result", "data-job"))


def click_image(page: Any, row: int, col: int, shape: tuple[int, int]) -> None:
    box = page.locator("#marks").bounding_box()
    page.mouse.click(box["x"] + (col + 0.5) / shape[1] * box["width"],
                     box["y"] + (row + 0.5) / shape[0] * box["height"])


def labels_of(page: Any, server: str, job: str, tmp_path: Path) -> np.ndarray:
    response = page.request.get(f"{server}/api/jobs/{job}/download/npz")
    path = tmp_path / f"{job}.npz"
    path.write_bytes(response.body())
    return load_segmentation(path).labels


def test_run_otsu_and_download_what_segment_writes(page, folder, shots, tmp_path):
    browser_page, _ = page
    browser_page.select_option("#image-select", "coins.png")
    browser_page.select_option("#method-select", "otsu")
    browser_page.click("#run")
    wait_result(browser_page)
    assert "foreground" in browser_page.inner_text("#legend")
    assert "miou" in browser_page.inner_text("#scores")  # coins.png has a truth
    browser_page.select_option("#format-select", "png")
    with browser_page.expect_download() as download:
        browser_page.click("#download")
    got = tmp_path / "got.png"
    download.value.save_as(got)
    assert download.value.suggested_filename == "coins_otsu.png"
    expected = segscope.segment(segscope.imread(folder / "coins.png"), "otsu")
    get_format("png").write_file(expected, tmp_path, "want")
    assert got.read_bytes() == (tmp_path / "want.png").read_bytes()
    browser_page.fill("#opacity", "90")
    assert browser_page.eval_on_selector("#overlay", "o => o.style.opacity") == "0.9"
    browser_page.screenshot(path=str(shots / "run_otsu.png"))


def test_run_a_zoo_model(page, shots):
    browser_page, _ = page
    browser_page.select_option("#image-select", "street.png")
    browser_page.select_option("#method-select", "street")
    assert "Sky" in browser_page.inner_text("#method-summary")  # the card's classes
    browser_page.click("#run")
    wait_result(browser_page)
    legend = browser_page.inner_text("#legend").split("\n")
    card = segscope.zoo.zoo_card("street")
    assert legend and set(legend) <= set(card.class_names)
    browser_page.screenshot(path=str(shots / "run_zoo_street.png"))


def test_compare_methods_side_by_side(page, shots):
    browser_page, _ = page
    browser_page.select_option("#image-select", "coins.png")
    browser_page.click("#tab-compare")
    for name in ("otsu", "li", "adaptive_mean"):
        browser_page.check(f"#compare-{name}")
    browser_page.click("#compare")
    browser_page.wait_for_function(
        "() => document.querySelectorAll('#comparison .panel .errmap').length === 3 && "
        "[...document.images].every(i => i.complete)", timeout=120_000)
    assert browser_page.locator("#comparison .panel.failed").count() == 0
    assert broken_images(browser_page) == []
    assert browser_page.locator("#comparison table").count() == 3  # scores against the truth
    browser_page.screenshot(path=str(shots / "compare.png"), full_page=True)


def test_positive_then_negative_click_changes_the_mask_where_expected(page, server, shots, tmp_path):
    browser_page, _ = page
    shape = touching().shape
    browser_page.select_option("#image-select", "touching.png")
    browser_page.click("#tab-prompt")
    browser_page.check("input[name=tool][value=positive]")
    click_image(browser_page, 40, 40, shape)
    first = wait_result(browser_page)
    before = labels_of(browser_page, server, first, tmp_path)
    assert (before[A] == 1).mean() > 0.95 and (before[B] == 1).mean() > 0.8  # the strip leaks in
    browser_page.screenshot(path=str(shots / "prompt_before_negative.png"))
    browser_page.keyboard.press("n")  # the negative tool, by its shortcut
    assert browser_page.is_checked("input[name=tool][value=negative]")
    click_image(browser_page, 40, 56, shape)
    second = wait_result(browser_page, first)
    after = labels_of(browser_page, server, second, tmp_path)
    assert (after[A] == 1).mean() > 0.9 and (after[B] == 0).mean() > 0.95
    browser_page.screenshot(path=str(shots / "prompt_after_negative.png"))
    browser_page.click("#undo")  # back to the positive click alone
    third = wait_result(browser_page, second)
    assert (labels_of(browser_page, server, third, tmp_path) == before).all()


def test_keyboard_reaches_the_controls_and_clicks(page):
    browser_page, _ = page
    reached = []
    for _ in range(12):
        browser_page.keyboard.press("Tab")
        reached.append(browser_page.evaluate("() => document.activeElement.id"))
    assert {"image-select", "upload", "tab-run", "method-select"} <= set(reached), reached
    browser_page.select_option("#image-select", "touching.png")
    browser_page.click("#tab-prompt")
    browser_page.focus("#marks")
    for key in ("ArrowLeft",) * 3:  # from the centre (40, 60) to (40, 36), inside the square
        browser_page.keyboard.press(key)
    browser_page.keyboard.press("Enter")
    wait_result(browser_page)
    assert "1 objects" in browser_page.inner_text("#legend")


def test_a_hostile_upload_shows_its_error(page, shots):
    from test_serve_app import bomb_png

    browser_page, _ = page
    browser_page.set_input_files("#upload", files=[{"name": "bomb.png", "mimeType": "image/png",
                                                    "buffer": bomb_png()}])
    browser_page.wait_for_selector("#error:not([hidden])")
    message = browser_page.inner_text("#error")
    assert message.startswith("Upload refused: bomb.png") and "/tmp" not in message
    browser_page.screenshot(path=str(shots / "error_upload.png"))


def test_usable_on_a_phone(browser, server, shots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    watch = Watch(phone, server)
    phone.goto(server + "/")
    phone.wait_for_selector("body[data-ready=true]")
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    phone.tap("#run")
    wait_result(phone)
    box = phone.locator("#image").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    phone.screenshot(path=str(shots / "phone.png"), full_page=True)
    assert watch.outside == [] and watch.errors == []
    context.close()


@pytest.fixture(scope="module")
def compare_report(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from segscope.cli.main import main

    out = tmp_path_factory.mktemp("report")
    code = main(["compare", str(folder / "coins.png"), "--methods", "otsu,li,felzenszwalb",
                 "--truth", str(folder / "truth"), "-o", str(out)])
    assert code == 0
    return out / "index.html"


@pytest.mark.parametrize("which", ["compare_report", "demo_gallery"])
def test_reports_render_offline(browser, which, request, shots):
    index = request.getfixturevalue(which)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    watch = Watch(opened, "")
    opened.goto(index.as_uri(), wait_until="load")
    count = opened.evaluate("() => document.images.length")
    assert count >= 3
    assert broken_images(opened) == []
    assert watch.outside == [] and watch.errors == []
    opened.screenshot(path=str(shots / f"{which}.png"))
    context.close()
