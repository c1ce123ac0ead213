"""The historian sink: publish -> spool -> batched writes; replay after a restart; status."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from engine.db import create_engine_for
from engine.historian.catalog import TagPolicy
from engine.historian.samples import US, Sample, from_us, to_us
from engine.historian.spool import Spool
from engine.historian.store import open_store
from engine.historian.writer import Historian

pytestmark = pytest.mark.integration

POLICIES = [TagPolicy(f"pad.w{i}.pip", "pad", "number") for i in range(3)] + [
    TagPolicy("pad.w0.run", "pad", "bool"), TagPolicy("pad.w0.state", "pad", "text")]


def _samples(n: int, t0: dt.datetime, seed: int = 1) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        ts = t0 + dt.timedelta(microseconds=k * 10_000 + rng.randrange(100))
        which = k % 5
        if which < 3:
            out.append(Sample(f"pad.w{which}.pip", ts, rng.uniform(0, 3000), 2))
        elif which == 3:
            out.append(Sample("pad.w0.run", ts, rng.random() < 0.5, rng.choice([0, 1, 2])))
        else:
            out.append(Sample("pad.w0.state", ts, rng.choice(["run", "stop"]), 2))
    return out


def _stored(store: Any) -> list[tuple[str, int, Any, int]]:
    from engine.historian.catalog import Catalog
    from engine.historian.query import History

    catalog = Catalog(store)
    catalog.load()
    h = History(store, catalog)
    out = []
    for s in h.raw(h.resolve(["**"]), 0, to_us(dt.datetime(2100, 1, 1, tzinfo=dt.UTC)),
                   limit=10_000_000):
        out += [(s.tag.path, r[0], r[1], r[2]) for r in s.rows]
    return sorted(out, key=lambda r: (r[0], r[1]))


def _expected(samples: list[Sample]) -> list[tuple[str, int, Any, int]]:
    return sorted(((s.tag, to_us(s.ts), s.value, s.quality) for s in samples),
                  key=lambda r: (r[0], r[1]))


def _historian(url: str, spool_dir: Path, **kw: Any) -> Historian:
    engine = create_engine_for(url)
    return Historian(lambda: open_store(engine), Spool(spool_dir, max_bytes=64 << 20), POLICIES,
                     flush_seconds=0.05, **kw)


def test_publish_is_stored_and_counted(db_url: str, tmp_path: Path) -> None:
    hist = _historian(db_url, tmp_path / "spool", batch=700)
    hist.start()
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    samples = _samples(5000, t0)
    for i in range(0, len(samples), 37):
        hist.publish(samples[i:i + 37])
    assert hist.wait_stored(60)
    status = hist.status()
    hist.stop()
    assert _stored(hist.store) == _expected(samples)
    assert status["state"] == "writing" and status["stored"] == 5000
    assert status["published"] == 5000 and status["dropped_samples"] == 0
    assert status["spool_unstored_bytes"] == 0 and status["last_flush"] is not None
    assert hist.spool.bytes() < 64 * 1024  # stored segments are deleted
    hist.store.engine.dispose()


def test_restart_replays_the_spool_without_duplicates(db_url: str, tmp_path: Path) -> None:
    """A writer that never got to store (killed) leaves a spool the next one replays; a
    batch stored but not acknowledged (killed between the two) is not stored twice."""
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    samples = _samples(3000, t0, seed=4)
    # first life: journals only (its writer thread never runs), then "dies"
    first = _historian(db_url, tmp_path / "spool")
    first.publish(samples[:1000])
    first.publish(samples[1000:2000])
    first.spool.sync()
    # a second life stores everything, but crashes before acknowledging the spool
    second = _historian(db_url, tmp_path / "spool")
    second.start()
    assert second.wait_stored(60)
    second.stop()
    (tmp_path / "spool" / "ack").unlink()
    third = _historian(db_url, tmp_path / "spool")
    third.start()
    third.publish(samples[2000:])
    assert third.wait_stored(60)
    third.stop()
    assert _stored(third.store) == _expected(samples)
    for h in (first, second, third):
        if h.store is not None:
            h.store.engine.dispose()


def test_same_instant_changes_are_both_kept(sqlite_url: str, tmp_path: Path) -> None:
    hist = _historian(sqlite_url, tmp_path / "spool")
    hist.start()
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    hist.publish([Sample("pad.w0.pip", ts, 1.0, 2)])
    hist.publish([Sample("pad.w0.pip", ts, 1.0, 0)])  # quality change, same source time
    assert hist.wait_stored(30)
    hist.stop()
    got = _stored(hist.store)
    assert [(r[1], r[3]) for r in got] == [(to_us(ts), 2), (to_us(ts) + 1, 0)]
    assert from_us(got[1][1]) - ts == dt.timedelta(microseconds=1)
    hist.store.engine.dispose()


def test_database_absent_at_start(tmp_path: Path) -> None:
    """No database reachable: publishing still journals; the status says why nothing is
    stored; the samples are stored once a database is there."""
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    hist = _historian(url, tmp_path / "spool", retry_max_seconds=0.5)
    hist.start()
    t0 = dt.datetime.now(dt.UTC)
    hist.publish(_samples(100, t0))
    import time

    deadline = time.monotonic() + 20
    while hist.status()["last_error"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    status = hist.status()
    hist.stop()
    assert status["state"] == "database unreachable"
    assert status["stored"] == 0 and status["spool_unstored_bytes"] > 0
    assert "OperationalError" in status["last_error"]
    sqlite = f"sqlite:///{tmp_path / 'later.db'}"
    again = _historian(sqlite, tmp_path / "spool")
    again.start()
    assert again.wait_stored(30)
    again.stop()
    assert len(_stored(again.store)) == 100
    again.store.engine.dispose()
    assert US == 1_000_000
