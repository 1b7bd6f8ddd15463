"""The search server: a FastAPI app over a :class:`~polymodal.search.SearchEngine`, and its page.

Files are only ever served by item id: the id is looked up in the store and the engine resolves
the path inside the collection root, so no URL can name a path. Indexing (``POST /index``) needs
the bearer token given at start; without one it is switched off.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from polymodal.errors import ConfigError, InputError
from polymodal.serve.limits import BodyLimit
from polymodal.serve.media import Thumbnails, safe_name, sniff

MAX_UPLOAD_BYTES = 20 * 2**20
UPLOAD_FOLDER = "uploads"
_ID = re.compile(r"^[0-9a-f]{16}$")
_AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
}


def create_app(
    engine: Any,
    *,
    token: str | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    thumbnail_folder: Path | None = None,
) -> FastAPI:
    """The app serving ``engine``: REST API under its OpenAPI schema (``/docs``) and the page."""
    app = FastAPI(
        title="polymodal search",
        description="Search a media collection by text, photo, sound, or photo + text.",
        version="1",
        docs_url=None,  # served below from local files: FastAPI's loads Swagger UI from a CDN
        redoc_url=None,
    )
    _offline_docs(app)
    thumbs = Thumbnails(thumbnail_folder or Path(engine.store.folder) / "thumbnails")
    static = resources.files("polymodal.serve") / "static"

    @app.exception_handler(InputError)
    async def _bad_input(_: Request, err: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(ConfigError)
    async def _bad_config(_: Request, err: ConfigError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=500)

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text("utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Whether the server is up, and how many items each space holds."""
        spaces = {name: engine.store.count(name) for name in sorted(engine.store.spaces)}
        return {"status": "ok", "root": str(engine.root), "spaces": spaces, "indexing": bool(token)}

    @app.get("/search")
    def search_text(
        q: Annotated[str, Query(description="What to look for, in words.")] = "",
        k: Annotated[int, Query(ge=1, le=1000)] = 10,
        modality: Annotated[str | None, Query(description="image, audio, video, text")] = None,
        folder: str | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
    ) -> dict[str, Any]:
        """Search by text."""
        if not q.strip():
            raise HTTPException(400, detail="empty query: give a text with ?q=")
        hits = engine.search(
            text=q, k=k, modality=modality, folder=folder, after=after, before=before
        )
        return {"query": {"text": q}, "results": [_hit(h) for h in hits]}

    @app.post("/search")
    def search_upload(
        file: Annotated[UploadFile | None, File(description="A photo or a sound.")] = None,
        text: Annotated[str | None, Form(description="Words (with a photo: the change)")] = None,
        k: Annotated[int, Form(ge=1, le=1000)] = 10,
        weight: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
        modality: Annotated[str | None, Form()] = None,
        folder: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        """Search by an uploaded photo or sound, a text, or a photo and a text together."""
        text = text if text and text.strip() else None
        data = file.file.read() if file is not None else b""
        if not data and text is None:
            raise HTTPException(400, detail="empty query: upload a photo or a sound, or give text")
        query: dict[str, Any] = {"text": text}
        if data:
            found = sniff(data)
            if found is None:
                name = file.filename if file is not None else "upload"
                raise HTTPException(
                    400, detail=f"{name}: not an image or audio file this search can read"
                )
            query[found[0]] = data
        hits = engine.search(**query, k=k, weight=weight, modality=modality, folder=folder)
        shown = {"text": text, "file": file.filename if data and file else None}
        return {"query": shown, "results": [_hit(h) for h in hits]}

    @app.post("/index")
    def index(
        request: Request,
        files: Annotated[list[UploadFile] | None, File(description="Photos or sounds")] = None,
        paths: Annotated[list[str] | None, Form(description="Files inside the root")] = None,
    ) -> dict[str, Any]:
        """Add uploaded ``files`` to the collection (under ``uploads/``) and index them, and/or
        index ``paths`` already inside the collection root (multipart form).

        Needs ``Authorization: Bearer <token>``. ``/index/paths`` takes the paths as JSON.
        """
        _authorize(request, token)
        if not files and not paths:
            raise HTTPException(400, detail="nothing to index: post 'files' and/or 'paths'")
        # every upload is checked before any is saved: a bad one must not leave the good ones
        # in the collection unindexed
        checked = [_checked_upload(f) for f in files or []]
        saved = [_store_upload(engine.root, *c) for c in checked]
        report = engine.add([*saved, *(paths or [])])
        added = [str(p.relative_to(engine.root)) for p in saved]
        return {"added_files": added, **report.to_dict()}

    @app.post("/index/paths")
    def index_paths(
        request: Request,
        paths: Annotated[list[str], Body(embed=True, description="Files inside the root")],
    ) -> dict[str, Any]:
        """Index (or re-index, or drop when gone) files already inside the collection root."""
        _authorize(request, token)
        if not paths:
            raise HTTPException(400, detail="no paths given")
        return engine.add(paths).to_dict()

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, Any]:
        """One indexed file's metadata."""
        return _with_urls(_item(engine, item_id).to_dict())

    @app.get("/items/{item_id}/file", response_class=FileResponse)
    def item_file(item_id: str) -> FileResponse:
        """The file itself (for audio playback and downloads)."""
        found = _item(engine, item_id)
        path = _path(engine, item_id)
        media = _AUDIO_TYPES.get(path.suffix.lower())
        return FileResponse(path, media_type=media, filename=Path(found.path).name)

    @app.get("/items/{item_id}/thumbnail", response_class=Response)
    def thumbnail(item_id: str) -> Response:
        """A JPEG thumbnail (photos only)."""
        found = _item(engine, item_id)
        if found.modality != "image":
            raise HTTPException(404, detail=f"item {item_id} is {found.modality}: no thumbnail")
        path = _path(engine, item_id)
        key = f"{item_id}-{found.size}-{int(found.mtime.timestamp() * 1e6)}"
        try:
            data = thumbs.get(key, path)
        except Exception as err:  # Pillow's many error types: the file changed under us
            detail = f"cannot read {found.path} as an image: {err}"
            raise HTTPException(422, detail=detail) from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    return app


def _authorize(request: Request, token: str | None) -> None:
    if not token:
        raise HTTPException(403, detail="indexing is off: start the server with --token")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise HTTPException(
            401, detail="indexing needs a bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise HTTPException(403, detail="wrong token")


def _item(engine: Any, item_id: str) -> Any:
    if not _ID.match(item_id):
        raise HTTPException(404, detail=f"no item {item_id!r}")
    try:
        return engine.item(item_id)
    except InputError:
        raise HTTPException(404, detail=f"no item {item_id!r} in this index") from None


def _path(engine: Any, item_id: str) -> Path:
    try:
        return engine.path_of(item_id)
    except InputError as err:
        raise HTTPException(404, detail=str(err)) from None


def _offline_docs(app: FastAPI) -> None:
    """``/docs``, the interactive API page, from the Swagger UI files installed with polymodal
    (``swagger-ui-bundle``), so that it works on a machine with no network."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url="/docs-static/swagger-ui-bundle.js",
            swagger_css_url="/docs-static/swagger-ui.css",
            swagger_favicon_url="/docs-static/favicon-32x32.png",
        )


def _checked_upload(upload: UploadFile) -> tuple[str | None, bytes, str]:
    """An upload's name, bytes and file extension; 400 unless it is an image or a sound."""
    data = upload.file.read()
    found = sniff(data) if data else None
    if found is None:
        raise HTTPException(
            400, detail=f"{upload.filename or 'upload'}: not an image or audio file"
        )
    return upload.filename, data, found[1]


def _store_upload(root: Path, filename: str | None, data: bytes, extension: str) -> Path:
    """Save a checked upload under ``root/uploads`` (a new name if taken)."""
    from polymodal.atomic import atomic_write_bytes

    folder = root / UPLOAD_FOLDER
    name = safe_name(filename, extension)
    target = folder / name
    stem, suffix = target.stem, target.suffix
    n = 1
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    atomic_write_bytes(target, data)
    return target


def _hit(hit: Any) -> dict[str, Any]:
    return _with_urls(hit.to_dict())


def _with_urls(row: dict[str, Any]) -> dict[str, Any]:
    row["file_url"] = f"/items/{row['id']}/file"
    row["thumbnail_url"] = f"/items/{row['id']}/thumbnail" if row["modality"] == "image" else None
    return row
