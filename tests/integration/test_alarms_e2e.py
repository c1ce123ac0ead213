"""Alarms end to end from the simulator: a trip injected on well 1 raises
``sim_pad.w1.esp_stopped``, pushed on the WebSocket and on MQTT (retained active set), a
webhook and an email delivered once although the webhook receiver was down for a while, an
acknowledgement through the API with its audit row, then the return to normal (latched,
reset through the API)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from test_notify_support import Receiver, free_port, smtp_server  # noqa: F401 (fixture)
from werkzeug.serving import make_server
from wsclient import Client

from engine.alarms.store import journal_table
from engine.api import create_app
from engine.audit.tables import audit_table
from engine.auth.hooks import auth_init_hook, authorize, current_username
from engine.auth.passwords import Passwords
from engine.auth.users import create_user
from engine.bus import InProcessBus
from engine.db import build_metadata, create_engine_for
from engine.notify.tables import attempt_table, notification_table
from engine.scada.sim.model import Fault
from engine.scada.simulator import PhysicsConfig, Simulator
from engine.settings import Settings
from engine.wiring.edge import EdgePlugin
from metamodel import load
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pump intake 812"
FAST = PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3, drawdown_tau_s=0.6, thermal_tau_s=0.6)
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
ALARM = "sim_pad.w1.esp_stopped"


def until(check: Callable[[], Any], within: float = 30.0) -> Any:
    end = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        time.sleep(0.05)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = Simulator(4, tick_s=0.1, physics=FAST)
    s.start_in_thread()
    yield s
    s.stop_thread()


def test_trip_to_alarm_to_ack_to_return(sim: Simulator, tmp_path: Path, mqtt_url: str,
                                        smtp_server: Any,  # noqa: F811
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    smtp_port, mails, crt = smtp_server
    hook_port = free_port()
    project = tmp_path / "project"
    project.mkdir()
    for part in ("modules", "tags", "screens"):
        (project / part).symlink_to(REPO / part)
    (project / "notify").mkdir()
    (project / "notify" / "notify.yaml").write_text(f"""
channels:
  ops: {{type: webhook, url: 'http://127.0.0.1:{hook_port}/alarms', secret_env: E2E_HOOK,
        timeout: 1s}}
  mail: {{type: email, host: 127.0.0.1, port: {smtp_port}, username: alarms,
         password_env: E2E_SMTP, from: campo@pad.example, cafile: '{crt}', timeout: 3s}}
routes:
  urgent: {{priorities: [critical, high], channels: [ops, mail], to: [sala@pad.example]}}
retry_base: 0.3
retry_max: 1
""")
    monkeypatch.setenv("E2E_HOOK", "e2e-secret")
    monkeypatch.setenv("E2E_SMTP", "pw-smtp")
    topic = f"t{uuid.uuid4().hex[:8]}/alarms"
    settings = Settings(project=project, data_dir=tmp_path, jwt_secret="e2e-" + "x" * 40,
                        login_rate_limit="1000 per minute", api_rate_limit="10000 per minute",
                        simulate=False, mqtt_url=mqtt_url, alarm_topic=topic)
    model = load(REPO)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'campo.db'}")
    build_metadata(model).create_all(engine)
    tags = load_tags(project, params={"sim_pad.modbus_port": sim.ports.modbus,
                                      "sim_pad.opcua_enabled": False}, roles=list(model.roles))
    plugin = EdgePlugin(tags, InProcessBus(), engine, run_runtime=True, settings=settings)
    assert plugin.alarms is not None and plugin.alarms.engine is not None
    app = create_app(model, engine, settings, authorize=authorize, current_user=current_username,
                     on_init=[auth_init_hook(engine, settings, model, hasher=HASHER),
                              plugin.init_app])
    with engine.begin() as conn:
        now = dt.datetime.now(dt.UTC)
        for name, roles in (("ana", ["operator"]), ("vic", ["viewer"])):
            create_user(conn, model, username=name, now=now, roles=roles, sites=["*"],
                        password_hash=Passwords(HASHER).hash(PASSWORD))
    got_mqtt: dict[str, Any] = {}
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: got_mqtt.__setitem__(m.topic, json.loads(m.payload))
    host, port = mqtt_url.split("//")[1].split(":")
    sub.connect(host, int(port))
    sub.subscribe(f"{topic}/#", 1)
    sub.loop_start()
    plugin.start()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = app.test_client()
    token = client.post("/api/auth/login", json={"username": "ana", "password": PASSWORD}
                        ).json["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    ws = Client.connect(f"ws://127.0.0.1:{server.server_port}/api/ws?token={token}")
    receiver = Receiver(hook_port)
    try:
        until(lambda: (sim.snapshot(1).running and
                       plugin.live.values([tags.tags["sim_pad.w1.running"]])))
        time.sleep(1.5)  # the runtime has read every tag: the pad is normal
        ws.send(json.dumps({"type": "subscribe_alarms", "sites": ["sim_pad"]}))
        pushed: list[dict[str, Any]] = []

        def ws_event(action: str) -> bool:
            while (raw := ws.receive(timeout=0.2)) is not None:
                msg = json.loads(raw)
                if msg["type"] == "alarms":
                    pushed.extend(msg["events"])
            return any(e["alarm"] == ALARM and e["action"] == action for e in pushed)

        sim.inject(1, Fault.TRIP)  # the trip
        until(lambda: ws_event("raise"))
        raised = next(e for e in pushed if e["alarm"] == ALARM and e["action"] == "raise")
        assert raised["priority"] == "high" and raised["state"] == "unack_active"
        assert raised["message"]["en"] == "ESP of W1 stopped unexpectedly"
        active = client.get("/api/alarms/active?site=sim_pad", headers=auth).json
        assert active["items"][0]["alarm"] == ALARM  # high before the low current alarm
        until(lambda: any(a["alarm"] == ALARM for a in
                          got_mqtt.get(f"{topic}/sim_pad/active", {}).get("alarms", [])))
        # the webhook receiver is down: attempts fail, then it comes up
        rows = lambda: [r for r in _rows(engine, notification_table)  # noqa: E731
                        if r["channel"] == "ops"]
        until(lambda: rows() and rows()[0]["attempts"] >= 2)
        receiver.start()
        until(lambda: rows()[0]["status"] == "sent")
        until(lambda: mails)
        time.sleep(1.0)
        stopped_hooks = [json.loads(b) for _, b in receiver.got]
        assert len([b for b in stopped_hooks if b["event"]["alarm"] == ALARM]) == 1
        assert len([m for m in mails if "ESP of W1 stopped unexpectedly" in m[2]]) == 1
        attempts = _rows(engine, attempt_table)
        assert any(not a["ok"] for a in attempts) and any(a["ok"] for a in attempts)
        # acknowledged through the API, audited
        denied = client.post("/api/alarms/acknowledge", json={"alarms": [ALARM]},
                             headers={"Authorization": "Bearer " + client.post(
                                 "/api/auth/login", json={"username": "vic",
                                                          "password": PASSWORD}
                             ).json["access_token"]})
        assert denied.status_code == 403
        r = client.post("/api/alarms/acknowledge", json={"alarms": [ALARM],
                                                         "comment": "crew on the way"},
                        headers=auth)
        assert r.status_code == 200, r.json
        assert r.json["results"][0]["state"] == "ack_active"
        with engine.connect() as conn:
            audit = conn.execute(sa.select(audit_table).where(
                audit_table.c.action == "alarm.acknowledge")).mappings().all()
        assert [(a["username"], a["record_id"]) for a in audit] == [("ana", ALARM)]
        until(lambda: ws_event("ack"))
        # back to normal: the fault cleared and the pump restarted; latched until reset
        sim.clear(1)
        sim.command_run(1, True)
        until(lambda: ws_event("clear"))
        r = client.post("/api/alarms/reset", json={"alarms": [ALARM]}, headers=auth)
        assert r.status_code == 200 and r.json["results"][0]["state"] == "normal"
        journal = client.get(f"/api/alarms/journal?alarm={ALARM}", headers=auth).json
        assert [j["action"] for j in reversed(journal["items"])] == ["raise", "ack", "clear",
                                                                     "reset"]
        assert journal["items"][2]["user"] == "ana"
        assert journal["items"][2]["comment"] == "crew on the way"
        until(lambda: not any(a["alarm"] == ALARM for a in
                              got_mqtt.get(f"{topic}/sim_pad/active", {}).get("alarms", [])))
        kpi = client.get("/api/alarms/kpi", headers=auth).json
        assert kpi["alarms"] >= 1 and "targets" in kpi
    finally:
        ws.close()
        receiver.stop()
        server.shutdown()
        plugin.stop()
        sub.loop_stop()
        sub.disconnect()
        engine.dispose()


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_journal_table_is_the_one_the_engine_writes() -> None:
    assert journal_table.name == "campo_alarm_journal"
