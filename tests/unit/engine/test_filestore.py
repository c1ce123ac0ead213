"""engine.api.filestore: content sniffing, accept lists, names, and the on-disk store."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path

import pytest

from engine.api import filestore as fs

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
ZIP = b"PK\x03\x04" + bytes(40)


@pytest.mark.parametrize(("head", "name", "ctype"), [
    (PDF, "x.pdf", "application/pdf"),
    (PDF, "x.txt", "application/pdf"),             # the bytes decide, not the name
    (b"\x89PNG\r\n\x1a\n....", "x.jpg", "image/png"),
    (b"\xff\xd8\xff\xe0", "x", "image/jpeg"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "x.webp", "image/webp"),
    (ZIP, "informe.xlsx",
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (ZIP, "informe.pdf", "application/zip"),
    (b"MZ\x90\x00", "setup.pdf", "application/x-msdownload"),
    ("a,b\n1,ñ\n".encode(), "d.csv", "text/csv"),
    (b"plain", "notes", "text/plain"),
    (b"\x00\x01\x02", "d.csv", "application/octet-stream"),
    (b"\xff\xfe\xfd not utf-8 at all, far from the end", "d.txt", "application/octet-stream"),
])
def test_sniff_decides_from_the_content(head: bytes, name: str, ctype: str) -> None:
    assert fs.sniff(head, name)[0] == ctype


@pytest.mark.parametrize(("head", "name", "accept", "ok"), [
    (PDF, "a.pdf", ["application/pdf"], True),
    (PDF, "a.pdf", [".pdf"], True),
    (b"text", "a.pdf", [".pdf"], False),               # text dressed as a PDF
    (b"text", "a.pdf", ["application/pdf"], False),
    (b"MZ\x90\x00", "a.csv", [".csv"], False),         # a program dressed as a CSV
    (b"\x00\x01", "a.csv", [".csv"], False),           # binary dressed as text
    (b"\x89PNG\r\n\x1a\n", "a.bin", ["image/*"], True),
    (b"\x89PNG\r\n\x1a\n", "a.bin", ["application/pdf", ".png"], False),
    (b"\x00\x01", "a.dat", [".dat"], True),            # an unknown binary format
    (PDF, "a.dat", [".dat"], False),                   # a PDF is not a .dat
    (b"x", "a", None, True),
])
def test_accepted_checks_content_against_the_list(head: bytes, name: str,
                                                  accept: list[str] | None, ok: bool) -> None:
    ctype, exts = fs.sniff(head, name)
    assert fs.accepted(accept, ctype, exts, name) is ok


def test_clean_name_keeps_only_a_name() -> None:
    assert fs.clean_name("../../etc/passwd") == "passwd"
    assert fs.clean_name("C:\\Users\\ana\\Informe final.pdf") == "Informe final.pdf"
    assert fs.clean_name("a\x00b\r\n.pdf") == "ab.pdf"
    assert fs.clean_name("..") == ""
    long = fs.clean_name("n" * 400 + ".pdf")
    assert len(long) == fs.MAX_NAME and long.endswith(".pdf")


def test_store_is_content_addressed_and_bounded(tmp_path: Path) -> None:
    root = tmp_path / "files"
    data = b"%PDF-" + bytes(range(256)) * 300
    sha = hashlib.sha256(data).hexdigest()
    first = fs.receive(root, io.BytesIO(data), len(data))
    assert (first.sha256, first.size, first.head) == (sha, len(data), data[:fs.SNIFF_BYTES])
    assert first.keep() == root / sha[:2] / sha
    assert (root / sha[:2] / sha).read_bytes() == data
    second = fs.receive(root, io.BytesIO(data), len(data))
    second.keep()                                       # same content: kept once
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [sha]
    with pytest.raises(fs.TooLarge):
        fs.receive(root, io.BytesIO(data), len(data) - 1)
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [sha]
    dropped = fs.receive(root, io.BytesIO(b"other"), 10)
    dropped.discard()
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [sha]
    with pytest.raises(ValueError):
        fs.path_of(root, "../" + "0" * 61)


def test_sweep_removes_only_old_unfinished_uploads(tmp_path: Path) -> None:
    root = tmp_path / "files"
    assert fs.sweep(root) == 0                          # no folder yet
    kept = fs.receive(root, io.BytesIO(b"%PDF-kept"), 100)
    kept.keep()
    old = fs.receive(root, io.BytesIO(b"half an upload"), 100)
    fresh = fs.receive(root, io.BytesIO(b"in flight"), 100)
    two_days = time.time() - 2 * 86_400
    os.utime(old.tmp, (two_days, two_days))
    assert fs.sweep(root) == 1
    assert not Path(old.tmp).exists() and Path(fresh.tmp).exists()
    assert (root / kept.sha256[:2] / kept.sha256).exists()


def test_is_meta_wants_exactly_the_served_shape() -> None:
    sha = "a" * 64
    meta = {"name": "a.pdf", "size": 3, "type": "application/pdf", "sha256": sha,
            "key": f"aa/{sha}"}
    assert fs.is_meta(meta)
    assert not fs.is_meta({**meta, "key": "../x"})
    assert not fs.is_meta({**meta, "size": True})
    assert not fs.is_meta({**meta, "extra": 1})
    assert not fs.is_meta({**meta, "sha256": "A" * 64, "key": "AA/" + "A" * 64})
