"""Alarm tables: the state of every alarm (with its pending timers) and the journal.

``campo_alarm_state`` holds one row per alarm that ever left the pristine normal state: its
state, the process condition before and after delays, a pending delay and when it started,
shelve and out-of-service details, the last value and limit. ``campo_alarm_journal`` holds
every transition (alarm, from, to, action, value, limit, time, user, comment, and the
alarm's site, area and priority for the list filters and KPIs). The engine writes both in
one transaction per batch, so a restart finds exactly the state the journal ends in.

Both are platform tables (:mod:`engine.db.platform`), versioned by its revisions and brought
up to date at start (:func:`ensure_alarm_tables`, ``campo migrate``, ``campo serve``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.db import platform
from engine.db.platform import ID_TYPE, UTCDateTime

from .state import AlarmState, State, Transition

metadata = platform.metadata

state_table = sa.Table(
    "campo_alarm_state", metadata,
    sa.Column("alarm", sa.String(255), primary_key=True),
    sa.Column("site", sa.String(63), nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("raw", sa.Boolean, nullable=False),
    sa.Column("pending", sa.String(3), nullable=True),
    sa.Column("pending_since", UTCDateTime(), nullable=True),
    sa.Column("acked", sa.Boolean, nullable=False),
    sa.Column("since", UTCDateTime(), nullable=True),
    sa.Column("raised_at", UTCDateTime(), nullable=True),
    sa.Column("shelved_until", UTCDateTime(), nullable=True),
    sa.Column("shelve_reason", sa.String(500), nullable=True),
    sa.Column("shelved_by", sa.String(150), nullable=True),
    sa.Column("suppressed", sa.Boolean, nullable=False),
    sa.Column("oos_by", sa.String(150), nullable=True),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("limit_value", sa.Float, nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

journal_table = sa.Table(
    "campo_alarm_journal", metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("ts", UTCDateTime(), nullable=False, index=True),
    sa.Column("alarm", sa.String(255), nullable=False, index=True),
    sa.Column("site", sa.String(63), nullable=False),
    sa.Column("area", sa.String(63), nullable=True),
    sa.Column("priority", sa.String(10), nullable=False),
    sa.Column("from_state", sa.String(20), nullable=False),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("limit_value", sa.Float, nullable=True),
    sa.Column("username", sa.String(150), nullable=True),
    sa.Column("comment", sa.String(1000), nullable=True),
    sa.Index("ix_campo_alarm_journal_site_ts", "site", "ts"),
    sqlite_autoincrement=True,
)

_STATE_COLS = ("state", "active", "raw", "pending", "pending_since", "acked", "since",
               "raised_at", "shelved_until", "shelve_reason", "shelved_by", "suppressed",
               "oos_by")


def ensure_alarm_tables(engine: Engine) -> None:
    """Bring the platform tables (the alarm tables among them) up to date."""
    platform.upgrade(engine)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def state_row(st: AlarmState, site: str, now: dt.datetime) -> dict[str, Any]:
    """The table row of ``st``."""
    row = {c: getattr(st, c) for c in _STATE_COLS}
    row["state"] = st.state.value
    row.update(alarm=st.alarm, site=site, value=_dump(st.value), limit_value=st.limit,
               updated_at=now)
    return row


def from_row(row: Mapping[Any, Any]) -> AlarmState:
    """An :class:`AlarmState` restored from its row (not fresh: delays wait for a value)."""
    st = AlarmState(row["alarm"])
    for c in _STATE_COLS:
        setattr(st, c, row[c])
    st.state = State(row["state"])
    st.value = _load(row["value"])
    st.limit = row["limit_value"]
    st.fresh = False
    return st


class AlarmStore:
    """Reads and writes the alarm tables of one database."""

    def __init__(self, engine: Engine, retention_days: float = 365.0) -> None:
        self.engine = engine
        self.retention_days = retention_days

    def load(self) -> dict[str, AlarmState]:
        """Every stored alarm state, by alarm path."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(state_table)).mappings().all()
        return {r["alarm"]: from_row(r) for r in rows}

    def save(self, conn: Connection, states: Iterable[tuple[AlarmState, str]],
             transitions: Sequence[tuple[Transition, Mapping[str, Any]]],
             now: dt.datetime) -> None:
        """Upsert changed states and append transitions, on the caller's transaction."""
        rows = [state_row(st, site, now) for st, site in states]
        if rows:
            keys = [r["alarm"] for r in rows]
            existing = set(conn.execute(sa.select(state_table.c.alarm).where(
                state_table.c.alarm.in_(keys))).scalars())
            updates = [r for r in rows if r["alarm"] in existing]
            inserts = [r for r in rows if r["alarm"] not in existing]
            if inserts:
                conn.execute(state_table.insert(), inserts)
            if updates:
                conn.execute(state_table.update().where(
                    state_table.c.alarm == sa.bindparam("b_alarm")).values(
                    {c: sa.bindparam(c) for c in updates[0] if c != "alarm"}),
                    [{**r, "b_alarm": r["alarm"]} for r in updates])
        if transitions:
            conn.execute(journal_table.insert(), [journal_row(t, meta) for t, meta in transitions])

    def prune(self, now: dt.datetime) -> int:
        """Delete journal rows older than the retention; return how many."""
        cutoff = now - dt.timedelta(days=self.retention_days)
        with self.engine.begin() as conn:
            return conn.execute(journal_table.delete().where(journal_table.c.ts < cutoff)).rowcount


def journal_row(t: Transition, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The journal row of a transition (``meta``: the alarm's site, area, priority)."""
    return {"ts": t.ts, "alarm": t.alarm, "site": meta["site"], "area": meta.get("area"),
            "priority": meta["priority"], "from_state": t.from_state.value,
            "to_state": t.to_state.value, "action": t.action, "value": _dump(t.value),
            "limit_value": t.limit, "username": t.user,
            "comment": None if t.comment is None else t.comment[:1000]}


def journal_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A journal row as the API shows it."""
    return {"id": row["id"], "ts": row["ts"].isoformat(), "alarm": row["alarm"],
            "site": row["site"], "area": row["area"], "priority": row["priority"],
            "from": row["from_state"], "to": row["to_state"], "action": row["action"],
            "value": _load(row["value"]), "limit": row["limit_value"],
            "user": row["username"], "comment": row["comment"]}


def state_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A state row as the API shows it (without the rule's texts)."""
    def iso(v: dt.datetime | None) -> str | None:
        return None if v is None else v.isoformat()
    return {"alarm": row["alarm"], "site": row["site"], "state": row["state"],
            "active": row["active"], "acked": row["state"] not in (
                State.UNACK.value, State.RTN_UNACK.value) and bool(row["acked"]),
            "since": iso(row["since"]), "raised_at": iso(row["raised_at"]),
            "value": _load(row["value"]), "limit": row["limit_value"],
            "shelved_until": iso(row["shelved_until"]), "shelve_reason": row["shelve_reason"],
            "shelved_by": row["shelved_by"], "out_of_service_by": row["oos_by"]}


__all__ = ["AlarmStore", "ensure_alarm_tables", "from_row", "journal_json", "journal_row",
           "journal_table", "metadata", "state_json", "state_row", "state_table"]
