"""The notification service: routing, rate limits, the outbox, delivery with retries.

Example::

    service = NotificationService(load_notify(root), db, environ=os.environ)
    with db.begin() as conn:
        service.enqueue(conn, alarm_events)        # accepted with the change
    service.start()                                 # the dispatcher thread delivers
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from metamodel.notify import (
    EmailChannel,
    Hook,
    MqttChannel,
    NotifyFile,
    Route,
    WebhookChannel,
    seconds,
)

from .channels import DeliveryError, MqttSender, send_email, send_webhook
from .roster import on_duty
from .tables import attempt_table, ensure_notify_tables, notification_table

log = logging.getLogger(__name__)

#: seconds a dispatcher owns a row it is delivering (another process skips it meanwhile)
LEASE = 60.0
Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _text(event: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and body (Spanish and English) of an alarm event."""
    msg = event.get("message") or {}
    subject = f"[{str(event.get('priority', '')).upper()}] {msg.get('en') or event['alarm']}"
    lines = [msg.get("es", ""), msg.get("en", ""), ""]
    guide = event.get("guidance") or {}
    if guide:
        lines += [f"Guía: {guide.get('es', '')}", f"Guidance: {guide.get('en', '')}", ""]
    for key in ("alarm", "site", "area", "asset", "state", "action", "value", "limit", "ts"):
        if event.get(key) is not None:
            lines.append(f"{key}: {event[key]}")
    return subject[:300], "\n".join(lines)


class NotificationService:
    """Accepts notifications into the outbox and delivers them from a thread."""

    def __init__(self, config: NotifyFile, engine: Engine, *,
                 environ: Mapping[str, str] | None = None, mqtt_url: Any = "",
                 clock: Clock = _utcnow, poll: float = 0.5) -> None:
        self.config = config
        self.engine = engine
        self.environ = dict(environ or {})
        self.mqtt_url = mqtt_url
        self.clock = clock
        self.poll = poll
        self.mqtt = MqttSender()
        #: where escalations look for alarms still unacknowledged (set by the wiring)
        self.active_alarms: Callable[[], list[dict[str, Any]]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_digest = 0.0
        self.delivered = 0
        self.failed_attempts = 0
        ensure_notify_tables(engine)

    # ------------------------------------------------------------------ accepting

    def _routes(self, event: Mapping[str, Any]) -> list[Route]:
        out = []
        for r in self.config.routes.values():
            if event.get("priority") not in r.priorities:
                continue
            if r.areas is not None and event.get("area") not in r.areas:
                continue
            if r.sites is not None and event.get("site") not in r.sites:
                continue
            if event.get("action") not in r.actions:
                continue
            out.append(r)
        return out

    def _people(self, to: list[str], roster: str | None, when: dt.datetime) -> list[str]:
        people = list(to)
        if roster is not None and roster in self.config.rosters:
            people += on_duty(self.config.rosters[roster], when)
        return list(dict.fromkeys(people))

    def enqueue(self, conn: Connection | None, events: Sequence[Mapping[str, Any]]) -> int:
        """Accept the notifications ``events`` cause (on ``conn``'s transaction if given)."""
        rows: list[dict[str, Any]] = []
        now = self.clock()
        for ev in events:
            for route in self._routes(ev):
                people = self._people(route.to, route.roster, now)
                subject, text = _text(ev)
                for ch in route.channels:
                    rows.append(self._row(now, ch, "alarm", ev["alarm"], subject,
                                          {"kind": "alarm", "event": dict(ev), "text": text},
                                          people, f"alarm|{ev['alarm']}|{ev['action']}|"
                                                  f"{ev['ts']}|{ch}"))
        return self._insert(conn, rows)

    def enqueue_workflow(self, conn: Connection | None, entity: str, action: str,
                         record_id: Any, after: Mapping[str, Any] | None,
                         user: str | None) -> int:
        """Accept the notifications of the YAML hooks on ``entity``'s ``action``."""
        rows: list[dict[str, Any]] = []
        now = self.clock()
        for name, hook in self.config.hooks.items():
            if hook.entity != entity or hook.action != action:
                continue
            texts = _hook_texts(hook, entity, action, record_id, after)
            payload = {"kind": "workflow", "hook": name, "entity": entity, "action": action,
                       "record_id": record_id, "user": user, "message": texts,
                       "record": dict(after or {})}
            people = self._people(hook.to, hook.roster, now)
            for ch in hook.channels:
                rows.append(self._row(now, ch, "workflow", f"hook:{name}", texts["en"],
                                      {**payload, "text": f"{texts['es']}\n{texts['en']}"},
                                      people,
                                      f"workflow|{name}|{record_id}|{now.isoformat()}|{ch}"))
        return self._insert(conn, rows)

    def _row(self, now: dt.datetime, channel: str, kind: str, rule: str, subject: str,
             payload: dict[str, Any], people: list[str], dedupe: str) -> dict[str, Any]:
        return {"created_at": now, "channel": channel, "kind": kind, "rule": rule,
                "subject": subject[:300], "payload": payload, "recipients": people,
                "status": "pending", "attempts": 0, "next_at": now, "dedupe": dedupe[:400]}

    def _insert(self, conn: Connection | None, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        if conn is None:
            with self.engine.begin() as own:
                return self._insert(own, rows)
        t = notification_table
        existing = set(conn.execute(sa.select(t.c.dedupe).where(
            t.c.dedupe.in_([r["dedupe"] for r in rows]))).scalars())
        fresh = [r for r in rows if r["dedupe"] not in existing]
        for r in fresh:  # one by one: each counts against the limits of the next
            r["status"] = self._limited(conn, r)
            conn.execute(t.insert(), [r])
        return len(fresh)

    def _limited(self, conn: Connection, row: Mapping[str, Any]) -> str:
        """``held`` when the rule's or the channel's limit is reached, else ``pending``."""
        limits = self.config.limits
        if limits is None or row["kind"] == "digest":
            return "pending"
        t = notification_table
        counted = t.c.status.in_(("pending", "sent", "dead"))
        for limit, extra in ((limits.per_rule, t.c.rule == row["rule"]),
                             (limits.per_channel, sa.true())):
            if limit is None:
                continue
            since = row["created_at"] - dt.timedelta(seconds=seconds(limit.per))
            n = conn.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.channel == row["channel"], t.c.created_at >= since, counted,
                extra)).scalar_one()
            if n >= limit.count:
                return "held"
        return "pending"

    # ------------------------------------------------------------------ escalation

    def escalate(self, active: Iterable[Mapping[str, Any]]) -> int:
        """Accept escalations of alarms unacknowledged past their route's ``after``."""
        now = self.clock()
        rows: list[dict[str, Any]] = []
        for ev in active:
            if ev.get("state") != "unack_active" or not ev.get("raised_at"):
                continue
            raised = dt.datetime.fromisoformat(ev["raised_at"])
            for name, route in self.config.routes.items():
                esc = route.escalate
                if esc is None or ev.get("priority") not in route.priorities or (
                        route.areas is not None and ev.get("area") not in route.areas):
                    continue
                if now < raised + dt.timedelta(seconds=seconds(esc.after)):
                    continue
                subject, text = _text(ev)
                people = self._people(esc.to, esc.roster, now)
                for ch in esc.channels:
                    rows.append(self._row(
                        now, ch, "escalation", ev["alarm"], "[ESCALATION] " + subject,
                        {"kind": "escalation", "route": name, "event": dict(ev),
                         "unacknowledged_for_s": (now - raised).total_seconds(), "text": text},
                        people, f"esc|{ev['alarm']}|{ev['raised_at']}|{name}|{ch}"))
        return self._insert(None, rows)

    # ------------------------------------------------------------------ delivery

    def start(self) -> None:
        """Start the dispatcher thread."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._main, daemon=True,
                                            name="campo-notify")
            self._thread.start()

    def stop(self) -> None:
        """Stop the dispatcher (rows not delivered stay in the outbox)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.mqtt.close()

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                if self.active_alarms is not None:
                    self.escalate(self.active_alarms())
                self.send_digests()
                busy = self.deliver_due()
            except Exception:  # the database may be away; try again at the next poll
                log.exception("notification dispatcher failed")
                busy = 0
            if not busy:
                self._stop.wait(self.poll)

    def deliver_due(self, limit: int = 50) -> int:
        """Deliver the rows that are due; return how many were tried."""
        now = self.clock()
        t = notification_table
        with self.engine.connect() as conn:
            due = conn.execute(sa.select(t).where(t.c.status == "pending", t.c.next_at <= now)
                               .order_by(t.c.next_at, t.c.id).limit(limit)).mappings().all()
        tried = 0
        for row in due:
            with self.engine.begin() as conn:  # claim it for a lease (one dispatcher wins)
                got = conn.execute(t.update().where(
                    t.c.id == row["id"], t.c.status == "pending",
                    t.c.next_at == row["next_at"]).values(
                    next_at=now + dt.timedelta(seconds=LEASE))).rowcount
            if not got:
                continue
            tried += 1
            self._deliver(row)
        return tried

    def _deliver(self, row: Mapping[Any, Any]) -> None:
        start = time.monotonic()
        error: str | None = None
        try:
            self._send(row)
        except DeliveryError as exc:
            error = str(exc)[:500]
        except Exception as exc:  # a channel's bug is a failed attempt, not a dead thread
            error = f"{type(exc).__name__}: {exc}"[:500]
        ms = (time.monotonic() - start) * 1000
        now = self.clock()
        t = notification_table
        attempts = row["attempts"] + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error}
        if error is None:
            values.update(status="sent", sent_at=now)
            self.delivered += 1
        elif attempts >= self.config.max_attempts:
            values.update(status="dead")
            log.error("notification %s on %s given up after %d attempts: %s", row["id"],
                      row["channel"], attempts, error)
        else:
            base, top = seconds(self.config.retry_base), seconds(self.config.retry_max)
            wait = min(top, base * 2 ** (attempts - 1)) * random.uniform(0.8, 1.2)  # noqa: S311
            values.update(next_at=now + dt.timedelta(seconds=wait))
            self.failed_attempts += 1
            if attempts == 1:
                log.warning("notification %s on %s failed (retrying): %s", row["id"],
                            row["channel"], error)
        with self.engine.begin() as conn:
            conn.execute(attempt_table.insert().values(
                notification_id=row["id"], ts=now, ok=error is None, error=error,
                duration_ms=ms))
            conn.execute(t.update().where(t.c.id == row["id"]).values(**values))

    def _send(self, row: Mapping[Any, Any]) -> None:
        ch = self.config.channels.get(row["channel"])
        if ch is None:
            raise DeliveryError(f"channel '{row['channel']}' is no longer configured")
        payload = dict(row["payload"])
        if isinstance(ch, WebhookChannel):
            send_webhook(ch, row["id"], {**payload, "id": row["id"]}, self.environ)
        elif isinstance(ch, EmailChannel):
            to = list(dict.fromkeys([*ch.to, *row["recipients"]]))
            send_email(ch, row["subject"], str(payload.get("text", "")), to, self.environ)
        elif isinstance(ch, MqttChannel):
            ev = payload.get("event") or {}
            topic = ch.topic.format_map(_Blank(site=ev.get("site", ""),
                                               priority=ev.get("priority", ""),
                                               alarm=ev.get("alarm", ""), kind=row["kind"]))
            url = ch.broker or self.mqtt_url
            if not url:
                raise DeliveryError("no MQTT broker: give 'broker' or set CAMPO_MQTT_URL")
            self.mqtt.send(ch, url, topic, {**payload, "id": row["id"]})

    # ------------------------------------------------------------------ digests

    def send_digests(self, force: bool = False) -> int:
        """One digest per channel of what the rate limits held back (every digest_every)."""
        limits = self.config.limits
        if limits is None:
            return 0
        every = seconds(limits.digest_every)
        if not force and time.monotonic() - self._last_digest < every:
            return 0
        self._last_digest = time.monotonic()
        t = notification_table
        now = self.clock()
        made = 0
        with self.engine.begin() as conn:
            held = conn.execute(sa.select(t.c.id, t.c.channel, t.c.rule, t.c.subject,
                                          t.c.created_at, t.c.recipients)
                                .where(t.c.status == "held").order_by(t.c.id)).mappings().all()
            by_channel: dict[str, list[Mapping[Any, Any]]] = {}
            for r in held:
                by_channel.setdefault(r["channel"], []).append(r)
            for ch, items in by_channel.items():
                lines = [f"{r['created_at'].isoformat()} {r['subject']}" for r in items]
                people = list(dict.fromkeys(p for r in items for p in r["recipients"]))
                text = (f"{len(items)} notificaciones retenidas por el límite / "
                        f"{len(items)} notifications held back by the rate limit:\n"
                        + "\n".join(lines))
                conn.execute(t.insert().values(self._row(
                    now, ch, "digest", "digest", f"[DIGEST] {len(items)} notifications held",
                    {"kind": "digest", "count": len(items), "items": lines, "text": text},
                    people, f"digest|{ch}|{items[-1]['id']}")))
                conn.execute(t.update().where(t.c.id.in_([r["id"] for r in items]))
                             .values(status="digested"))
                made += 1
        return made


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _hook_texts(hook: Hook, entity: str, action: str, record_id: Any,
                after: Mapping[str, Any] | None) -> dict[str, str]:
    from metamodel.spec import labels_of

    default = f"{entity} {record_id}: {action}"
    labels = labels_of(hook.message, default) if hook.message is not None else None
    fields = _Blank({**{k: v for k, v in (after or {}).items()}, "record": record_id,
                     "entity": entity, "action": action})
    out = {}
    for lang in ("es", "en"):
        text = labels.get(lang) if labels is not None else default
        try:
            out[lang] = text.format_map(fields)
        except (ValueError, IndexError, AttributeError):
            out[lang] = text
    return out


__all__ = ["NotificationService"]
