"""Faults: the rows stored equal the samples the pipeline produced (no gap, no duplicate)
when the database stops mid-ingest, when the runtime process is SIGKILLed, and the stated
policy (drop oldest, counted) when the spool's bound is reached."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.db import create_engine_for
from engine.historian import open_store
from engine.historian.catalog import TagPolicy
from engine.historian.samples import US, Sample
from engine.historian.spool import Spool
from engine.historian.writer import Historian

pytestmark = pytest.mark.integration

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO = Path(__file__).resolve().parents[3]
TAGS = [TagPolicy(f"pad.t{i}", "pad", "number") for i in range(5)]
T0 = round((dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).timestamp()) * US


def sample(n: int) -> Sample:
    """Sample ``n`` of the deterministic stream: tag n % 5, one millisecond apart."""
    return Sample(f"pad.t{n % 5}", dt.datetime.fromtimestamp((T0 + n * 1000) / US, dt.UTC),
                  float(n), 2)


def stored(url: str) -> list[tuple[str, float]]:
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT t.path, s.value FROM campo_history s JOIN campo_history_tag t "
                "ON t.id = s.tag_id").all()
    finally:
        engine.dispose()
    return [(p, float(v)) for p, v in rows]


def assert_exactly(rows: list[tuple[str, float]], first: int, last: int) -> None:
    """The stored rows are samples ``first..last``, each once."""
    values = sorted(int(v) for _p, v in rows)
    assert len(values) == len(set(values)), "duplicates stored"
    assert values == list(range(first, last + 1)), (
        f"stored {len(values)} samples, {values[:3]}..{values[-3:]}, expected {first}..{last}")
    assert all(p == f"pad.t{int(v) % 5}" for p, v in rows)


class OwnPostgres:
    """A PostgreSQL cluster of the test's own (initdb into a temp dir, run as ``postgres``)."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = Path(tempfile.mkdtemp(prefix="campo-hist-pg-", dir="/var/tmp"))
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres")
        self._as_postgres(f"{PG_BIN}/initdb -D {self.data} -A trust -U postgres >/dev/null")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-c", command], check=True, timeout=120)

    def start(self) -> None:
        self._as_postgres(f"{PG_BIN}/pg_ctl -D {self.data} -w -l {self.dir}/log -o "
                          f"\"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1\" start "
                          ">/dev/null")

    def stop(self) -> None:
        self._as_postgres(f"{PG_BIN}/pg_ctl -D {self.data} -m fast -w stop >/dev/null")

    def remove(self) -> None:
        subprocess.run(["su", "postgres", "-c", f"{PG_BIN}/pg_ctl -D {self.data} -m immediate "
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    if not (PG_BIN / "initdb").exists() or os.geteuid() != 0:
        msg = "PostgreSQL 15 server binaries and root (to run them as postgres) are needed"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    pg = OwnPostgres()
    pg.start()
    yield pg
    pg.remove()


def test_database_stopped_mid_ingest(own_pg: OwnPostgres, tmp_path: Path) -> None:
    engine = create_engine_for(own_pg.url, pool_pre_ping=True)
    hist = Historian(lambda: open_store(engine), Spool(tmp_path / "spool", 1 << 26), TAGS,
                     flush_seconds=0.05, retry_max_seconds=0.5)
    hist.start()
    states: set[str] = set()
    produced = [0]
    stop = threading.Event()

    def pipeline() -> None:  # the runtime's output: a batch of 10 every 10 ms
        n = 0
        while not stop.is_set():
            hist.publish([sample(k) for k in range(n, n + 10)])
            n += 10
            produced[0] = n
            time.sleep(0.01)
            states.add(hist.status()["state"])

    runner = threading.Thread(target=pipeline)
    runner.start()
    time.sleep(1.5)
    own_pg.stop()                       # the database goes away mid-ingest
    time.sleep(2.5)
    down = hist.status()
    own_pg.start()                      # and comes back
    time.sleep(1.5)
    stop.set()
    runner.join()
    assert hist.wait_stored(60)
    status = hist.status()
    hist.stop()
    engine.dispose()
    assert down["state"] == "database unreachable" and down["spool_unstored_bytes"] > 0
    assert "replaying" in states or "database unreachable" in states
    assert status["dropped_samples"] == 0 and status["refused"] == 0, status
    assert status["stored"] >= produced[0], status
    assert_exactly(stored(own_pg.url), 0, produced[0] - 1)


CHILD = """
import asyncio, datetime as dt, os, sys, time
sys.path.insert(0, {tests!r})
from test_history_faults import TAGS, sample
from engine.db import create_engine_for
from engine.historian import open_store
from engine.historian.spool import Spool
from engine.historian.writer import Historian
from engine.wiring.history import HistorianSink

url, spool, ledger = sys.argv[1:4]
first, seconds = int(sys.argv[4]), float(sys.argv[5])
engine = create_engine_for(url)
hist = Historian(lambda: open_store(engine), Spool(spool, 1 << 26), TAGS, flush_seconds=0.05)
sink = HistorianSink(hist)
asyncio.run(sink.start())
fd = os.open(ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
n, end = first, time.monotonic() + seconds
print("ready", flush=True)
while time.monotonic() < end:
    sink.offer([sample(k) for k in range(n, n + 20)])  # what the pipeline hands the sink
    n += 20
    os.write(fd, f"{{n - 1}}\\n".encode())              # produced up to here
    time.sleep(0.005)
assert hist.wait_stored(60)
asyncio.run(sink.stop())
print("done", n - 1, flush=True)
"""


def test_runtime_killed_mid_ingest(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent)))
    ledger = tmp_path / "ledger"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def child(first: int, seconds: float) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, str(script), db_url, str(tmp_path / "spool"),
                              str(ledger), str(first), str(seconds)], env=env,
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    first = child(0, 60)
    time.sleep(3.0)
    first.send_signal(signal.SIGKILL)   # mid-ingest: batches in memory, in the spool, in COPY
    first.wait(30)
    assert first.stdout is not None
    first.stdout.close()
    produced = int(ledger.read_text().split()[-1])
    assert produced > 1000
    # restarted: it replays the spool, then the pipeline carries on after what was produced
    second = child(produced + 1, 1.5)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out
    last = int(out.split()[-1])
    assert_exactly(stored(db_url), 0, last)


def test_spool_bound_drops_oldest_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                          ) -> None:
    up = threading.Event()
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = create_engine_for(url)

    def store() -> Any:
        if not up.is_set():
            raise sa.exc.OperationalError("connect", None, ConnectionRefusedError("down"))
        return open_store(engine)

    spool = Spool(tmp_path / "spool", max_bytes=48_000, segment_bytes=6_000)
    hist = Historian(store, spool, TAGS, flush_seconds=0.05, retry_max_seconds=0.2)
    hist.start()
    caplog.set_level(logging.ERROR, logger="engine.historian.spool")
    total = 20_000
    for n in range(0, total, 50):
        hist.publish([sample(k) for k in range(n, n + 50)])
    assert spool.bytes() <= 48_000 + 6_000
    dropped = hist.status()["dropped_samples"]
    assert dropped > 0
    assert any("dropped the oldest segment" in r.getMessage() for r in caplog.records)
    up.set()                              # the database is back
    assert hist.wait_stored(60)
    status = hist.status()
    hist.stop()
    rows = stored(url)
    assert status["dropped_samples"] == dropped == total - len(rows)
    assert_exactly(rows, dropped, total - 1)   # the newest kept, in full; the oldest counted
    # the count survives a restart of the spool
    assert Spool(tmp_path / "spool", max_bytes=48_000, segment_bytes=6_000).dropped == dropped
    engine.dispose()
