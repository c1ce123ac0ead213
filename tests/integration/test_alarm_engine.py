"""The alarm engine on a real database: evaluation, deadband, delays, journal, actions, and a
restart of the runtime in every state (no alarm raised twice, no return to normal lost)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.alarms.compile import compile_alarms
from engine.alarms.engine import AlarmEngine
from engine.alarms.store import AlarmStore, ensure_alarm_tables, journal_table, state_table
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
TEMPLATE = """template: pump
scan_class: fast
tags:
  pip: {address: hr:40001, type: float32, unit: psi, range: [0, 3000]}
  current: {address: hr:40003, type: float32, unit: A}
  running: {address: coil:00001}
  run_cmd: {address: coil:00002}
  cause: {address: hr:40005, type: uint16}
alarms:
  pip_low:
    tag: pip
    analog: {lo: 100}
    deadband: 5
    on_delay: 5s
    priority: low
    message: {es: 'PIP baja {value} {unit}', en: 'Low PIP {value} {unit} (limit {limit})'}
  stopped:
    when: run_cmd and not running
    latch: true
    priority: high
  current_high:
    tag: current
    analog: {hi: 50}
    deadband: 1
    realarm: 60s
    suppress_when: not run_cmd
    priority: medium
  comms:
    tag: pip
    bad_quality: true
    priority: medium
  trip_cause:
    tag: cause
    change: true
    priority: low
"""


@dataclass
class S:
    tag: str
    value: Any
    quality: int = 2
    ts: dt.datetime = T0
    reason: str | None = None


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


@pytest.fixture
def compiled(project):  # type: ignore[no-untyped-def]
    root: Path = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/templates/pump.yaml": TEMPLATE,
        "tags/sites/pad.yaml": "site: pad\ndevices:\n  plc: {type: modbus_tcp, host: h}\n"
                               "instances:\n  w1: {template: pump, device: plc, unit_id: 1}\n",
    })
    return compile_alarms(load_tags(root))


@pytest.fixture
def db(db_url: str):  # type: ignore[no-untyped-def]
    engine = sa.create_engine(db_url)
    ensure_alarm_tables(engine)
    yield engine
    engine.dispose()


def fresh(compiled: Any, db: sa.Engine) -> AlarmEngine:
    return AlarmEngine(compiled, AlarmStore(db), timer_period=0)


def feed(e: AlarmEngine, s: float, **values: Any) -> list[tuple[str, str, str]]:
    batch = [S(f"pad.w1.{k}", v, ts=at(s)) for k, v in values.items()]
    return [(x["alarm"], x["action"], x["state"]) for x in e.process(batch, now=at(s))]


NORMAL = {"pip": 800.0, "current": 30.0, "running": True, "run_cmd": True, "cause": 0}


def journal(db: sa.Engine) -> list[tuple[str, str, str, str]]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(journal_table).order_by(journal_table.c.id)).mappings()
        return [(r["alarm"], r["from_state"], r["to_state"], r["action"]) for r in rows]


def test_a_value_hovering_at_the_limit_raises_once(compiled: Any, db: sa.Engine) -> None:
    e = fresh(compiled, db)
    assert feed(e, 0, **NORMAL) == []
    assert feed(e, 1, current=50.0) == [("pad.w1.current_high.hi", "raise", "unack_active")]
    for i, v in enumerate([49.5, 50.2, 49.1, 50.9, 49.05, 50.0]):  # inside the deadband
        assert feed(e, 2 + i, current=v) == []
    assert feed(e, 10, current=48.9) == [("pad.w1.current_high.hi", "clear", "rtn_unack")]
    assert journal(db) == [("pad.w1.current_high.hi", "normal", "unack_active", "raise"),
                           ("pad.w1.current_high.hi", "unack_active", "rtn_unack", "clear")]


def test_on_delay_through_the_engine_timers(compiled: Any, db: sa.Engine) -> None:
    e = fresh(compiled, db)
    feed(e, 0, **NORMAL)
    assert feed(e, 1, pip=90.0) == []
    assert e.tick(at(5.9)) == []
    events = e.tick(at(6.1))
    assert [(x["alarm"], x["action"]) for x in events] == [("pad.w1.pip_low.lo", "raise")]
    assert events[0]["ts"] == at(6).isoformat()
    assert events[0]["message"] == {"es": "PIP baja 90 psi", "en": "Low PIP 90 psi (limit 100)"}


def test_bad_quality_holds_the_condition_and_raises_the_comms_alarm(
        compiled: Any, db: sa.Engine) -> None:
    e = fresh(compiled, db)
    assert e.process([S("pad.w1.pip", None, 0, at(0), "not read yet")], now=at(0)) == []
    feed(e, 0, **NORMAL)
    feed(e, 1, current=60.0)
    out = e.process([S("pad.w1.current", None, 0, at(2), "offline"),
                     S("pad.w1.pip", None, 0, at(2), "offline")], now=at(2))
    assert [(x["alarm"], x["action"]) for x in out] == [("pad.w1.comms", "raise")]
    assert e.states["pad.w1.current_high.hi"].state.value == "unack_active"  # held


def test_change_of_state_is_momentary(compiled: Any, db: sa.Engine) -> None:
    e = fresh(compiled, db)
    feed(e, 0, **NORMAL)
    assert feed(e, 1, cause=1) == [("pad.w1.trip_cause", "raise", "unack_active"),
                                   ("pad.w1.trip_cause", "clear", "rtn_unack")]
    assert feed(e, 2, cause=1) == []


def test_actions_check_roles_and_sites_and_are_journaled(compiled: Any, db: sa.Engine) -> None:
    e = fresh(compiled, db)
    feed(e, 0, **NORMAL)
    feed(e, 1, running=False)
    path = "pad.w1.stopped"
    r = e.act("shelve", [path], user="v", roles={"operator"}, until=at(100), reason="x",
              now=at(2))
    assert r[0]["status"] == 403 and "supervisor" in r[0]["error"]
    r = e.act("acknowledge", [path], user="ana", roles={"operator"}, sites=["other"], now=at(2))
    assert r[0]["status"] == 404
    r = e.act("acknowledge", [path, "pad.w1.nope"], user="ana", roles={"operator"},
              comment="on my way", now=at(2))
    assert [x["status"] for x in r] == [200, 404]
    r = e.act("acknowledge", [path], user="ana", roles={"operator"}, now=at(3))
    assert r[0]["status"] == 409
    feed(e, 4, running=True)
    assert e.states[path].state.value == "latched"
    r = e.act("reset", [path], user="ana", roles={"operator"}, now=at(5))
    assert r[0]["ok"] and e.states[path].state.value == "normal"
    with db.connect() as conn:
        rows = conn.execute(sa.select(journal_table).where(journal_table.c.alarm == path)
                            .order_by(journal_table.c.id)).mappings().all()
    assert [(r["action"], r["username"], r["comment"]) for r in rows] == [
        ("raise", None, None), ("ack", "ana", "on my way"), ("clear", None, None),
        ("reset", "ana", None)]
    assert rows[0]["priority"] == "high" and rows[0]["site"] == "pad"


# ------------------------------------------------------------------ restarts

def _to(e: AlarmEngine, state: str) -> None:
    """Drive pad.w1.current_high.hi (or stopped for latched) into ``state``."""
    feed(e, 0, **NORMAL)
    if state == "pending":
        feed(e, 1, pip=90.0)
        return
    if state == "latched":
        feed(e, 1, running=False)
        feed(e, 2, running=True)
        return
    feed(e, 1, current=60.0)
    if state == "ack_active":
        e.act("acknowledge", ["pad.w1.current_high.hi"], user="a", roles={"operator"},
              now=at(2))
    elif state == "rtn_unack":
        feed(e, 2, current=40.0)
    elif state == "shelved":
        e.act("shelve", ["pad.w1.current_high.hi"], user="s", roles={"supervisor"},
              until=at(30), reason="checking", now=at(2))
    elif state == "suppressed":
        feed(e, 2, run_cmd=False)
    elif state == "out_of_service":
        e.act("out_of_service", ["pad.w1.current_high.hi"], user="s", roles={"supervisor"},
              now=at(2))


STATES = ["pending", "unack_active", "ack_active", "rtn_unack", "latched", "shelved",
          "suppressed", "out_of_service"]


@pytest.mark.parametrize("state", STATES)
def test_restart_in_each_state_neither_raises_twice_nor_loses_a_return(
        state: str, compiled: Any, db: sa.Engine) -> None:
    first = fresh(compiled, db)
    _to(first, state)
    before = {p: (s.state, s.pending, s.pending_since) for p, s in first.states.items()}
    rows_before = journal(db)
    del first  # the runtime dies; only the database remains

    again = fresh(compiled, db)
    again.load()
    assert {p: (s.state, s.pending, s.pending_since) for p, s in again.states.items()} == before
    # the runtime starts: every tag first reads "not read yet", then the same values again
    current = {**NORMAL, **({"current": 60.0} if state not in ("pending", "latched",
                                                                 "rtn_unack") else {}),
               **({"pip": 90.0} if state == "pending" else {}),
               **({"run_cmd": False} if state == "suppressed" else {})}
    if state == "rtn_unack":
        current["current"] = 40.0
    again.process([S(f"pad.w1.{k}", None, 0, at(3), "not read yet") for k in current], now=at(3))
    assert feed(again, 4, **current) == []  # nothing raised twice
    assert journal(db) == rows_before
    if state == "pending":  # the delay started before the restart keeps its start
        events = again.tick(at(6.5))
        assert [(x["alarm"], x["ts"]) for x in events] == [("pad.w1.pip_low.lo",
                                                             at(6).isoformat())]
    elif state in ("unack_active", "ack_active"):
        expect = "rtn_unack" if state == "unack_active" else "normal"
        assert feed(again, 5, current=40.0) == [("pad.w1.current_high.hi", "clear", expect)]
    elif state == "shelved":
        feed(again, 5, current=40.0)  # cleared while shelved, then the shelve expires
        events = again.tick(at(31))
        assert [(x["action"], x["state"]) for x in events] == [("shelve_expired", "normal")]
    elif state == "suppressed":
        assert feed(again, 5, run_cmd=True) == [("pad.w1.current_high.hi", "unsuppress",
                                                 "unack_active")]
    elif state == "out_of_service":
        r = again.act("in_service", ["pad.w1.current_high.hi"], user="s",
                      roles={"supervisor"}, now=at(5))
        assert r[0]["state"] == "unack_active"
    elif state == "latched":
        r = again.act("reset", ["pad.w1.stopped"], user="a", roles={"operator"}, now=at(5))
        assert r[0]["ok"]
    elif state == "rtn_unack":
        assert feed(again, 5, current=70.0) == [("pad.w1.current_high.hi", "raise",
                                                 "unack_active")]


def test_a_return_to_normal_during_downtime_is_journaled_at_restart(
        compiled: Any, db: sa.Engine) -> None:
    first = fresh(compiled, db)
    _to(first, "unack_active")
    again = fresh(compiled, db)
    assert feed(again, 100, **{**NORMAL, "current": 20.0}) == [
        ("pad.w1.current_high.hi", "clear", "rtn_unack")]
    with db.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(state_table)).scalar_one()
    assert n >= 1


def test_journal_rows_past_the_retention_are_pruned(compiled: Any, db: sa.Engine) -> None:
    e = AlarmEngine(compiled, AlarmStore(db, retention_days=30), timer_period=0)
    feed(e, 0, **NORMAL)
    feed(e, 1, current=60.0)
    assert len(journal(db)) == 1
    assert e.store is not None and e.store.prune(at(1) + dt.timedelta(days=29)) == 0
    assert e.store.prune(at(1) + dt.timedelta(days=31)) == 1
    assert journal(db) == []


def test_the_timers_apply_the_retention_at_start_and_then_periodically(
        compiled: Any, db: sa.Engine) -> None:
    import time

    later = at(1) + dt.timedelta(days=31)
    now = [at(0)]
    e = AlarmEngine(compiled, AlarmStore(db, retention_days=30), clock=lambda: now[0],
                    timer_period=0.02)
    e.prune_every = 0.3
    feed(e, 0, **NORMAL)
    feed(e, 1, current=60.0)  # raised 31 days before "now"
    now[0] = later
    e.process([S("pad.w1.current", 20.0, ts=later)], now=later)  # cleared "now"
    assert [r[3] for r in journal(db)] == ["raise", "clear"]

    def wait(cond: Any) -> None:
        deadline = time.monotonic() + 10
        while not cond():
            assert time.monotonic() < deadline, journal(db)
            time.sleep(0.02)

    e.start_timers()
    try:
        wait(lambda: [r[3] for r in journal(db)] == ["clear"])  # at the first tick
        assert e.pruned == 1
        with db.begin() as conn:  # an old row appears (a clock set right, an import)
            conn.execute(journal_table.insert(), [{
                "ts": at(0), "alarm": "pad.w1.comms", "site": "pad", "priority": "medium",
                "from_state": "normal", "to_state": "unack_active", "action": "raise"}])
        assert len(journal(db)) == 2
        wait(lambda: len(journal(db)) == 1)  # the next application, prune_every later
        assert e.pruned == 2 and [r[3] for r in journal(db)] == ["clear"]
    finally:
        e.stop_timers()


def test_transitions_survive_a_database_outage(compiled: Any, db: sa.Engine) -> None:
    e = fresh(compiled, db)
    feed(e, 0, **NORMAL)
    with db.begin() as conn:  # the journal is away (a real failure of the database)
        conn.exec_driver_sql("ALTER TABLE campo_alarm_journal RENAME TO journal_away")
    assert feed(e, 1, current=60.0) == []  # not stored: not published either
    assert e.states["pad.w1.current_high.hi"].state.value == "unack_active"
    with db.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE journal_away RENAME TO campo_alarm_journal")
    events = e.tick(at(2))  # the next commit stores and publishes what was left
    assert [(x["alarm"], x["action"]) for x in events] == [("pad.w1.current_high.hi", "raise")]
    assert journal(db) == [("pad.w1.current_high.hi", "normal", "unack_active", "raise")]
    again = fresh(compiled, db)
    again.load()
    assert again.states["pad.w1.current_high.hi"].state.value == "unack_active"
