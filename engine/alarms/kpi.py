"""Alarm-system performance after ISA-18.2 (and EEMUA 191), each figure beside its target.

:func:`kpis` takes the annunciations of a period (raise and re-alarm journal entries: alarm,
time, priority) and the current states, and computes: alarms per operator per 10 minutes
and per hour, the share of 10-minute periods in flood (more than 10 alarms), the ten most
frequent alarms and their share, chattering alarms (3 or more in one minute), stale alarms
(active for more than 24 hours), shelved and out-of-service counts and the priority
distribution. ``GET /api/alarms/kpi`` and ``campo alarms replay`` print the same figures.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: ISA-18.2 targets ("very likely to be acceptable" / "maximum manageable")
TARGETS: dict[str, Any] = {
    "per_operator_per_10min": {"acceptable": 1, "maximum": 2},
    "per_operator_per_hour": {"acceptable": 6, "maximum": 12},
    "flood_percent": {"maximum": 1.0},
    "top10_percent": {"maximum": 5.0},
    "chattering": {"maximum": 0},
    "stale": {"maximum": 5},
    "priority_percent": {"critical": 1.0, "high": 5.0, "medium": 15.0, "low": 80.0},
}
FLOOD = 10
CHATTER = 3


@dataclass(frozen=True, slots=True)
class Annunciation:
    """One alarm shown to the operator (a raise or a re-alarm)."""

    alarm: str
    ts: dt.datetime
    priority: str


def kpis(events: Sequence[Annunciation], start: dt.datetime, end: dt.datetime, *,
         operators: int = 1, states: Iterable[Mapping[str, Any]] = (),
         now: dt.datetime | None = None) -> dict[str, Any]:
    """The KPIs of ``events`` between ``start`` and ``end`` (``states``: current states)."""
    span = max((end - start).total_seconds(), 1.0)
    n = len(events)
    periods = max(1, int(-(-span // 600)))
    buckets = collections.Counter(int((e.ts - start).total_seconds() // 600) for e in events)
    flood = sum(1 for c in buckets.values() if c > FLOOD)
    per_alarm = collections.Counter(e.alarm for e in events)
    top = per_alarm.most_common(10)
    chattering = sorted(_chattering(events))
    prio = collections.Counter(e.priority for e in events)
    now = now or end
    stale = shelved = oos = 0
    for s in states:
        st = s.get("state")
        if st == "shelved":
            shelved += 1
        elif st == "out_of_service":
            oos += 1
        elif st in ("unack_active", "ack_active") and s.get("raised_at"):
            raised = s["raised_at"]
            if isinstance(raised, str):
                raised = dt.datetime.fromisoformat(raised)
            if (now - raised).total_seconds() > 86400:
                stale += 1
    ops = max(operators, 1)
    return {
        "from": start.isoformat(), "to": end.isoformat(), "operators": ops,
        "alarms": n,
        "per_operator_per_10min": round(n / periods / ops, 3),
        "per_operator_per_hour": round(n / (span / 3600) / ops, 3),
        "peak_per_10min": max(buckets.values(), default=0),
        "flood_percent": round(100 * flood / periods, 2),
        "flood_periods": flood,
        "top10": [{"alarm": a, "count": c} for a, c in top],
        "top10_percent": round(100 * sum(c for _, c in top) / n, 2) if n else 0.0,
        "chattering": chattering,
        "stale": stale, "shelved": shelved, "out_of_service": oos,
        "priority_percent": {p: round(100 * prio[p] / n, 2) if n else 0.0
                             for p in ("critical", "high", "medium", "low")},
        "targets": TARGETS,
    }


def _chattering(events: Sequence[Annunciation]) -> set[str]:
    by_alarm: dict[str, list[float]] = collections.defaultdict(list)
    for e in events:
        by_alarm[e.alarm].append(e.ts.timestamp())
    out = set()
    for alarm, times in by_alarm.items():
        times.sort()
        for i in range(len(times) - CHATTER + 1):
            if times[i + CHATTER - 1] - times[i] <= 60:
                out.add(alarm)
                break
    return out


def format_kpis(k: Mapping[str, Any]) -> str:
    """A short text table of the KPIs beside their targets (``campo alarms replay``)."""
    t = k["targets"]
    per10, perh = t["per_operator_per_10min"], t["per_operator_per_hour"]
    rows = [
        ("alarms", str(k["alarms"]), ""),
        ("operators on duty", str(k["operators"]), ""),
        ("per operator per 10 min", f"{k['per_operator_per_10min']:g}",
         f"~{per10['acceptable']} (max {per10['maximum']})"),
        ("per operator per hour", f"{k['per_operator_per_hour']:g}",
         f"~{perh['acceptable']} (max {perh['maximum']})"),
        ("10-min periods in flood", f"{k['flood_percent']:g}%",
         f"< {t['flood_percent']['maximum']:g}%"),
        ("top 10 share", f"{k['top10_percent']:g}%", f"< {t['top10_percent']['maximum']:g}%"),
        ("chattering alarms", str(len(k["chattering"])), "0"),
        ("stale (> 24 h)", str(k["stale"]), f"< {t['stale']['maximum']}"),
        ("shelved / out of service", f"{k['shelved']} / {k['out_of_service']}", ""),
        ("priority mix", " ".join(f"{p} {v:g}%" for p, v in k["priority_percent"].items()),
         " ".join(f"{p} {v:g}%" for p, v in t["priority_percent"].items())),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'KPI'.ljust(width)}  value  (ISA-18.2 target)"]
    lines += [f"{a.ljust(width)}  {b}  {('(' + c + ')') if c else ''}".rstrip() for a, b, c in rows]
    lines += ["top 10: " + ", ".join(f"{x['alarm']} {x['count']}" for x in k["top10"])]
    return "\n".join(lines)


__all__ = ["TARGETS", "Annunciation", "format_kpis", "kpis"]
