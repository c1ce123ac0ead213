"""The local spool: append-only segments on disk holding every published batch until stored.

Each :meth:`Spool.append` writes one record with a single ``write()`` to the current segment
(the kernel has it: a SIGKILL of the process loses nothing); the writer calls :meth:`sync`
(``fsync``) before it stores a batch, so what a reboot finds is what was acknowledged to
nobody yet. The writer reads records back in order (:class:`Reader`) and :meth:`ack`\\ s
what is stored; fully stored segments are deleted. Replays are idempotent in the store (a
unique key on tag and time), so a crash between storing and acknowledging costs nothing.

Bound: when the segments exceed ``max_bytes``, the oldest segments are deleted (*drop
oldest*): the samples they held are counted (``dropped``, kept across restarts) and logged.

Format: a segment ``<seq>.seg`` starts with ``CSPL`` and a version, then records
``[u32 length][u32 crc32][u8 type][body]``. Type 1 names tag paths (``u32 first index``,
then ``u16 length + UTF-8`` each) for the samples records after it in the same segment;
type 2 holds samples (``u32 count``, then per sample ``u32 path index, i64 µs, u8 flags,
value``; flags: quality in bits 0-1, kind in bits 2-4: null, float64, true, false, text
with ``u32 length + UTF-8``); type 3 holds a batch of floats column by column (the
common case, packed and unpacked in one ``struct`` call). A torn last record (a crash
mid-write) fails its length or CRC check and is cut off when the spool is opened.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"CSPL\x00\x01"
_REC = struct.Struct("<II")
_PATHS, _SAMPLES, _FLOATS = 1, 2, 3
_K_NULL, _K_FLOAT, _K_TRUE, _K_FALSE, _K_TEXT = 0, 1, 2, 3, 4
_FLOAT = struct.Struct("<IqBd")
_BARE = struct.Struct("<IqB")
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")

PathRow = tuple[str, int, "bool | int | float | None", "str | None", int]


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the spool: segment number and byte offset after a record."""

    seq: int
    offset: int


def encode_samples(rows: Sequence[PathRow], index: dict[str, int]
                   ) -> tuple[bytes, bytes, int]:
    """``(paths record body, samples record body, record type)`` for ``rows``; new paths
    join ``index``. A batch of float values only is written column by column (type 3:
    ``u32 count``, the path indexes, times, flags, values; one ``struct`` call)."""
    new: list[str] = []
    n = len(rows)
    values = [r[2] for r in rows]
    if n and all(type(v) is float for v in values) and all(r[3] is None for r in rows):
        get = index.get
        idx = []
        for r in rows:
            i = get(r[0])
            if i is None:
                i = index[r[0]] = len(index)
                new.append(r[0])
            idx.append(i)
        body = struct.pack(f"<I{n}I{n}q{n}B{n}d", n, *idx, *(r[1] for r in rows),
                           *(r[4] | (_K_FLOAT << 2) for r in rows), *values)
        return _names_body(new, index), body, _FLOATS
    parts = [_U32.pack(len(rows))]
    add = parts.append
    fl, bare = _FLOAT.pack, _BARE.pack
    for path, ts, value, text, quality in rows:
        i = index.get(path)
        if i is None:
            i = index[path] = len(index)
            new.append(path)
        if text is not None:
            b = text.encode()
            add(bare(i, ts, quality | (_K_TEXT << 2)))
            add(_U32.pack(len(b)))
            add(b)
        elif value is None:
            add(bare(i, ts, quality))
        elif value is True:
            add(bare(i, ts, quality | (_K_TRUE << 2)))
        elif value is False:
            add(bare(i, ts, quality | (_K_FALSE << 2)))
        else:
            add(fl(i, ts, quality | (_K_FLOAT << 2), value))
    return _names_body(new, index), b"".join(parts), _SAMPLES


def _names_body(new: list[str], index: dict[str, int]) -> bytes:
    if not new:
        return b""
    first = len(index) - len(new)
    return _U32.pack(first) + b"".join(_U16.pack(len(e)) + e for e in
                                       (p.encode() for p in new))


def decode_floats(body: bytes, paths: list[str]) -> list[PathRow]:
    """The rows of a column-wise (type 3) record body."""
    (n,) = _U32.unpack_from(body)
    cols = struct.unpack_from(f"<{n}I{n}q{n}B{n}d", body, 4)
    return [(paths[i], t, v, None, f & 3) for i, t, f, v in
            zip(cols[:n], cols[n:2 * n], cols[2 * n:3 * n], cols[3 * n:], strict=True)]


def decode_samples(body: bytes, paths: list[str]) -> list[PathRow]:
    """The rows of a samples record body."""
    (n,) = _U32.unpack_from(body)
    at = 4
    out: list[PathRow] = []
    for _ in range(n):
        i, ts, flags = _BARE.unpack_from(body, at)
        at += _BARE.size
        kind = flags >> 2
        q = flags & 3
        if kind == _K_FLOAT:
            (v,) = struct.unpack_from("<d", body, at)
            at += 8
            out.append((paths[i], ts, v, None, q))
        elif kind == _K_TEXT:
            (ln,) = _U32.unpack_from(body, at)
            at += 4
            out.append((paths[i], ts, None, body[at:at + ln].decode(), q))
            at += ln
        else:
            v2 = True if kind == _K_TRUE else False if kind == _K_FALSE else None
            out.append((paths[i], ts, v2, None, q))
    return out


def _record(kind: int, body: bytes) -> bytes:
    payload = bytes((kind,)) + body
    return _REC.pack(len(payload), zlib.crc32(payload)) + payload


def _records(data: bytes, start: int = len(MAGIC)) -> Iterator[tuple[int, int, bytes]]:
    """``(kind, offset after, body)`` of each sound record from ``start``."""
    at = start
    while at + _REC.size <= len(data):
        length, crc = _REC.unpack_from(data, at)
        end = at + _REC.size + length
        if length == 0 or end > len(data):
            return
        payload = data[at + _REC.size:end]
        if zlib.crc32(payload) != crc:
            return
        yield payload[0], end, payload[1:]
        at = end


class Spool:
    """The segments of one spool folder (``append`` from one thread, the rest from another)."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int | None = None
                 ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(64 << 20, max_bytes // 8))
        self._lock = threading.Lock()
        self._fd = -1
        self._seq = 0
        self._size = 0
        self._index: dict[str, int] = {}
        self._unsynced: list[int] = []
        #: samples lost to the bound (since the spool folder was created)
        self.dropped = 0
        self.acked = Position(0, 0)
        #: everything before this is held by the writer (in memory or stored): a drop does
        #: not count it as lost
        self.owned = Position(0, 0)
        self._sizes: dict[int, int] = {}
        self._open()

    # ------------------------------------------------------------------ files

    def _path(self, seq: int) -> Path:
        return self.dir / f"{seq:020d}.seg"

    def segments(self) -> list[int]:
        """Segment numbers on disk, oldest first."""
        return sorted(int(p.stem) for p in self.dir.glob("*.seg"))

    def _open(self) -> None:
        ack = self.dir / "ack"
        if ack.exists():
            seq, offset = ack.read_text().split()
            self.acked = Position(int(seq), int(offset))
        dropped = self.dir / "dropped"
        if dropped.exists():
            self.dropped = int(json.loads(dropped.read_text())["samples"])
        for seq in self.segments():
            path = self._path(seq)
            if seq < self.acked.seq:
                path.unlink()
                continue
            data = path.read_bytes()
            good = len(MAGIC)
            if data[:len(MAGIC)] == MAGIC:
                for _k, end, _b in _records(data):
                    good = end
            if good < len(data):
                log.warning("history spool %s: cut a torn record (%d byte(s)) off the end",
                            path.name, len(data) - good)
                with open(path, "r+b") as f:
                    f.truncate(good)
                    if good == len(MAGIC):
                        f.seek(0)
                        f.write(MAGIC)
            self._sizes[seq] = good
        last = max(self._sizes, default=self.acked.seq)
        self._start_segment(last + 1)

    def _start_segment(self, seq: int) -> None:
        if self._fd >= 0:
            self._unsynced.append(self._fd)
        fd = os.open(self._path(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        os.write(fd, MAGIC)
        self._fd, self._seq, self._size = fd, seq, len(MAGIC)
        self._sizes[seq] = self._size
        self._index = {}
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # ------------------------------------------------------------------ writing

    def append(self, rows: Sequence[PathRow]) -> Position:
        """Journal ``rows`` (one ``write()``, no fsync); return the position after them."""
        with self._lock:
            if self._size >= self.segment_bytes:
                self._start_segment(self._seq + 1)
            names, body, kind = encode_samples(rows, self._index)
            data = (_record(_PATHS, names) if names else b"") + _record(kind, body)
            os.write(self._fd, data)
            self._size += len(data)
            self._sizes[self._seq] = self._size
            pos = Position(self._seq, self._size)
            if self.bytes() > self.max_bytes:
                self._drop_oldest()
            return pos

    def own(self, pos: Position) -> None:
        """The writer holds everything before ``pos`` (see :attr:`owned`)."""
        with self._lock:
            if pos > self.owned:
                self.owned = pos

    def end(self) -> Position:
        """The position after the last record."""
        with self._lock:
            return Position(self._seq, self._size)

    def sync(self) -> None:
        """fsync everything appended so far (the writer calls this before storing)."""
        with self._lock:
            fds, self._unsynced = self._unsynced, []
            current = os.dup(self._fd)
        for fd in fds:
            os.fsync(fd)
            os.close(fd)
        try:
            os.fsync(current)
        finally:
            os.close(current)

    def _drop_oldest(self) -> None:
        while self.bytes() > self.max_bytes:
            old = [s for s in sorted(self._sizes) if s != self._seq]
            if not old:
                return
            seq = old[0]
            path = self._path(seq)
            mark = max(self.acked, self.owned)
            start = mark.offset if seq == mark.seq else len(MAGIC) if seq > mark.seq else 1 << 62
            lost = 0
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                data = b""
            for kind, end, body in _records(data):
                if kind in (_SAMPLES, _FLOATS) and end > start:
                    lost += _U32.unpack_from(body)[0]
            path.unlink(missing_ok=True)
            del self._sizes[seq]
            self.dropped += lost
            tmp = self.dir / "dropped.tmp"
            tmp.write_text(json.dumps({"samples": self.dropped}))
            tmp.replace(self.dir / "dropped")
            log.error("history spool full (%d bytes, bound %d): dropped the oldest segment "
                      "with %d unstored sample(s); %d dropped in all", self.bytes() +
                      len(data), self.max_bytes, lost, self.dropped)

    # ------------------------------------------------------------------ reading

    def ack(self, pos: Position) -> None:
        """Everything up to ``pos`` is stored: delete the segments before it, remember it."""
        with self._lock:
            if pos <= self.acked:
                return
            self.acked = pos
            self.owned = max(self.owned, pos)
            if pos == Position(self._seq, self._size) and self._size > 64 * 1024:
                self._start_segment(self._seq + 1)  # all stored: start afresh, free the disk
                pos = self.acked = self.owned = Position(self._seq, self._size)
            for seq in [s for s in self._sizes if s < pos.seq]:
                self._path(seq).unlink(missing_ok=True)
                del self._sizes[seq]
        tmp = self.dir / "ack.tmp"
        tmp.write_text(f"{pos.seq} {pos.offset}")
        tmp.replace(self.dir / "ack")

    def bytes(self) -> int:
        """Bytes on disk in the segments (what the bound counts)."""
        return sum(self._sizes.values())

    def pending_bytes(self) -> int:
        """Bytes not acknowledged yet."""
        with self._lock:
            a = self.acked
            return sum(size - (max(a.offset, len(MAGIC)) if seq == a.seq else len(MAGIC))
                       for seq, size in self._sizes.items() if seq >= a.seq)

    def close(self) -> None:
        """fsync and close the files."""
        self.sync()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class Reader:
    """Reads records after a position, segment by segment, for the writer's replays."""

    #: bytes read from a segment at a time
    CHUNK = 8 << 20

    def __init__(self, spool: Spool, after: Position) -> None:
        self.spool = spool
        self.pos = after
        self._paths: list[str] = []
        self._loaded: int | None = None

    def read(self, max_samples: int) -> tuple[list[PathRow], Position]:
        """Up to about ``max_samples`` rows after the current position, and the new position.

        Segments dropped by the bound are skipped (the spool counted their loss). The rows
        read are the caller's from now on: :attr:`Spool.owned` moves past them.
        """
        rows: list[PathRow] = []
        while len(rows) < max_samples:
            end = self.spool.end()
            if self.pos >= end:
                break
            later = [s for s in self.spool.segments() if s >= self.pos.seq]
            if not later:
                break
            seq = later[0]
            if seq != self.pos.seq or self.pos.offset < len(MAGIC):
                self.pos = Position(seq, len(MAGIC))
            base = max(self.pos.offset, len(MAGIC))
            try:
                if self._loaded != seq:
                    self._enter(seq, base)
                with open(self.spool._path(seq), "rb") as f:
                    f.seek(base)
                    data = f.read(self.CHUNK)
                    if len(data) >= _REC.size and _REC.unpack_from(data)[0] + _REC.size > len(
                            data):
                        data += f.read()
            except FileNotFoundError:
                self.pos = Position(seq + 1, 0)
                continue
            consumed = False
            for kind, off, body in _records(data, 0):
                if kind == _PATHS:
                    self._names(body)
                elif kind == _SAMPLES:
                    rows += decode_samples(body, self._paths)
                elif kind == _FLOATS:
                    rows += decode_floats(body, self._paths)
                self.pos = Position(seq, base + off)
                consumed = True
                if len(rows) >= max_samples:
                    break
            if not consumed:
                if seq < end.seq:
                    self.pos = Position(seq + 1, 0)
                else:
                    break
        self.spool.own(self.pos)
        return rows, self.pos

    def _enter(self, seq: int, offset: int) -> None:
        """The path table of segment ``seq`` as declared before ``offset``."""
        self._paths = []
        self._loaded = seq
        if offset > len(MAGIC):
            with open(self.spool._path(seq), "rb") as f:
                data = f.read(offset)
            for kind, _off, body in _records(data):
                if kind == _PATHS:
                    self._names(body)

    def _names(self, body: bytes) -> None:
        (first,) = _U32.unpack_from(body)
        at = 4
        names = []
        while at < len(body):
            (ln,) = _U16.unpack_from(body, at)
            at += 2
            names.append(body[at:at + ln].decode())
            at += ln
        del self._paths[first:]
        self._paths += names
