"""The historian's spool: append, read back, acknowledge, torn records, the bound."""

from __future__ import annotations

import os
import random
from pathlib import Path

from engine.historian.spool import MAGIC, Position, Reader, Spool

T0 = 1_700_000_000_000_000


def _rows(n: int, start: int = 0, tags: int = 5) -> list[tuple[str, int, object, object, int]]:
    rng = random.Random(start)
    out: list[tuple[str, int, object, object, int]] = []
    for k in range(start, start + n):
        path = f"site.w{k % tags}.x"
        kind = k % 7
        if kind == 0:
            out.append((path, T0 + k, None, f"état {k}", 2))
        elif kind == 1:
            out.append((path, T0 + k, k % 2 == 0, None, 1))
        elif kind == 2:
            out.append((path, T0 + k, None, None, 0))
        else:
            out.append((path, T0 + k, rng.uniform(-1e6, 1e6), None, 2))
    return out


def _read_all(spool: Spool, after: Position) -> list[tuple[str, int, object, object, int]]:
    reader = Reader(spool, after)
    out: list[tuple[str, int, object, object, int]] = []
    while True:
        rows, _pos = reader.read(37)
        if not rows:
            return out
        out += rows


def test_round_trip_across_segments_and_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10 << 20, segment_bytes=2000)
    sent = []
    for i in range(40):
        batch = _rows(13, i * 13, tags=3 + i % 4)
        sent += batch
        spool.append(batch)
    assert len(spool.segments()) >= 4
    assert _read_all(spool, Position(0, 0)) == sent
    # acknowledge part way: a new spool on the same folder replays only the rest
    reader = Reader(spool, Position(0, 0))
    first, pos = reader.read(200)
    spool.ack(pos)
    spool.close()
    again = Spool(tmp_path, max_bytes=10 << 20, segment_bytes=2000)
    assert _read_all(again, again.acked) == sent[len(first):]
    assert min(again.segments()) == pos.seq  # segments before the acked one are gone
    again.close()


def test_torn_last_record_is_cut(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10 << 20)
    spool.append(_rows(10))
    spool.append(_rows(10, 10))
    spool.close()
    seg = tmp_path / f"{spool.segments()[-2]:020d}.seg" if len(spool.segments()) > 1 else None
    seg = seg or tmp_path / f"{spool.segments()[0]:020d}.seg"
    data = seg.read_bytes()
    seg.write_bytes(data[:-5])  # a crash in the middle of the second write
    again = Spool(tmp_path, max_bytes=10 << 20)
    assert _read_all(again, Position(0, 0)) == _rows(10)
    again.append(_rows(3, 50))
    assert _read_all(again, Position(0, 0)) == _rows(10) + _rows(3, 50)
    again.close()


def test_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=20_000, segment_bytes=4_000)
    sent = []
    for i in range(100):
        batch = _rows(10, i * 10)
        sent += batch
        spool.append(batch)
        assert spool.bytes() <= 20_000 + 4_000
    kept = _read_all(spool, Position(0, 0))
    assert spool.dropped > 0
    assert len(kept) + spool.dropped == len(sent)
    assert kept == sent[spool.dropped:]  # the oldest went, in order
    spool.close()
    assert Spool(tmp_path, max_bytes=20_000, segment_bytes=4_000).dropped == len(sent) - len(kept)


def test_owned_rows_are_not_counted_as_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=12_000, segment_bytes=3_000)
    reader = Reader(spool, Position(0, 0))
    held = []
    for i in range(60):
        spool.append(_rows(10, i * 10))
        rows, _ = reader.read(10_000)  # the writer reads everything as it comes
        held += rows
    assert spool.dropped == 0
    assert len(held) == 600


def test_files_are_what_the_format_says(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append([("a.b", T0, 1.5, None, 2)])
    spool.sync()
    name = tmp_path / f"{spool.segments()[0]:020d}.seg"
    assert name.read_bytes().startswith(MAGIC)
    assert os.stat(name).st_size == spool.end().offset
    spool.close()


def test_float_batches_are_written_column_wise(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=12_000, segment_bytes=3_000)
    sent = []
    for i in range(60):
        batch = [(f"s.t{k % 7}", T0 + i * 100 + k, float(i * 100 + k) / 3, None, k % 3)
                 for k in range(20)]
        sent += batch
        spool.append(batch)
    kept = _read_all(spool, Position(0, 0))
    assert kept == sent[len(sent) - len(kept):]  # bit-exact floats and qualities, in order
    assert spool.dropped == len(sent) - len(kept) > 0
    mixed = [("s.t1", T0 + 10**6, 1.5, None, 2), ("s.t2", T0 + 10**6, None, "x", 2)]
    spool.append(mixed)
    assert _read_all(spool, Position(0, 0))[-2:] == mixed
    spool.close()
