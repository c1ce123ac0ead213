"""Alarms over the historian's stored history, on SQLite and PostgreSQL: ``campo alarms
replay`` reading the store (held values at the start, rate windows seeded from before it),
and rate-of-change alarms across a restart of the runtime's alarm engine (windows seeded
from the last stored samples: no false raise, no missed one, no false return)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.alarms.compile import compile_alarms
from engine.alarms.engine import AlarmEngine
from engine.alarms.replay import HistorianReader, replay
from engine.alarms.store import AlarmStore, ensure_alarm_tables
from engine.cli import main
from engine.db import create_engine_for
from engine.historian import Historian, open_store, policies_from
from engine.historian.samples import Sample
from engine.historian.spool import Spool
from metamodel.tags import TagModel, load_tags

pytestmark = pytest.mark.integration

#: recent (inside the default retention), on a whole minute
T0 = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).replace(second=0, microsecond=0)
TEMPLATE = """template: pump
scan_class: fast
tags:
  pip: {address: hr:40001, type: float32, unit: psi, range: [0, 3000]}
  running: {address: coil:00001}
alarms:
  pip_low:
    tag: pip
    analog: {lo: 200}
    deadband: 5
    priority: high
  pip_fast:
    tag: pip
    rate: {limit: 100, per: 1m, direction: fall}
    priority: medium
  stopped:
    tag: running
    state: false
    priority: low
"""


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


@pytest.fixture
def tags(project: Any) -> TagModel:
    root: Path = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/templates/pump.yaml": TEMPLATE,
        "tags/sites/pad.yaml": "site: pad\ndevices:\n  plc: {type: modbus_tcp, host: h}\n"
                               "instances:\n  w1: {template: pump, device: plc, unit_id: 1}\n"
                               "alarm_settings: {operators: 2}\n",
    })
    return load_tags(root)


@pytest.fixture
def db(db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine_for(db_url)
    yield engine
    engine.dispose()


def store_through_historian(db: sa.Engine, tags: TagModel, spool: Path,
                            samples: list[Sample]) -> None:
    """Write ``samples`` the way the runtime does: published to the historian sink, spooled,
    written by its thread; wait until they are committed."""
    hist = Historian(lambda: open_store(db), Spool(spool, max_bytes=8 << 20),
                     policies_from(tags), flush_seconds=0.05)
    hist.start()
    try:
        for s in samples:
            hist.publish([s])
        assert hist.wait_stored(60)
    finally:
        hist.stop()


def P(s: float, value: float) -> Sample:  # noqa: N802 - reads like the data it builds
    return Sample("pad.w1.pip", at(s), value)


HISTORY = [
    Sample("pad.w1.running", at(-3600), False),  # stopped an hour before, never again
    P(-3600, 800.0), P(-30, 800.0),
    P(5, 650.0),        # -150 within a minute, counted from the value held before the start
    P(600, 150.0),      # below lo
    P(700, 160.0), P(800, 400.0),
]


def test_replay_reads_the_historian(db: sa.Engine, tags: TagModel, tmp_path: Path) -> None:
    store_through_historian(db, tags, tmp_path / "spool", HISTORY)
    compiled = compile_alarms(tags)
    seen: list[float] = []
    reader = HistorianReader(open_store(db))
    result = replay(compiled, reader, at(0), at(3600), progress=seen.append)
    raised = [(a.alarm, (a.ts - T0).total_seconds()) for a in result.annunciations]
    # running false since before the start: held, so raised at once; the fall of 150 psi
    # from the value held 30 s before the start: a rate alarm at 5 s (clear a minute later,
    # by time alone), again with the fall of 500 psi at 600 s; lo at 600 s
    assert raised == [("pad.w1.stopped", 0.0), ("pad.w1.pip_fast", 5.0),
                      ("pad.w1.pip_fast", 600.0), ("pad.w1.pip_low.lo", 600.0)]
    assert result.samples == 2 + 4  # two held at the start, four inside the period
    assert result.kpis["alarms"] == 4 and seen[-1] == 1.0
    assert reader.missing == []


def test_replay_command_over_stored_history(db: sa.Engine, db_url: str, tags: TagModel,
                                            tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    store_through_historian(db, tags, tmp_path / "spool", HISTORY)
    root = Path(tags.root)
    proposed = tmp_path / "proposed" / "tags" / "templates"
    proposed.mkdir(parents=True)
    (proposed / "pump.yaml").write_text(TEMPLATE.replace("limit: 100", "limit: 600"))
    args = ["alarms", "replay", "--project", str(root), "--database-url", db_url,
            "--from", at(0).isoformat(), "--to", at(3600).isoformat(), "--site", "pad",
            "--overlay", str(tmp_path / "proposed")]
    assert main(args) == 0
    out = capsys.readouterr()
    current, proposed_part = out.out.split("== proposed")
    assert current.startswith("== current: 6 samples, ")

    def kpi(text: str, name: str) -> str:
        return next(line for line in text.splitlines() if line.startswith(name)).split()[-1]

    # the site's two operators (alarm_settings), as GET /api/alarms/kpi counts them
    assert kpi(current, "operators on duty") == "2"
    assert kpi(current, "alarms") == "4"
    per_hour = next(line for line in current.splitlines()
                    if line.startswith("per operator per hour"))
    assert per_hour.split("hour")[1].split()[0] == "2"  # 4 alarms in an hour, 2 operators
    assert "pad.w1.pip_fast" in current and "pad.w1.pip_fast" not in proposed_part
    assert "current [" in out.err and "100.0%" in out.err
    assert main(args[:-2] + ["--site", "nowhere"]) == 1
    assert "--site nowhere: no alarm rule of that site; sites with alarms: pad" in \
        capsys.readouterr().err


def test_replay_command_without_history(tags: TagModel, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["alarms", "replay", "--project", tags.root, "--from", at(0).isoformat(),
            "--to", at(60).isoformat()]
    missing = tmp_path / "none.db"
    assert main([*base, "--database-url", f"sqlite:///{missing}"]) == 1
    assert f"no history database at {missing}" in capsys.readouterr().err
    assert not missing.exists()
    empty = create_engine_for(f"sqlite:///{tmp_path / 'empty.db'}")
    with empty.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE x (a int)")
    empty.dispose()
    assert main([*base, "--database-url", f"sqlite:///{tmp_path / 'empty.db'}"]) == 1
    assert "holds no history (no campo_history_tag table)" in capsys.readouterr().err


# ------------------------------------------------------------------ rate alarms, restarts


def engine_after_restart(tags: TagModel, db: sa.Engine, now: dt.datetime,
                         seeded: bool = True) -> AlarmEngine:
    """The alarm engine as the runtime builds it at start: states from the database, rate
    windows from the historian (unless ``seeded`` is False)."""
    ensure_alarm_tables(db)
    e = AlarmEngine(compile_alarms(tags), AlarmStore(db), clock=lambda: now, timer_period=0,
                    history=(lambda: HistorianReader(open_store(db))) if seeded else None)
    e.load()
    return e


def feed(e: AlarmEngine, s: float, value: float) -> list[tuple[str, str]]:
    return [(x["alarm"], x["action"]) for x in e.process([P(s, value)], now=at(s))
            if x["alarm"] == "pad.w1.pip_fast"]


def run_and_store(e: AlarmEngine, db: sa.Engine, tags: TagModel, spool: Path,
                  samples: list[Sample]) -> list[tuple[str, str]]:
    """The runtime before the restart: each sample to the alarm engine and the historian."""
    out: list[tuple[str, str]] = []
    for s in samples:
        out += [(x["alarm"], x["action"]) for x in e.process([s], now=s.ts)
                if x["alarm"] == "pad.w1.pip_fast"]
    store_through_historian(db, tags, spool, samples)
    return out


def test_a_restart_raises_no_false_rate_alarm(db: sa.Engine, tags: TagModel,
                                              tmp_path: Path) -> None:
    """A slow fall (10 psi/min) with noise: two samples a second apart just after a start
    must not read as 180 psi/min."""
    before = [P(s, 1000.0 - s / 6) for s in range(0, 121, 2)]
    e = engine_after_restart(tags, db, at(0))
    assert run_and_store(e, db, tags, tmp_path / "spool", before) == []
    for seeded in (True, False):
        e = engine_after_restart(tags, db, at(130), seeded=seeded)
        assert feed(e, 130, 1000.0 - 130 / 6) == []
        assert feed(e, 131, 1000.0 - 131 / 6 - 3.0) == []  # a noisy reading
        assert e.states["pad.w1.pip_fast"].state.value == "normal"


def test_a_restart_misses_no_rate_alarm(db: sa.Engine, tags: TagModel, tmp_path: Path) -> None:
    """80 psi down in 30 s before the restart, 30 more 10 s after it: 110 in 40 s."""
    before = [P(0, 800.0), *[P(s, 800.0 - 80 * (s - 60) / 30) for s in range(61, 90, 3)],
              P(90, 720.0)]
    e = engine_after_restart(tags, db, at(0))
    assert run_and_store(e, db, tags, tmp_path / "spool", before) == []
    e = engine_after_restart(tags, db, at(95))
    assert feed(e, 100, 690.0) == [("pad.w1.pip_fast", "raise")]
    # without the stored samples the window holds one value: undetermined, not raised
    ensure_alarm_tables(db)
    with db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM campo_alarm_state")
    e = engine_after_restart(tags, db, at(95), seeded=False)
    assert feed(e, 100, 690.0) == []
    assert e.states["pad.w1.pip_fast"].state.value == "normal"


def test_an_active_rate_alarm_is_not_cleared_by_a_restart(db: sa.Engine, tags: TagModel,
                                                          tmp_path: Path) -> None:
    before = [P(0, 800.0), P(60, 800.0), P(70, 600.0)]
    e = engine_after_restart(tags, db, at(0))
    assert run_and_store(e, db, tags, tmp_path / "spool", before) == [
        ("pad.w1.pip_fast", "raise")]
    for seeded in (True, False):
        e = engine_after_restart(tags, db, at(80), seeded=seeded)
        assert e.states["pad.w1.pip_fast"].state.value == "unack_active"
        assert feed(e, 85, 598.0) == []  # still 202 psi below the value a minute ago
        assert e.states["pad.w1.pip_fast"].active
    # the engine without history cannot tell yet (its window starts at 85 s): held
    assert feed(e, 140, 597.0) == [] and e.states["pad.w1.pip_fast"].active
    # a whole minute seen and the fall is over: it returns to normal (unacknowledged)
    assert feed(e, 150, 597.0) == [("pad.w1.pip_fast", "clear")]


def test_a_restored_rate_alarm_on_a_steady_tag_clears_by_time(db: sa.Engine, tags: TagModel,
                                                              tmp_path: Path) -> None:
    """No sample after the restart (the tag is steady): the seeded window moves with the
    timers and the alarm returns to normal a minute after the last change, not never."""
    before = [P(0, 800.0), P(60, 800.0), P(70, 600.0)]
    e = engine_after_restart(tags, db, at(0))
    assert run_and_store(e, db, tags, tmp_path / "spool", before) == [
        ("pad.w1.pip_fast", "raise")]
    e = engine_after_restart(tags, db, at(80))

    def tick(s: float) -> list[tuple[str, str]]:
        return [(x["alarm"], x["action"]) for x in e.tick(at(s))
                if x["alarm"] == "pad.w1.pip_fast"]

    assert tick(120) == [] and e.states["pad.w1.pip_fast"].active  # 800 a minute ago
    assert tick(130) == [("pad.w1.pip_fast", "clear")]
    assert e.states["pad.w1.pip_fast"].state.value == "rtn_unack"
