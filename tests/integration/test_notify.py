"""The notification service against real receivers: a local HTTP server (webhook, HMAC), a
local aiosmtpd server (STARTTLS + AUTH), Mosquitto (MQTT); outbox retries across an outage
(delivered once, every attempt recorded), rate limits with a digest, rosters, escalation."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from test_notify_support import Receiver, free_port, smtp_server  # noqa: F401 (fixture)

from engine.notify import NotificationService
from engine.notify.roster import on_duty
from engine.notify.tables import attempt_table, notification_table
from metamodel.notify import load_notify

pytestmark = pytest.mark.integration
SECRET = "s3cret-for-tests"


def config(root: Path, text: str) -> Any:
    (root / "notify").mkdir(parents=True, exist_ok=True)
    (root / "notify" / "notify.yaml").write_text(text)
    return load_notify(root)


def event(alarm: str = "pad.w1.pip_low.lo", action: str = "raise", ts: float = 0,
          priority: str = "high", state: str = "unack_active") -> dict[str, Any]:
    t = (dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=ts)).isoformat()
    return {"alarm": alarm, "action": action, "ts": t, "priority": priority, "site": "pad",
            "area": "production", "state": state, "raised_at": t, "value": 90.0,
            "limit": 100.0, "message": {"es": "PIP baja 90 psi", "en": "Low PIP 90 psi"},
            "guidance": {"es": "Bajar frecuencia", "en": "Lower the frequency"}}


def wait_for(cond: Any, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def rows(db: sa.Engine, table: sa.Table = notification_table) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_webhook_signed_and_delivered_once_across_an_outage(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    cfg = config(tmp_path, f"""
channels:
  hook: {{type: webhook, url: 'http://127.0.0.1:{port}/alarms', secret_env: HOOK_SECRET,
          timeout: 1s}}
routes:
  all: {{channels: [hook]}}
retry_base: 0.2
retry_max: 0.5
""")
    db = sa.create_engine(db_url)
    svc = NotificationService(cfg, db, environ={"HOOK_SECRET": SECRET}, poll=0.05)
    assert svc.enqueue(None, [event()]) == 1
    assert svc.enqueue(None, [event()]) == 0  # the same event again: accepted once
    svc.start()
    try:
        wait_for(lambda: rows(db)[0]["attempts"] >= 2)  # the receiver is down
        receiver = Receiver(port)
        receiver.start()
        wait_for(lambda: rows(db)[0]["status"] == "sent")
        time.sleep(0.5)
    finally:
        svc.stop()
    receiver.stop()
    assert len(receiver.got) == 1
    headers, body = receiver.got[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Campo-Signature"] == expected
    payload = json.loads(body)
    assert payload["event"]["alarm"] == "pad.w1.pip_low.lo" and payload["kind"] == "alarm"
    attempts = rows(db, attempt_table)
    assert [a["ok"] for a in attempts][-1] is True and len(attempts) >= 3
    assert all(a["error"] for a in attempts[:-1]) and "refused" in attempts[0]["error"].lower()
    db.dispose()


def test_email_with_starttls_and_login(tmp_path: Path, sqlite_url: str,
                                       smtp_server: tuple[int, list[Any], Path]  # noqa: F811
                                       ) -> None:
    port, received, crt = smtp_server
    cfg = config(tmp_path, f"""
channels:
  mail: {{type: email, host: 127.0.0.1, port: {port}, username: alarms,
          password_env: SMTP_PW, from: campo@pad.example, to: [sala@pad.example],
          cafile: '{crt}', timeout: 2s}}
routes:
  high: {{priorities: [critical, high], channels: [mail], to: [jefe@pad.example]}}
""")
    db = sa.create_engine(sqlite_url)
    svc = NotificationService(cfg, db, environ={"SMTP_PW": "pw-smtp"})
    svc.enqueue(None, [event(priority="high"), event("pad.w1.x", priority="low")])
    assert svc.deliver_due() == 1
    assert rows(db)[0]["status"] == "sent"
    (authenticated, rcpt, content), = received
    assert authenticated and sorted(rcpt) == ["jefe@pad.example", "sala@pad.example"]
    assert "Subject: [HIGH] Low PIP 90 psi" in content and "PIP baja 90 psi" in content
    # a wrong password is a failed attempt, retried later
    svc.environ["SMTP_PW"] = "wrong"
    svc.enqueue(None, [event(ts=60)])
    svc.deliver_due()
    last = rows(db)[-1]
    assert last["status"] == "pending" and last["attempts"] == 1 and last["last_error"]
    assert len(received) == 1
    db.dispose()


def test_mqtt_channel(tmp_path: Path, sqlite_url: str, mqtt_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    cfg = config(tmp_path, f"""
channels:
  room: {{type: mqtt, topic: '{prefix}/alarms/{{site}}/{{priority}}'}}
routes:
  all: {{channels: [room]}}
""")
    got: list[Any] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    host, port = mqtt_url.split("//")[1].split(":")
    sub.connect(host, int(port))
    sub.subscribe(f"{prefix}/#", 1)
    sub.loop_start()
    db = sa.create_engine(sqlite_url)
    svc = NotificationService(cfg, db, mqtt_url=mqtt_url)
    svc.enqueue(None, [event()])
    svc.start()
    wait_for(lambda: rows(db)[0]["status"] == "sent")
    wait_for(lambda: got)
    svc.stop()
    sub.loop_stop()
    sub.disconnect()
    assert got[0][0] == f"{prefix}/alarms/pad/high"
    assert got[0][1]["event"]["alarm"] == "pad.w1.pip_low.lo"


def test_rate_limits_hold_back_and_digest(tmp_path: Path, sqlite_url: str) -> None:
    port = free_port()
    receiver = Receiver(port)
    receiver.start()
    cfg = config(tmp_path, f"""
channels:
  hook: {{type: webhook, url: 'http://127.0.0.1:{port}/h'}}
routes:
  all: {{channels: [hook], actions: [raise]}}
limits:
  per_rule: {{count: 2, per: 10m}}
  per_channel: {{count: 3, per: 10m}}
  digest_every: 10m
""")
    db = sa.create_engine(sqlite_url)
    svc = NotificationService(cfg, db)
    for i in range(4):  # one rule chattering
        svc.enqueue(None, [event(ts=i)])
    svc.enqueue(None, [event("pad.w2.pip_low.lo", ts=10), event("pad.w3.pip_low.lo", ts=11)])
    status = [r["status"] for r in rows(db)]
    assert status == ["pending", "pending", "held", "held", "pending", "held"]
    assert svc.send_digests(force=True) == 1
    while svc.deliver_due():
        pass
    receiver.stop()
    bodies = [json.loads(b) for _, b in receiver.got]
    assert [b["kind"] for b in bodies] == ["alarm", "alarm", "alarm", "digest"]
    assert bodies[-1]["count"] == 3
    assert [r["status"] for r in rows(db)][:6] == ["sent", "sent", "digested", "digested",
                                                  "sent", "digested"]


def test_roster_and_escalation(tmp_path: Path, sqlite_url: str) -> None:
    cfg = config(tmp_path, """
channels:
  hook: {type: webhook, url: 'http://127.0.0.1:9/x'}
rosters:
  ops:
    timezone: America/Argentina/Buenos_Aires
    shifts: {day: {start: '07:00', end: '19:00'}, night: {start: '19:00', end: '07:00'}}
    rotation:
      start: 2026-03-01
      days: 14
      crews:
        - {day: [ana@x.example], night: [beto@x.example]}
        - {day: [carla@x.example], night: [dario@x.example]}
routes:
  high:
    priorities: [high]
    channels: [hook]
    roster: ops
    escalate: {after: 15m, channels: [hook], to: [jefe@x.example]}
""")
    ops = cfg.rosters["ops"]
    utc = dt.UTC
    assert on_duty(ops, dt.datetime(2026, 3, 2, 12, 0, tzinfo=utc)) == ["ana@x.example"]
    assert on_duty(ops, dt.datetime(2026, 3, 3, 9, 0, tzinfo=utc)) == ["beto@x.example"]  # 06 local
    assert on_duty(ops, dt.datetime(2026, 3, 16, 12, 0, tzinfo=utc)) == ["carla@x.example"]
    db = sa.create_engine(sqlite_url)
    now = [dt.datetime(2026, 3, 1, 0, 10, tzinfo=utc)]
    svc = NotificationService(cfg, db, clock=lambda: now[0])
    ev = event(ts=0)
    assert svc.escalate([ev]) == 0
    now[0] = dt.datetime(2026, 3, 1, 0, 16, tzinfo=utc)
    assert svc.escalate([ev]) == 1
    assert svc.escalate([ev]) == 0  # once per raise
    assert svc.escalate([{**ev, "state": "ack_active"}]) == 0
    esc = rows(db)[-1]
    assert esc["kind"] == "escalation" and esc["recipients"] == ["jefe@x.example"]


def test_unknown_channel_in_a_route_is_located(tmp_path: Path) -> None:
    from metamodel import DefinitionError

    with pytest.raises(DefinitionError) as info:
        config(tmp_path, "channels:\n  hook: {type: webhook, url: 'http://h/x'}\n"
                         "routes:\n  all: {channels: [hok]}\n")
    assert info.value.format() == (
        "notify/notify.yaml:4:20: routes.all.channels[0]: unknown channel 'hok'\n"
        "  hint: expected one of hook; did you mean 'hook'?")
