"""Outbox tables: ``campo_notification`` (one row per message and channel) and
``campo_notification_attempt`` (every delivery attempt, its outcome and duration).

Both are platform tables (:mod:`engine.db.platform`), versioned by its revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.db import platform
from engine.db.platform import ID_TYPE as _ID
from engine.db.platform import UTCDateTime

metadata = platform.metadata

notification_table = sa.Table(
    "campo_notification", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("channel", sa.String(63), nullable=False),
    #: alarm, escalation, digest, workflow
    sa.Column("kind", sa.String(20), nullable=False),
    #: the rule (or hook) it is about: the per-rule rate limit counts by it
    sa.Column("rule", sa.String(255), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    #: pending, held (rate limit), sent, dead, digested
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", UTCDateTime(), nullable=False),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    #: one message per event and channel, however often it is enqueued
    sa.Column("dedupe", sa.String(400), nullable=False, unique=True),
    sa.Index("ix_campo_notification_due", "status", "next_at"),
    sa.Index("ix_campo_notification_rule", "channel", "rule", "created_at"),
    sqlite_autoincrement=True,
)

attempt_table = sa.Table(
    "campo_notification_attempt", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("notification_id", _ID, nullable=False, index=True),
    sa.Column("ts", UTCDateTime(), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)


def ensure_notify_tables(engine: Engine) -> None:
    """Bring the platform tables (the outbox among them) up to date."""
    platform.upgrade(engine)
