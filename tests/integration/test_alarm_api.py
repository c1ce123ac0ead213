"""``/api/alarms``: the active list (order, filters, sites), the journal filters, shelve and
out of service through the API with their refusals, audit rows, the KPIs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from test_alarm_engine import TEMPLATE, S, at

from engine.alarms.compile import compile_alarms
from engine.alarms.engine import AlarmEngine
from engine.alarms.store import AlarmStore, ensure_alarm_tables
from engine.alarms.web import AlarmsWeb, init_alarms
from engine.api import create_app
from engine.audit.tables import audit_table
from engine.auth.hooks import auth_init_hook, authorize, current_username
from engine.auth.passwords import Passwords
from engine.auth.users import create_user
from engine.db import build_metadata, create_engine_for
from engine.settings import Settings
from metamodel import load
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration
PASSWORD = "alarm api password"
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
SITE_B = """site: pad_b
alarm_settings: {operators: 3}
devices:
  plc: {type: modbus_tcp, host: h}
instances:
  w9: {template: pump, device: plc, unit_id: 9}
"""


class Env:
    def __init__(self, app: Any, engine: AlarmEngine, db: sa.Engine) -> None:
        self.client = app.test_client()
        self.engine = engine
        self.db = db
        self.tokens: dict[str, str] = {}

    def auth(self, user: str) -> dict[str, str]:
        if user not in self.tokens:
            r = self.client.post("/api/auth/login", json={"username": user,
                                                          "password": PASSWORD})
            self.tokens[user] = r.json["access_token"]
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str) -> Any:
        return self.client.get(path, headers=self.auth(user))

    def post(self, path: str, user: str, body: Any) -> Any:
        return self.client.post(path, json=body, headers=self.auth(user))


@pytest.fixture
def env(project: Any, tmp_path: Path) -> Iterator[Env]:
    root = project({
        "tags/scan_classes.yaml": "scan_classes:\n  fast: {period: 1s}\n",
        "tags/templates/pump.yaml": TEMPLATE,
        "tags/sites/pad.yaml": "site: pad\ndevices:\n  plc: {type: modbus_tcp, host: h}\n"
                               "instances:\n  w1: {template: pump, device: plc, unit_id: 1}\n",
        "tags/sites/pad_b.yaml": SITE_B,
    })
    repo = Path(__file__).resolve().parents[2]
    model = load(repo)
    db = create_engine_for(f"sqlite:///{tmp_path / 'campo.db'}")
    build_metadata(model).create_all(db)
    ensure_alarm_tables(db)
    tags = load_tags(root)
    now = [at(100)]
    engine = AlarmEngine(compile_alarms(tags), AlarmStore(db), clock=lambda: now[0],
                         timer_period=0)
    web = AlarmsWeb(tags, db, actions=engine.act, clock=lambda: now[0])
    settings = Settings(project=root, data_dir=tmp_path, jwt_secret="alarm-api-" + "x" * 40,
                        login_rate_limit="1000 per minute", api_rate_limit="10000 per minute")
    app = create_app(model, db, settings, authorize=authorize, current_user=current_username,
                     on_init=[auth_init_hook(db, settings, model, hasher=HASHER),
                              lambda a, api: init_alarms(a, api, web)])
    with db.begin() as conn:
        for name, roles, sites in (("ana", ["operator"], ["*"]), ("jefe", ["supervisor"], ["*"]),
                                   ("olga", ["operator"], ["pad_b"])):
            create_user(conn, model, username=name, now=dt.datetime.now(dt.UTC), roles=roles,
                        sites=sites, password_hash=Passwords(HASHER).hash(PASSWORD))
    for site, inst in (("pad", "w1"), ("pad_b", "w9")):
        p = f"{site}.{inst}"
        engine.process([S(f"{p}.pip", 800.0, ts=at(0)), S(f"{p}.current", 30.0, ts=at(0)),
                        S(f"{p}.running", True, ts=at(0)), S(f"{p}.run_cmd", True, ts=at(0)),
                        S(f"{p}.cause", 0, ts=at(0))], now=at(0))
    engine.process([S("pad.w1.current", 60.0, ts=at(10))], now=at(10))       # medium
    engine.process([S("pad.w1.running", False, ts=at(20))], now=at(20))      # high, newer
    engine.process([S("pad_b.w9.running", False, ts=at(30))], now=at(30))
    yield Env(app, engine, db)
    db.dispose()


def test_active_list_order_filters_and_sites(env: Env) -> None:
    items = env.get("/api/alarms/active", "ana").json["items"]
    assert [(i["alarm"], i["priority"]) for i in items] == [
        ("pad_b.w9.stopped", "high"), ("pad.w1.stopped", "high"),
        ("pad.w1.current_high.hi", "medium")]
    assert items[2]["message"]["es"] and items[2]["state"] == "unack_active"
    assert [i["alarm"] for i in env.get("/api/alarms/active", "olga").json["items"]] == [
        "pad_b.w9.stopped"]
    got = env.get("/api/alarms/active?priority=medium&site=pad", "ana").json["items"]
    assert [i["alarm"] for i in got] == ["pad.w1.current_high.hi"]
    assert env.get("/api/alarms/active?alarm=pad.*.stopped", "ana").json["count"] == 1
    assert env.get("/api/alarms/active?priority=urgent", "ana").status_code == 400


def test_shelve_and_out_of_service_through_the_api(env: Env) -> None:
    path = "pad.w1.current_high.hi"
    r = env.post("/api/alarms/shelve", "ana", {"alarms": [path], "minutes": 30,
                                                "reason": "calibration"})
    assert r.status_code == 403 and "supervisor" in r.json["message"]
    r = env.post("/api/alarms/shelve", "jefe", {"alarms": [path], "minutes": 30})
    assert r.status_code == 422 and r.json["errors"]["json"]["reason"]
    r = env.post("/api/alarms/shelve", "jefe", {"alarms": [path], "minutes": 30,
                                                 "reason": "calibration"})
    assert r.status_code == 200 and r.json["results"][0]["state"] == "shelved"
    shelved = env.get("/api/alarms/active?state=shelved", "jefe").json["items"][0]
    assert shelved["shelve_reason"] == "calibration"
    assert shelved["shelved_until"] == (at(100) + dt.timedelta(minutes=30)).isoformat()
    r = env.post("/api/alarms/acknowledge", "ana", {"alarms": [path]})
    assert r.status_code == 409
    r = env.post("/api/alarms/out_of_service", "jefe", {"alarms": [path],
                                                         "comment": "transmitter out"})
    assert r.json["results"][0]["state"] == "out_of_service"
    r = env.post("/api/alarms/in_service", "jefe", {"alarms": [path]})
    assert r.json["results"][0]["state"] == "unack_active"
    r = env.post("/api/alarms/acknowledge", "olga", {"alarms": [path]})
    assert r.status_code == 404  # another site's alarm does not exist for her
    with env.db.connect() as conn:
        rows = conn.execute(sa.select(audit_table.c.action, audit_table.c.username).where(
            audit_table.c.record_id == path).order_by(audit_table.c.id)).all()
    assert [tuple(r) for r in rows] == [
        ("permission.denied", "ana"), ("alarm.shelve", "jefe"), ("alarm.acknowledge", "ana"),
        ("alarm.out_of_service", "jefe"), ("alarm.in_service", "jefe")]


def test_journal_filters_and_kpis(env: Env) -> None:
    env.post("/api/alarms/acknowledge", "ana", {"alarms": ["pad.w1.stopped"],
                                               "comment": "seen"})
    j = env.get("/api/alarms/journal?site=pad&action=raise", "ana").json
    assert [i["alarm"] for i in j["items"]] == ["pad.w1.stopped", "pad.w1.current_high.hi"]
    assert env.get("/api/alarms/journal?user=ana", "ana").json["items"][0]["comment"] == "seen"
    assert env.get("/api/alarms/journal", "olga").json["count"] == 1  # pad_b only
    page = env.get("/api/alarms/journal?page_size=1&page=2", "ana").json
    assert page["count"] == 4 and len(page["items"]) == 1
    frm = at(15).isoformat().replace("+00:00", "Z")
    assert env.get(f"/api/alarms/journal?from={frm}&site=pad&action=raise",
                   "ana").json["count"] == 1
    period = (f"from={at(0).isoformat().replace('+00:00', 'Z')}"
              f"&to={at(600).isoformat().replace('+00:00', 'Z')}")
    k = env.get(f"/api/alarms/kpi?{period}&operators=1", "ana").json
    assert k["alarms"] == 3 and k["per_operator_per_10min"] == 3.0
    k = env.get(f"/api/alarms/kpi?{period}", "ana").json  # pad 1 + pad_b 3 (alarm_settings)
    assert k["operators"] == 4 and k["per_operator_per_10min"] == 0.75
    assert k["priority_percent"]["high"] == pytest.approx(66.67)
    assert env.get("/api/alarms/kpi?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
                   "ana").status_code == 400
