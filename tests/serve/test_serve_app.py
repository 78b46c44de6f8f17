"""The web app's routes, limits and job runner, through Starlette's test client (no browser)."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

import segscope
from segscope.io import read_label_png, write_label_png
from segscope.io.formats import get_format
from segscope.serve import Settings, create_app
from segscope.serve.catalogue import catalogue
from segscope.serve.jobs import Busy, Request, Runner

BASE = "http://127.0.0.1"


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb's first line)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    image = np.zeros((60, 80), np.uint8)
    image[10:40, 10:35] = 200
    image[20:50, 50:70] = 120
    segscope.imwrite(root / "shapes.png", image)
    (root / "nested").mkdir()
    segscope.imwrite(root / "nested" / "small.png", image[:30, :30])
    (root / "truth").mkdir()
    write_label_png(root / "truth" / "shapes.png", (image > 60).astype(np.uint8))
    (root / ".hidden.png").write_bytes((root / "shapes.png").read_bytes())
    (root / "notes.txt").write_text("not an image")
    outside = root.parent / "outside.png"
    segscope.imwrite(outside, image)
    (root / "link.png").symlink_to(outside)
    return root


@pytest.fixture(scope="module")
def client(folder: Path):
    app = create_app(Settings(folder=folder, workers=1, timeout=60, max_request_bytes=2**20))
    with TestClient(app, base_url=BASE) as c:
        yield c


def finish(client: TestClient, job: str) -> dict:
    for _ in range(600):
        state = client.get(f"/api/jobs/{job}").json()
        if state["state"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not finish")


def test_lists_only_images_inside_the_folder(client):
    names = [i["name"] for i in client.get("/api/images").json()["images"]]
    # The truth folder, hidden files, non-images and a link out of the folder are left out.
    assert names == ["nested/small.png", "shapes.png"]
    truth = {i["name"]: i["truth"] for i in client.get("/api/images").json()["images"]}
    assert truth == {"nested/small.png": False, "shapes.png": True}


@pytest.mark.parametrize("name", ["../outside.png", "/etc/passwd", "link.png", ".hidden.png", "notes.txt",
                                  "nested/../../outside.png", "truth/shapes.png", "nested\\small.png"])
def test_no_path_outside_the_folder_can_be_read(client, name):
    response = client.get("/api/image", params={"name": name})
    assert response.status_code == 404
    assert "no image" in response.json()["error"]


def test_the_image_is_served_for_display(client, folder):
    response = client.get("/api/image", params={"name": "shapes.png"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    from PIL import Image

    shown = np.asarray(Image.open(io.BytesIO(response.content)))
    assert shown.shape == (60, 80, 3)
    assert (shown[..., 0] == segscope.imread(folder / "shapes.png")).all()


def test_large_pictures_are_subsampled_for_display_with_their_own_size_said(client, monkeypatch):
    import segscope.serve.app as app

    monkeypatch.setattr(app, "DISPLAY_SIDE", 40)
    response = client.get("/api/image", params={"name": "shapes.png"})
    from PIL import Image

    assert Image.open(io.BytesIO(response.content)).size == (40, 30)
    assert response.headers["x-image-size"] == "60,80"  # prompts are sent in these pixels
    job = client.post("/api/run", json={"image": "shapes.png", "method": "otsu"}).json()["job"]
    state = finish(client, job)
    assert state["size"] == [60, 80]
    assert Image.open(io.BytesIO(client.get(state["overlay"]).content)).size == (40, 30)


def test_catalogue_is_made_from_the_registries(client):
    body = client.get("/api/catalogue").json()
    offers = {o["name"]: o for o in body["offers"]}
    assert {m.name for m in segscope.methods()} <= set(offers)
    assert {"street", "membranes"} <= {n for n, o in offers.items() if o["group"] == "zoo"}
    assert "hippocampus" not in offers  # a model of volumes; the page shows images
    otsu = {f["name"]: f for f in offers["otsu"]["fields"]}
    assert otsu["nbins"] == {"name": "nbins", "kind": "integer", "default": "256",
                             "doc": otsu["nbins"]["doc"], "annotation": "int", "choices": []}
    assert "spacing" not in otsu and "channel_axis" not in otsu
    oriented = {f["name"]: f for f in offers["ucm"]["fields"]}["oriented"]  # bool | None: a three-way choice
    assert oriented["kind"] == "choice" and oriented["choices"] == ["none", "true", "false"]
    assert oriented["default"] == "none"
    assert offers["geodesic"]["group"] == "prompted" and "points" in offers["geodesic"]["kinds"]
    assert {"png", "coco", "npz"} <= {f["name"] for f in body["formats"]}


def test_every_field_default_converts_back_to_the_default():
    from segscope.resolve import resolve

    for offer in catalogue():
        if offer.group != "method":
            continue
        method = resolve(offer.name)
        typed = method.options_from_text({f.name: f.default for f in offer.fields})
        for field in offer.fields:
            assert typed[field.name] == method.info.parameter(field.name).default, (offer.name, field.name)


def test_run_scores_and_downloads_what_segment_gives(client, folder, tmp_path):
    job = client.post("/api/run", json={"image": "shapes.png", "method": "otsu", "options": {}}).json()["job"]
    state = finish(client, job)
    assert state["state"] == "done", state
    assert state["kind"] == "semantic"
    assert [e["name"] for e in state["legend"]] == ["background", "foreground"]
    assert state["scores"]["miou"] == pytest.approx(1.0)
    png = client.get(state["downloads"]["png"])
    assert png.headers["content-disposition"] == 'attachment; filename="shapes_otsu.png"'
    (tmp_path / "got.png").write_bytes(png.content)
    expected = segscope.segment(segscope.imread(folder / "shapes.png"), "otsu")
    get_format("png").write_file(expected, tmp_path, "want")  # what `segscope segment -m otsu` writes
    assert (tmp_path / "got.png").read_bytes() == (tmp_path / "want.png").read_bytes()
    assert (read_label_png(tmp_path / "got.png") == expected.class_map(void=255)).all()
    coco = json.loads(client.get(state["downloads"]["coco"]).content)
    assert coco["images"][0]["height"] == 60
    npz = client.get(state["downloads"]["npz"])
    (tmp_path / "got.npz").write_bytes(npz.content)
    assert (segscope.io.load_segmentation(tmp_path / "got.npz").labels == expected.labels).all()
    overlay = client.get(state["overlay"])
    from PIL import Image

    rgba = np.asarray(Image.open(io.BytesIO(overlay.content)))
    assert rgba.shape == (60, 80, 4) and ((rgba[..., 3] == 255) == (expected.labels > 0)).all()
    assert client.get(state["errors"]).status_code == 200


def test_a_zoo_model_is_drawn_in_its_card_colours(client, folder):
    from PIL import Image

    card = segscope.zoo.zoo_card("membranes")
    body = {"image": "shapes.png", "method": "membranes", "options": {}}
    job = client.post("/api/run", json=body).json()["job"]
    state = finish(client, job)
    assert state["state"] == "done", state
    expected = segscope.segment(segscope.imread(folder / "shapes.png"), "membranes")
    classes = expected.class_map()
    hexes = ["#" + "".join(f"{v:02x}" for v in colour) for colour in card.colours]
    assert state["legend"] == [{"name": card.class_names[c], "colour": hexes[c]} for c in np.unique(classes)]
    rgba = np.asarray(Image.open(io.BytesIO(client.get(state["overlay"]).content)))
    from skimage.segmentation import find_boundaries

    inside = (expected.labels > 0) & ~find_boundaries(expected.labels, mode="inner")
    assert inside.any()
    assert (rgba[..., :3][inside] == np.array(card.colours, np.uint8)[classes[inside]]).all()


def test_large_images_go_tiled_with_progress_and_the_same_answer(folder):
    app = create_app(Settings(folder=folder, workers=1, tile_pixels=1000, tile=32))
    with TestClient(app, base_url=BASE) as tiled:
        job = tiled.post("/api/run", json={"image": "shapes.png", "method": "otsu"}).json()["job"]
        state = finish(tiled, job)
        assert state["state"] == "done", state
        assert state["total"] == 6 and state["done"] == 6  # 60x80 in tiles of 32: 2 x 3
        runner = app.state.runner
        got = runner.get(job).outcome.result
    expected = segscope.segment(segscope.imread(folder / "shapes.png"), "otsu")
    assert (got.class_map(void=255) == expected.class_map(void=255)).all()


def test_options_from_the_form_reach_the_method(client):
    job = client.post("/api/run", json={"image": "shapes.png", "method": "threshold",
                                        "options": {"value": "150"}}).json()["job"]
    state = finish(client, job)
    assert state["state"] == "done"
    bad = client.post("/api/run", json={"image": "shapes.png", "method": "threshold",
                                        "options": {"value": "high"}}).json()["job"]
    state = finish(client, bad)
    assert state["state"] == "failed" and "value" in state["error"] and "'high'" in state["error"]


def labels_of(client: TestClient, state: dict, tmp_path: Path) -> np.ndarray:
    path = tmp_path / f"{state['id']}.npz"
    path.write_bytes(client.get(state["downloads"]["npz"]).content)
    return segscope.io.load_segmentation(path).labels


def test_prompts_make_one_object_per_id_and_refine_a_previous_result(client, tmp_path):
    body = {"image": "shapes.png", "method": "geodesic", "options": {"smoothing": "0"},
            "points": [[25, 20, 1], [35, 60, 2]]}
    state = finish(client, client.post("/api/prompt", json=body).json()["job"])
    assert state["state"] == "done" and state["segments"] == 2
    before = labels_of(client, state, tmp_path)
    assert (before[10:40, 10:35] == 1).all() and (before[20:50, 50:70] == 2).all()
    # The previous result as the starting mask, and an eraser stroke across object 2's lower half.
    body = {"image": "shapes.png", "method": "geodesic", "options": {"smoothing": "0"}, "mask": state["id"],
            "strokes": [{"label": -1, "radius": 4, "points": [[44, 48], [44, 72]]}]}
    state = finish(client, client.post("/api/prompt", json=body).json()["job"])
    after = labels_of(client, state, tmp_path)
    assert (after[40:49, 50:70] == 0).all()  # erased
    assert (after[20:28, 52:68] == 2).all() and (after == 1).sum() == (before == 1).sum()  # the rest kept


@pytest.mark.parametrize(("body", "message"), [
    ({"points": [[500, 5, 1]]}, "point row"),
    ({"points": [[5, 5]]}, "[row, col, label]"),
    ({"boxes": [[0, 0, 10, 10]]}, "boxes"),
    ({"strokes": [{"label": 1, "radius": 999, "points": [[1, 1]]}]}, "stroke radius"),
    ({}, "no prompts"),
])
def test_bad_prompts_are_refused_with_a_reason(client, body, message):
    response = client.post("/api/prompt", json={"image": "shapes.png", "method": "geodesic", **body})
    assert response.status_code == 400 and message in response.json()["error"]


def test_the_zoos_click_model_is_a_prompted_method_in_the_page(client, tmp_path):
    offers = {o["name"]: o for o in client.get("/api/catalogue").json()["offers"]}
    clicks = offers["clicks"]
    assert clicks["group"] == "prompted" and clicks["kinds"] == ["points", "scribbles", "mask"]
    assert clicks["card"]["figures"]  # its held-out clicks shown from the card
    response = client.post("/api/run", json={"image": "shapes.png", "method": "clicks"})
    assert response.status_code == 400 and "point at objects" in response.json()["error"]
    body = {"image": "shapes.png", "method": "clicks", "points": [[25, 20, 1]]}
    state = finish(client, client.post("/api/prompt", json=body).json()["job"])
    assert state["state"] == "done"
    labels = labels_of(client, state, tmp_path)
    assert labels[25, 20] == 1 and (labels[20:50, 50:70] == 0).all()  # the clicked shape, not its neighbour


def test_prompted_and_plain_methods_are_not_mixed_up(client):
    response = client.post("/api/run", json={"image": "shapes.png", "method": "geodesic"})
    assert response.status_code == 400 and "point at objects" in response.json()["error"]
    response = client.post("/api/prompt", json={"image": "shapes.png", "method": "otsu",
                                                "points": [[1, 1, 1]]})
    assert response.status_code == 400 and "does not take prompts" in response.json()["error"]


def test_hostile_uploads_are_refused_by_name(client):
    response = client.post("/api/upload", files={"file": ("bomb.png", bomb_png(), "image/png")})
    assert response.status_code == 400
    assert "bomb.png" in response.json()["error"] and "/tmp" not in response.json()["error"]
    response = client.post("/api/upload",
                           files={"file": ("../../evil.exe", b"MZ", "application/octet-stream")})
    assert response.status_code == 400 and "evil.exe: uploads must be images" in response.json()["error"]
    response = client.post("/api/upload", files={"file": ("x.png", b"\0" * (2**20 + 10), "image/png")})
    assert response.status_code == 413 and "larger than this server's limit" in response.json()["error"]


def test_an_upload_is_kept_in_memory_and_runs(client, folder):
    data = (folder / "shapes.png").read_bytes()
    made = client.post("/api/upload", files={"file": ("my scan (1).png", data, "image/png")}).json()
    assert made["name"].startswith("upload/") and made["name"].endswith("/my_scan_1_.png")
    assert (made["width"], made["height"]) == (80, 60)
    assert sorted(p.name for p in folder.iterdir()) == [".hidden.png", "link.png", "nested", "notes.txt",
                                                        "shapes.png", "truth"]
    job = client.post("/api/run", json={"image": made["name"], "method": "li"}).json()["job"]
    state = finish(client, job)
    assert state["state"] == "done" and state["scores"] == {}  # an upload has no truth


def test_other_hosts_and_bad_json_are_refused(client):
    assert client.get("/api/images", headers={"host": "evil.example"}).status_code == 400
    response = client.post("/api/run", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    assert client.get("/api/jobs/nope").status_code == 404


def test_the_page_sets_a_same_origin_policy(client):
    page = client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "http" not in page.text.replace("http-equiv", "")  # nothing fetched from elsewhere
    for name in ("app.js", "app.css"):
        text = client.get(f"/static/{name}").text
        assert "http://" not in text and "https://" not in text


def test_a_job_past_its_time_limit_is_stopped_and_its_worker_replaced():
    async def scenario() -> None:
        runner = Runner(workers=1, timeout=0.3, queue=0)
        runner.start()
        try:
            big = np.random.default_rng(0).integers(0, 255, (1500, 1500), dtype=np.uint8)
            slow = runner.submit(Request(big, "felzenszwalb", {"scale": "50"}), image="big")
            with pytest.raises(Busy, match="busy"):
                runner.submit(Request(big, "otsu"), image="big")
            await runner.wait(slow)
            assert slow.state == "failed" and "stopped after 0.3 s" in slow.error
            quick = runner.submit(Request(np.zeros((8, 8), np.uint8), "otsu"), image="small")
            await runner.wait(quick)
            assert quick.state == "done", quick.error  # a fresh worker took over
        finally:
            runner.close()

    asyncio.run(scenario())
