"""Rate-of-change alarms in the engine (in memory): the change within the last ``per`` from
the value held then, undetermined until the window reaches back that far, and re-evaluated by
the timers when the window moves past a change (a steady tag sends no sample)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.alarms.compile import compile_alarms
from engine.alarms.engine import AlarmEngine
from metamodel.tags import load_tags

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
TEMPLATE = """template: pump
scan_class: fast
tags:
  pip: {address: hr:40001, type: float32, unit: psi, range: [0, 3000]}
alarms:
  falling:
    tag: pip
    rate: {limit: 100, per: 1m, direction: fall}
    priority: medium
  moving:
    tag: pip
    rate: {limit: 100, per: 1m}
    priority: low
  rising:
    tag: pip
    rate: {limit: 100, per: 1m, direction: rise}
    priority: low
"""


@dataclass
class S:
    tag: str
    value: Any
    ts: dt.datetime
    quality: int = 2
    reason: str | None = None


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


@pytest.fixture
def engine(project: Any) -> AlarmEngine:
    root: Path = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/templates/pump.yaml": TEMPLATE,
        "tags/sites/pad.yaml": "site: pad\ndevices:\n  plc: {type: modbus_tcp, host: h}\n"
                               "instances:\n  w1: {template: pump, device: plc, unit_id: 1}\n",
    })
    e = AlarmEngine(compile_alarms(load_tags(root)), None, clock=lambda: T0, timer_period=0)
    e.load()
    return e


def pip(e: AlarmEngine, s: float, value: float) -> list[tuple[str, str, float]]:
    return [(x["alarm"].rsplit(".", 1)[1], x["action"], (dt.datetime.fromisoformat(x["ts"])
                                                         - T0).total_seconds())
            for x in e.process([S("pad.w1.pip", value, at(s))], now=at(s))]


def tick(e: AlarmEngine, s: float) -> list[tuple[str, str, float]]:
    return [(x["alarm"].rsplit(".", 1)[1], x["action"], (dt.datetime.fromisoformat(x["ts"])
                                                         - T0).total_seconds())
            for x in e.tick(at(s))]


def state(e: AlarmEngine, name: str) -> str:
    return e.states[f"pad.w1.{name}"].state.value


def test_a_step_after_a_steady_hour_is_a_fast_change(engine: AlarmEngine) -> None:
    assert pip(engine, 0, 800.0) == []
    assert pip(engine, 3600, 800.0) == []
    assert sorted(pip(engine, 3605, 650.0)) == [("falling", "raise", 3605.0),
                                                ("moving", "raise", 3605.0)]
    assert state(engine, "rising") == "normal"


def test_undetermined_until_the_window_is_seen_unless_the_change_already_passes(
        engine: AlarmEngine) -> None:
    assert pip(engine, 0, 800.0) == []
    assert pip(engine, 1, 797.0) == []      # 3 psi in 1 s is not 180 psi/min
    assert pip(engine, 20, 760.0) == []     # 40 psi in 20 s: not yet a minute seen
    assert engine.states["pad.w1.falling"].raw is False  # never judged: the initial value
    assert sorted(pip(engine, 30, 690.0)) == [("falling", "raise", 30.0),
                                              ("moving", "raise", 30.0)]  # 110 psi in 30 s


def test_a_steady_tag_returns_to_normal_by_time_alone(engine: AlarmEngine) -> None:
    pip(engine, 0, 800.0)
    pip(engine, 60, 800.0)
    assert sorted(pip(engine, 70, 600.0)) == [("falling", "raise", 70.0),
                                              ("moving", "raise", 70.0)]
    # no sample after 70 s: a minute later the value held a minute ago is 600 too
    assert tick(engine, 120) == []          # window from 60 s: still 800 -> 600
    assert tick(engine, 129.9) == []
    assert sorted(tick(engine, 130)) == [("falling", "clear", 130.0),
                                         ("moving", "clear", 130.0)]
    assert state(engine, "falling") == "rtn_unack" and tick(engine, 1000) == []


def test_seeded_windows_clear_a_stored_rate_alarm_by_time(project: Any) -> None:
    """At start the windows come from history; a steady tag then clears with the timers."""
    root: Path = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/templates/pump.yaml": TEMPLATE,
        "tags/sites/pad.yaml": "site: pad\ndevices:\n  plc: {type: modbus_tcp, host: h}\n"
                               "instances:\n  w1: {template: pump, device: plc, unit_id: 1}\n",
    })
    stored = [S("pad.w1.pip", 800.0, at(40)), S("pad.w1.pip", 600.0, at(70))]

    class Stored:
        def samples(self, tags: Any, start: dt.datetime, end: dt.datetime) -> list[S]:
            assert tags == ["pad.w1.pip"] and end - start == dt.timedelta(minutes=1)
            return stored

    e = AlarmEngine(compile_alarms(load_tags(root)), None, clock=lambda: at(80),
                    timer_period=0, history=Stored)
    e.load()
    assert sorted(pip(e, 85, 600.0)) == [("falling", "raise", 85.0), ("moving", "raise", 85.0)]
    assert tick(e, 129) == []
    assert sorted(tick(e, 130)) == [("falling", "clear", 130.0), ("moving", "clear", 130.0)]
