"""The search page end to end in headless Debian Chromium: type, click, read the result cards;
upload a photo, with and without words; see the errors a user would see.

Runs the real server (uvicorn on a free loopback port) over a small real index: clothing photos
and spoken digits from ``shared/data``, embedded with the shipped alignments. Skipped without
``/usr/bin/chromium`` (Debian package ``chromium``) or the shared data. Never downloads a browser.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_shared

CHROMIUM = Path("/usr/bin/chromium")
CLASSES = ("hat", "shoes", "dress")
PER_CLASS = 3
SOUNDS = ("3_jackson_0.wav", "7_theo_0.wav")

pytestmark = [pytest.mark.real_weights, pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clothing = require_shared("clothing") / "test"
    fsdd = require_shared("fsdd")
    root = tmp_path_factory.mktemp("media")
    for cls in CLASSES:
        (root / cls).mkdir()
        for path in sorted((clothing / cls).iterdir())[:PER_CLASS]:
            shutil.copy(path, root / cls / path.name)
    (root / "sounds").mkdir()
    for name in SOUNDS:
        shutil.copy(fsdd / name, root / "sounds" / name)
    return root


@pytest.fixture(scope="module")
def server(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium package")
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    import uvicorn

    from polymodal.search import SearchEngine
    from polymodal.serve import create_app

    engine = SearchEngine.open(tmp_path_factory.mktemp("db"), create=True, root=collection)
    engine.index(progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto(server + "/")
        yield page
        browser.close()


def search(page, *, text: str = "", file: Path | None = None) -> list[tuple[str, float]]:
    """Fill the form like a user, click Search, and read (path, score) from each result card."""
    page.evaluate("document.getElementById('status').textContent = ''")
    page.fill("#q", text)
    if file is not None:
        page.set_input_files("#file", str(file))
    elif page.is_visible("#clear-file"):
        page.click("#clear-file")
    page.click("#go")
    page.wait_for_function(
        "/results|Error|No results|Type something/.test("
        "document.getElementById('status').textContent)",
        timeout=60_000,
    )
    cards = page.locator(".card")
    out = []
    for i in range(cards.count()):
        card = cards.nth(i)
        out.append((card.locator(".path").inner_text(), float(card.locator(".score").inner_text())))
    return out


def test_a_typed_query_shows_scored_cards_with_thumbnails(page) -> None:
    assert page.title() == "polymodal search"
    hits = search(page, text="a hat")
    assert len(hits) == len(CLASSES) * PER_CLASS + len(SOUNDS)
    top = [path.split("/")[0] for path, _ in hits[:3]]
    assert top.count("hat") >= 2, hits
    assert all(-1.0 <= score <= 1.0 for _, score in hits)
    assert page.locator("#status").inner_text() == f"{len(hits)} results"
    # The first card's thumbnail really loaded (a decoded image, not a broken icon).
    first = page.locator(".card img").first
    first.scroll_into_view_if_needed()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=first.element_handle()
    )
    width = first.evaluate("img => img.naturalWidth")
    assert 0 < width <= 256


def test_sound_results_have_a_working_player(page, server: str) -> None:
    search(page, text="seven")
    players = page.locator(".card[data-modality=audio] audio")
    assert players.count() == len(SOUNDS)
    src = players.first.get_attribute("src")
    assert src is not None and src.startswith("/items/")
    response = page.request.get(server + src)
    assert response.status == 200 and response.headers["content-type"] == "audio/wav"
    # The browser can decode it: load the metadata and read the duration.
    duration = players.first.evaluate(
        """a => new Promise((ok, fail) => {
            a.preload = 'metadata';
            a.onloadedmetadata = () => ok(a.duration);
            a.onerror = () => fail(a.error && a.error.code);
            a.load();
        })"""
    )
    assert 0.1 < duration < 3.0


def test_an_uploaded_photo_finds_itself_then_its_class(page, collection: Path) -> None:
    photo = sorted((collection / "shoes").iterdir())[0]
    hits = search(page, file=photo)
    assert hits[0] == (f"shoes/{photo.name}", pytest.approx(1.0, abs=1e-3))
    assert [p.split("/")[0] for p, _ in hits[1:3]].count("shoes") >= 1
    assert all(not p.startswith("sounds/") for p, _ in hits)  # a photo searches photos
    assert page.locator("#drop img.preview").count() == 1


def test_a_photo_with_words_moves_towards_the_words(page, collection: Path) -> None:
    photo = sorted((collection / "hat").iterdir())[0]
    hits = search(page, text="a dress", file=photo)
    assert [p.split("/")[0] for p, _ in hits[:3]].count("dress") >= 1, hits


def test_errors_are_shown_to_the_user(page, tmp_path: Path) -> None:
    assert search(page, text="   ") == []
    assert "Type something" in page.locator("#status").inner_text()
    notes = tmp_path / "notes.png"
    notes.write_text("this is not a photo")
    assert search(page, file=notes) == []
    status = page.locator("#status").inner_text()
    assert status.startswith("Error 400") and "not an image or audio file" in status
