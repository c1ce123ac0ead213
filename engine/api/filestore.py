"""Files of attachment fields on disk: content-addressed, written atomically, sniffed.

A file lives at ``<data_dir>/files/<sha256[:2]>/<sha256>``: the path comes from the SHA-256
of the content the server computed, never from a name a client sent. The same content
uploaded twice (to one record or many) is stored once. A file is written to a temporary
file in the same folder, fsync'd, renamed into place and the folder fsync'd, so a crash
leaves either no file or the whole file; a reader never sees half of one.

What a record holds for an attachment field (:data:`META_KEYS`): ``name`` (the file name
as uploaded, cleaned), ``size`` (bytes), ``type`` (the content type the server detected),
``sha256`` (hex) and ``key`` (where the file is, relative to ``files/``).

:func:`sniff` decides the content type from the first bytes (magic numbers of common
formats), falling back to the name's extension only for text; :func:`accepted` checks it
against a field's ``accept:`` list.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeGuard

META_KEYS = ("name", "size", "type", "sha256", "key")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: bytes read per step when hashing and copying an upload
CHUNK = 1 << 16
#: longest file name kept (characters)
MAX_NAME = 255

#: (magic bytes at offset, offset, content type, the extensions such content may have)
_MAGIC: tuple[tuple[bytes, int, str, tuple[str, ...]], ...] = (
    (b"%PDF-", 0, "application/pdf", (".pdf",)),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", (".png",)),
    (b"\xff\xd8\xff", 0, "image/jpeg", (".jpg", ".jpeg", ".jpe", ".jfif")),
    (b"GIF87a", 0, "image/gif", (".gif",)),
    (b"GIF89a", 0, "image/gif", (".gif",)),
    (b"II*\x00", 0, "image/tiff", (".tif", ".tiff")),
    (b"MM\x00*", 0, "image/tiff", (".tif", ".tiff")),
    (b"\x1f\x8b", 0, "application/gzip", (".gz", ".tgz")),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed", (".7z",)),
    (b"Rar!\x1a\x07", 0, "application/vnd.rar", (".rar",)),
    (b"MZ", 0, "application/x-msdownload", (".exe", ".dll")),
    (b"\x7fELF", 0, "application/x-executable", ()),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage",
     (".doc", ".xls", ".ppt", ".msg")),
    (b"SQLite format 3\x00", 0, "application/vnd.sqlite3", (".sqlite", ".db")),
)
#: ZIP containers: the extension tells which format (all are ZIP files inside)
_ZIP_TYPES = {
    ".zip": "application/zip",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".kmz": "application/vnd.google-earth.kmz",
}
_OLE_TYPES = {".doc": "application/msword", ".xls": "application/vnd.ms-excel",
              ".ppt": "application/vnd.ms-powerpoint", ".msg": "application/vnd.ms-outlook"}
#: text formats recognised by extension once the content is known to be text
_TEXT_TYPES = {".txt": "text/plain", ".csv": "text/csv", ".json": "application/json",
               ".xml": "application/xml", ".las": "text/plain", ".md": "text/markdown",
               ".log": "text/plain", ".tsv": "text/tab-separated-values",
               ".svg": "image/svg+xml", ".html": "text/html", ".htm": "text/html",
               ".kml": "application/vnd.google-earth.kml+xml", ".yaml": "application/yaml",
               ".yml": "application/yaml"}
#: bytes looked at to tell text from binary
SNIFF_BYTES = 8192


def clean_name(name: str) -> str:
    """A file name safe to store and to send back: the last path part, NFC, no control
    characters, at most :data:`MAX_NAME` characters; '' when nothing is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) < 17 \
            else name[:MAX_NAME]
    return name


def extension(name: str) -> str:
    """The lowercase extension of ``name`` with its dot ('' when none)."""
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem and ext else ""


def sniff(head: bytes, name: str) -> tuple[str, tuple[str, ...]]:
    """The content type of a file starting with ``head`` and called ``name``, and the
    extensions that content may carry (empty: any). The content decides; the name only
    chooses between formats the bytes cannot tell apart (ZIP-based, OLE, text)."""
    ext = extension(name)
    for magic, offset, ctype, exts in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            if ctype == "application/x-ole-storage":
                return _OLE_TYPES.get(ext, ctype), exts
            return ctype, exts
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", (".webp",)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _ZIP_TYPES.get(ext, "application/zip"), tuple(_ZIP_TYPES)
    if _is_text(head[:SNIFF_BYTES]):
        return _TEXT_TYPES.get(ext) or "text/plain", ()
    return "application/octet-stream", ()


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:  # a character cut at the end of the sample is fine
        if err.start < len(head) - 3:
            return False
    return True


def _claimed() -> frozenset[str]:
    exts = {e for _, _, _, es in _MAGIC for e in es} | set(_ZIP_TYPES) | {".webp"}
    return frozenset(exts)


#: extensions of the binary formats :func:`sniff` recognises
CLAIMED = _claimed()


def accepted(accept: Iterable[str] | None, ctype: str, exts: tuple[str, ...], name: str
             ) -> bool:
    """Whether a file fits an ``accept:`` list (MIME types, ``type/*``, extensions); None
    accepts anything. ``ctype`` and ``exts`` come from :func:`sniff`: an extension in the
    list is accepted only when the content agrees with it (a recognised format must carry
    one of its own extensions, a text extension needs text, other content may not carry a
    recognised format's extension)."""
    if accept is None:
        return True
    ext = extension(name)
    major = ctype.split("/", 1)[0]
    for entry in accept:
        if entry.startswith("."):
            if entry == ext and _agrees(ext, ctype, exts):
                return True
        elif entry == ctype or entry == f"{major}/*":
            return True
    return False


def _agrees(ext: str, ctype: str, exts: tuple[str, ...]) -> bool:
    """Whether content sniffed as ``ctype`` (extensions ``exts``) may carry ``ext``."""
    if ext in _TEXT_TYPES:
        return ctype == _TEXT_TYPES[ext]
    if exts:
        return ext in exts
    return ext not in CLAIMED


def path_of(root: Path, sha256: str) -> Path:
    """Where the file with ``sha256`` lives under ``root`` (``<data_dir>/files``)."""
    if not SHA256_HEX.match(sha256):
        raise ValueError("not a SHA-256 in hex")
    return root / sha256[:2] / sha256


def key_of(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256}"


class TooLarge(Exception):
    """The upload is larger than the limit."""


@dataclass
class Pending:
    """A received upload in a temporary file, not yet at its content address."""

    root: Path
    tmp: str
    sha256: str
    size: int
    #: the first :data:`SNIFF_BYTES` bytes (for :func:`sniff`)
    head: bytes

    def keep(self) -> Path:
        """Move the file to ``<root>/<sha256[:2]>/<sha256>`` (or drop it when that content
        is already stored) and fsync the folder; returns the path."""
        final = path_of(self.root, self.sha256)
        if final.exists():
            self.discard()
            return final
        final.parent.mkdir(exist_ok=True)
        os.replace(self.tmp, final)
        _fsync_dir(final.parent)
        return final

    def discard(self) -> None:
        """Remove the temporary file if it is still there."""
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def receive(root: Path, stream: IO[bytes], limit: int) -> Pending:
    """Copy ``stream`` to a temporary file under ``root``, hashing it, fsync'd.

    Reads at most ``limit + 1`` bytes: :class:`TooLarge` (and nothing kept) above ``limit``.
    """
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=root)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(stream, limit + 1):
                size += len(chunk)
                if size > limit:
                    raise TooLarge
                if len(head) < SNIFF_BYTES:
                    head += chunk[:SNIFF_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Pending(root, tmp, digest.hexdigest(), size, head)


def sweep(root: Path, older_than: float = 86_400.0) -> int:
    """Remove temporary files of uploads that never finished (a process killed mid-upload)
    older than ``older_than`` seconds; returns how many. Younger ones may be in flight."""
    if not root.is_dir():
        return 0
    limit = time.time() - older_than
    gone = 0
    for tmp in root.glob(".upload-*"):
        try:
            if tmp.stat().st_mtime < limit:
                tmp.unlink()
                gone += 1
        except FileNotFoundError:
            pass
    return gone


def _chunks(stream: IO[bytes], most: int) -> Iterator[bytes]:
    left = most
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_meta(value: Any) -> TypeGuard[dict[str, Any]]:
    """Whether ``value`` has the shape of an attachment's metadata."""
    return (isinstance(value, dict) and set(value) == set(META_KEYS)
            and isinstance(value["name"], str) and isinstance(value["type"], str)
            and isinstance(value["size"], int) and not isinstance(value["size"], bool)
            and isinstance(value["sha256"], str) and SHA256_HEX.match(value["sha256"]) is not None
            and value["key"] == key_of(value["sha256"]))
