"""The REST API over a small store: search by text and upload, indexing with a token, items,
files and thumbnails, and every refusal (empty, wrong type, too large, unknown, traversal)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from polymodal.search import SearchEngine
from polymodal.search.files import item_id
from polymodal.serve import create_app
from tests.search.conftest import write_png, write_wav


def png_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def client(shared_engine: SearchEngine) -> TestClient:
    return TestClient(create_app(shared_engine, max_upload_bytes=200_000))


def test_health_and_openapi(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["indexing"] is False
    assert health["spaces"] == {"audio-text": 3, "image-text": 7}
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/search", "/index", "/items/{item_id}", "/items/{item_id}/thumbnail", "/health"):
        assert path in paths
    assert {"get", "post"} <= set(paths["/search"])


def test_the_api_docs_need_no_network(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # nothing from a CDN
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/docs-static/{name}").status_code == 200


def test_the_page_and_its_files_are_served_offline(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<title>polymodal search</title>" in page.text
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


def test_text_search_gives_scored_hits_with_urls(client: TestClient) -> None:
    body = client.get("/search", params={"q": "a red summer dress", "k": 5}).json()
    hits = body["results"]
    assert len(hits) == 5
    assert all(-1.0 <= h["score"] <= 1.0 for h in hits)
    first = hits[0]
    assert first["file_url"] == f"/items/{first['id']}/file"
    images = [h for h in hits if h["modality"] == "image"]
    assert all(h["thumbnail_url"] == f"/items/{h['id']}/thumbnail" for h in images)
    only = client.get("/search", params={"q": "dress", "modality": "audio"}).json()["results"]
    assert only and {h["modality"] for h in only} == {"audio"}


@pytest.mark.parametrize("q", ["", "   "])
def test_an_empty_query_is_400(client: TestClient, q: str) -> None:
    r = client.get("/search", params={"q": q})
    assert r.status_code == 400 and "empty query" in r.json()["detail"]
    r = client.post("/search", data={"text": q})
    assert r.status_code == 400 and "empty query" in r.json()["detail"]


def by_path(hits: list[dict]) -> dict[str, float]:
    return {h["path"]: h["score"] for h in hits}


def test_photo_and_photo_plus_text_queries(client: TestClient, shared_engine: SearchEngine) -> None:
    photo = (shared_engine.root / "red" / "r1.png").read_bytes()
    r = client.post("/search", files={"file": ("q.png", photo, "image/png")}, data={"k": "50"})
    hits = r.json()["results"]
    # Tiny random encoders map several photos close together: check the photo itself scores 1.
    assert by_path(hits)["red/r1.png"] == pytest.approx(1.0, abs=1e-4)
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert {h["space"] for h in hits} == {"image-text"}
    both = client.post(
        "/search",
        files={"file": ("q.png", photo, "image/png")},
        data={"text": "but in blue", "weight": "0.5", "k": "3"},
    )
    assert both.status_code == 200 and len(both.json()["results"]) == 3
    assert both.json()["query"] == {"text": "but in blue", "file": "q.png"}


def test_a_sound_query_searches_sounds(client: TestClient, shared_engine: SearchEngine) -> None:
    sound = (shared_engine.root / "sounds" / "low.wav").read_bytes()
    hits = client.post("/search", files={"file": ("x.bin", sound)}).json()["results"]
    assert by_path(hits)["sounds/low.wav"] == pytest.approx(1.0, abs=1e-4)
    assert {h["space"] for h in hits} == {"audio-text"}


def test_an_upload_that_is_neither_image_nor_audio_is_400(client: TestClient) -> None:
    r = client.post("/search", files={"file": ("notes.png", b"just some text", "image/png")})
    assert r.status_code == 400
    assert r.json()["detail"] == "notes.png: not an image or audio file this search can read"
    # A truncated PNG: the header says image but the engine cannot decode it.
    r = client.post("/search", files={"file": ("cut.png", png_bytes(1)[:60], "image/png")})
    assert r.status_code == 400 and "cut.png" in r.json()["detail"]


def test_an_oversized_upload_is_413_by_header_and_while_streaming(client: TestClient) -> None:
    big = b"\x89PNG" + bytes(300_000)
    r = client.post("/search", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "limit is 200,000 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: only counting the stream can stop it
        for _ in range(30):
            yield bytes(10_000)

    r = client.post(
        "/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert r.status_code == 413


def test_items_files_and_thumbnails(client: TestClient, collection: Path) -> None:
    photo_id = item_id("red/r0.png")
    item = client.get(f"/items/{photo_id}").json()
    assert item["path"] == "red/r0.png" and item["modality"] == "image"
    file = client.get(f"/items/{photo_id}/file")
    assert file.content == (collection / "red" / "r0.png").read_bytes()
    thumb = client.get(f"/items/{photo_id}/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as im:
        assert im.format == "JPEG" and max(im.size) <= 256
    assert client.get(f"/items/{photo_id}/thumbnail").content == thumb.content  # cached
    sound_id = item_id("sounds/high.wav")
    sound = client.get(f"/items/{sound_id}/file")
    assert sound.headers["content-type"] == "audio/wav"
    assert sound.content == (collection / "sounds" / "high.wav").read_bytes()
    assert client.get(f"/items/{sound_id}/thumbnail").status_code == 404


@pytest.mark.parametrize(
    "bad", ["0123456789abcdef", "nothex", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"]
)
def test_unknown_ids_and_path_tricks_are_404(client: TestClient, bad: str) -> None:
    for suffix in ("", "/file", "/thumbnail"):
        assert client.get(f"/items/{bad}{suffix}").status_code == 404


def test_a_file_swapped_for_a_link_outside_the_root_is_not_served(
    engine: SearchEngine, collection: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.png"
    write_png(secret, seed=5)
    target = collection / "red" / "r0.png"
    target.unlink()
    target.symlink_to(secret)
    client = TestClient(create_app(engine))
    assert client.get(f"/items/{item_id('red/r0.png')}/file").status_code == 404
    assert client.get(f"/items/{item_id('red/r0.png')}/thumbnail").status_code == 404


def test_indexing_needs_the_token(engine: SearchEngine) -> None:
    off = TestClient(create_app(engine))
    r = off.post("/index", files={"files": ("a.png", png_bytes(0), "image/png")})
    assert r.status_code == 403 and "--token" in r.json()["detail"]
    on = TestClient(create_app(engine, token="s3cret"))
    r = on.post("/index", files={"files": ("a.png", png_bytes(0), "image/png")})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = on.post(
        "/index",
        files={"files": ("a.png", png_bytes(0), "image/png")},
        headers={"Authorization": "Bearer nope"},
    )
    assert r.status_code == 403


def test_uploaded_files_are_stored_under_uploads_and_become_searchable(
    engine: SearchEngine, collection: Path
) -> None:
    client = TestClient(create_app(engine, token="s3cret"))
    auth = {"Authorization": "Bearer s3cret"}
    photo = png_bytes(42)
    r = client.post(
        "/index",
        files=[
            ("files", ("../../evil name.php", photo, "image/png")),
            ("files", ("tone", (collection / "sounds" / "low.wav").read_bytes(), "audio/wav")),
        ],
        headers=auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["added_files"] == ["uploads/evil-name.png", "uploads/tone.wav"]
    assert body["added"] == 2 and body["skipped"] == []
    assert (collection / "uploads" / "evil-name.png").read_bytes() == photo
    r = client.post("/search", files={"file": ("q.png", photo)}, data={"k": "50"})
    assert by_path(r.json()["results"])["uploads/evil-name.png"] == pytest.approx(1.0, abs=1e-4)
    # The same name again is stored beside it, not over it.
    again = client.post("/index", files={"files": ("evil name.png", photo)}, headers=auth)
    assert again.json()["added_files"] == ["uploads/evil-name-1.png"]
    bad = client.post("/index", files={"files": ("x.png", b"not an image")}, headers=auth)
    assert bad.status_code == 400 and "not an image or audio" in bad.json()["detail"]
    # one bad upload among good ones: nothing is saved, so nothing is left unindexed
    before = sorted(p.name for p in (collection / "uploads").iterdir())
    mixed = client.post(
        "/index",
        files=[("files", ("good.png", png_bytes(7))), ("files", ("fake.png", b"nope"))],
        headers=auth,
    )
    assert mixed.status_code == 400 and "fake.png" in mixed.json()["detail"]
    assert sorted(p.name for p in (collection / "uploads").iterdir()) == before


def test_index_paths_adds_files_inside_the_root_only(
    engine: SearchEngine, collection: Path
) -> None:
    client = TestClient(create_app(engine, token="t"))
    auth = {"Authorization": "Bearer t"}
    write_png(collection / "green" / "g.png", seed=3)
    write_wav(collection / "sounds" / "mid.wav", 440.0)
    r = client.post("/index/paths", json={"paths": ["green/g.png"]}, headers=auth)
    assert r.status_code == 200 and r.json()["added"] == 1
    r = client.post("/index", data={"paths": ["sounds/mid.wav"]}, headers=auth)  # as a form
    assert r.status_code == 200 and (r.json()["added"], r.json()["added_files"]) == (1, [])
    assert client.get(f"/items/{item_id('sounds/mid.wav')}").status_code == 200
    nothing = client.post("/index", data={}, headers=auth)
    assert nothing.status_code == 400 and "nothing to index" in nothing.json()["detail"]
    outside = client.post("/index/paths", json={"paths": ["../../etc/passwd"]}, headers=auth)
    assert outside.status_code == 400 and "not inside" in outside.json()["detail"]
