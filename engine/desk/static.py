"""The desk's static files: the shell at ``/``, assets under ``/ui/``, the service worker.

Files are read from the ``ui/`` folder (``CAMPO_UI_DIR``, default the repository's ``ui/``),
compressed with gzip once per file version and served with validators (ETag), so a phone
on a slow link fetches the shell once and then revalidates it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, request

log = logging.getLogger(__name__)

#: the paths of the shell that must be reachable without a token (they hold code only)
PUBLIC_PATHS = ("/", "/index.html", "/sw.js", "/manifest.webmanifest", "/favicon.ico")
PUBLIC_PREFIX = "/ui/"
#: types worth compressing
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml",
                 "application/manifest+json")
_TYPES = {".js": "application/javascript", ".mjs": "application/javascript",
          ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml",
          ".css": "text/css", ".html": "text/html", ".json": "application/json",
          ".png": "image/png", ".ico": "image/x-icon"}


def default_ui_dir() -> Path:
    """The repository's ``ui/`` folder (next to the ``engine`` package)."""
    return Path(__file__).resolve().parents[2] / "ui"


@dataclass(frozen=True)
class _Entry:
    mtime: float
    size: int
    etag: str
    body: bytes
    gz: bytes | None
    mimetype: str


class StaticFiles:
    """Serves files below ``root`` with ETags and gzip; nothing outside ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, rel: str) -> _Entry | None:
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        st = path.stat()
        with self._lock:
            entry = self._cache.get(path)
            if entry is not None and entry.mtime == st.st_mtime and entry.size == st.st_size:
                return entry
        body = path.read_bytes()
        mimetype = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] \
            or "application/octet-stream"
        gz = gzip.compress(body, 9, mtime=0) if mimetype.startswith(_COMPRESSIBLE) else None
        entry = _Entry(st.st_mtime, st.st_size, hashlib.sha256(body).hexdigest()[:20], body,
                       gz, mimetype)
        with self._lock:
            self._cache[path] = entry
        return entry

    def response(self, rel: str, *, no_cache: bool = False) -> Response:
        """The file at ``rel`` (404 when missing), gzipped when the client accepts it."""
        entry = self._entry(rel)
        if entry is None:
            abort(404)
        etag = f'"{entry.etag}"'
        headers = {"ETag": etag, "Vary": "Accept-Encoding",
                   "Cache-Control": "no-cache" if no_cache
                   else "public, max-age=0, must-revalidate"}
        if request.if_none_match.contains(entry.etag):
            return Response(status=304, headers=headers)
        body = entry.body
        if entry.gz is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = entry.gz
            headers["Content-Encoding"] = "gzip"
        mimetype = entry.mimetype
        if mimetype.startswith("text/") or mimetype == "application/javascript":
            mimetype += "; charset=utf-8"
        return Response(body, headers=headers, content_type=mimetype)


def static_blueprint(files: StaticFiles) -> Blueprint:
    """``/`` (the shell), ``/ui/<path>``, ``/sw.js`` and ``/manifest.webmanifest``."""
    blp = Blueprint("desk_static", __name__)

    @blp.route("/")
    @blp.route("/index.html")
    def shell() -> Response:
        resp = files.response("index.html", no_cache=True)
        return resp

    @blp.route("/sw.js")
    def service_worker() -> Response:
        resp = files.response("sw.js", no_cache=True)
        resp.headers["Service-Worker-Allowed"] = "/"
        return resp

    @blp.route("/manifest.webmanifest")
    def manifest() -> Response:
        return files.response("manifest.webmanifest")

    @blp.route("/favicon.ico")
    def favicon() -> Response:
        return files.response("icons/icon.svg")

    @blp.route("/ui/<path:rel>")
    def asset(rel: str) -> Response:
        return files.response(rel)

    return blp
