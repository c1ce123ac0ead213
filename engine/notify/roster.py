"""Who is on duty: a roster's daily shifts and rotating crews (``notify/*.yaml``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from metamodel.notify import Roster


def _minutes(clock: str) -> int:
    h, m = clock.split(":")
    return int(h) * 60 + int(m)


def on_duty(roster: Roster, when: dt.datetime) -> list[str]:
    """The people of the crew whose shift covers ``when`` (a shift past midnight belongs to
    the day it started)."""
    local = when.astimezone(ZoneInfo(roster.timezone))
    now = local.hour * 60 + local.minute
    rot = roster.rotation
    for name, span in roster.shifts.items():
        start, end = _minutes(span["start"]), _minutes(span["end"])
        if start <= end:
            inside, day = start <= now < end, local.date()
        else:  # overnight
            inside = now >= start or now < end
            day = local.date() if now >= start else local.date() - dt.timedelta(days=1)
        if not inside:
            continue
        block = (day - rot.start).days // rot.days
        crew = rot.crews[block % len(rot.crews)]
        return list(crew.get(name, []))
    return []
