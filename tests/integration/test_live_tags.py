"""Live tags end to end: simulator -> SCADA runtime -> bus -> /api/tags and /api/ws.

The real pieces run: the simulator's Modbus server, the runtime polling the repository's
``sim_pad`` map, the in-process bus, the generated API with authentication, and a threaded
HTTP server for the WebSocket.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from werkzeug.serving import make_server
from wsclient import Client, ConnectionClosed

from engine.api import create_app, shutdown
from engine.auth.hooks import auth_init_hook, authorize, current_username
from engine.auth.passwords import Passwords
from engine.auth.users import create_user
from engine.bus import InProcessBus
from engine.db import build_metadata, create_engine_for
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


def until(check: Callable[[], Any], within: float = 20.0) -> Any:
    end = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(4, tick_s=0.1, physics=FAST)
    s.start_in_thread()
    yield s
    s.stop_thread()


class Site:
    def __init__(self, app: Any, plugin: EdgePlugin, base: str, engine: Any = None,
                 model: Any = None) -> None:
        self.app = app
        self.engine = engine
        self.model = model
        self.client = app.test_client()
        self.plugin = plugin
        self.base = base
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            r = self.client.post("/api/auth/login", json={"username": user, "password": PASSWORD})
            assert r.status_code == 200, r.json
            self.tokens[user] = r.json["access_token"]
        return self.tokens[user]

    def get(self, path: str, user: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.token(user)}"})

    def post(self, path: str, user: str, body: Any) -> Any:
        return self.client.post(path, json=body,
                                headers={"Authorization": f"Bearer {self.token(user)}"})


@pytest.fixture(scope="module")
def site(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("live")
    settings = Settings(project=REPO, data_dir=tmp, jwt_secret="live-secret-" + "x" * 40,
                        login_rate_limit="1000 per minute", api_rate_limit="10000 per minute",
                        simulate=False)
    model = load(REPO)
    engine = create_engine_for(f"sqlite:///{tmp / 'campo.db'}")
    build_metadata(model).create_all(engine)
    tags = load_tags(REPO, params={"sim_pad.modbus_port": sim.ports.modbus,
                                   "sim_pad.opcua_enabled": False}, roles=list(model.roles))
    plugin = EdgePlugin(tags, InProcessBus(), engine, run_runtime=True)
    app = create_app(model, engine, settings, authorize=authorize, current_user=current_username,
                     on_init=[auth_init_hook(engine, settings, model, hasher=HASHER),
                              plugin.init_app])
    hashed = Passwords(HASHER).hash(PASSWORD)
    with engine.begin() as conn:
        now = dt.datetime.now(dt.UTC)
        for name, roles, sites in (("ana", ["operator"], ["*"]), ("vic", ["viewer"], ["*"]),
                                   ("adm", ["admin"], ["*"]),
                                   ("olga", ["operator"], ["pad_b"]),  # not sim_pad
                                   ("sam", ["operator"], ["sim_pad"])):
            create_user(conn, model, username=name, now=now, password_hash=hashed, roles=roles,
                        sites=sites)
    plugin.start()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(app, plugin, f"127.0.0.1:{server.server_port}", engine, model)
    finally:
        server.shutdown()
        plugin.stop()
        shutdown(app)
        engine.dispose()


def test_tags_need_a_token(site: Site) -> None:
    r = site.client.get("/api/tags")
    assert r.status_code == 401
    assert r.json["code"] == 401


def test_list_and_get_show_live_values_with_quality(site: Site, sim: Simulator) -> None:
    def good() -> Any:
        r = site.get("/api/tags?site=sim_pad&pattern=sim_pad.w1.*", "vic")
        assert r.status_code == 200
        items = {t["path"]: t for t in r.json["items"]}
        return items if items["sim_pad.w1.pip"]["quality"] == "good" else None

    items = until(good)
    assert "sim_pad.ua.w1.pip" not in items  # the pattern's * stays within one segment
    pip = items["sim_pad.w1.pip"]
    assert pip["unit"] == "psi" and pip["asset"]["value"] == "W1"
    assert abs(pip["value"] - sim.snapshot(1).intake_pressure) < 50
    one = site.get("/api/tags/sim_pad.w1.frequency", "vic").json
    assert one["quality"] == "good" and 39 < one["value"] < 61
    assert site.get("/api/tags/sim_pad.w1.nope", "vic").status_code == 404
    by_asset = site.get("/api/tags?asset=W2", "vic").json["items"]
    assert by_asset and all(t["asset"]["value"] == "W2" for t in by_asset)


def test_write_checks_roles_and_limits_then_reads_back(site: Site, sim: Simulator) -> None:
    path = "/api/tags/sim_pad.w3.frequency_setpoint/write"
    until(lambda: site.get("/api/tags/sim_pad.w3.frequency_setpoint", "ana").json["quality"]
          == "good")
    denied = site.post(path, "vic", {"value": 50})
    assert denied.status_code == 403 and "roles" in denied.json["message"]
    too_high = site.post(path, "ana", {"value": 75})
    assert too_high.status_code == 422 and "value" in too_high.json["errors"]["json"]
    wrong = site.post(path, "ana", {"value": "fast"})
    assert wrong.status_code == 422
    ok = site.post(path, "ana", {"value": 55.5})
    assert ok.status_code == 200, ok.json
    assert ok.json["value"] == pytest.approx(55.5, abs=0.01)
    assert sim.snapshot(3).frequency_setpoint == pytest.approx(55.5, abs=0.01)
    audit = site.get("/api/audit?action=tag.write", "adm").json
    rows = audit["items"] if isinstance(audit, dict) else audit
    assert any(r["record_id"] == "sim_pad.w3.frequency_setpoint" and r["username"] == "ana"
               for r in rows)
    denials = site.get("/api/audit?action=permission.denied", "adm").json
    drows = denials["items"] if isinstance(denials, dict) else denials
    assert any(r["record_id"] == "sim_pad.w3.frequency_setpoint" for r in drows)


def _recv(ws: Client, kind: str, within: float = 10.0) -> dict[str, Any]:
    end = time.monotonic() + within
    while time.monotonic() < end:
        raw = ws.receive(timeout=0.5)
        if raw is None:
            continue
        msg = json.loads(raw)
        if msg["type"] == kind:
            return msg
    pytest.fail(f"no '{kind}' message within {within} s")


def test_websocket_pushes_subscribed_changes(site: Site) -> None:
    ws = Client.connect(f"ws://{site.base}/api/ws?token={site.token('vic')}")
    try:
        assert _recv(ws, "ready")["user"] == "vic"
        ws.send(json.dumps({"type": "subscribe", "patterns": ["sim_pad.w2.*"]}))
        assert _recv(ws, "subscribed")["tags"] > 5
        seen: set[str] = set()
        end = time.monotonic() + 15
        while len(seen) < 3 and time.monotonic() < end:
            for v in _recv(ws, "values")["values"]:
                assert v["tag"].startswith("sim_pad.w2.")
                seen.add(v["tag"])
        assert len(seen) >= 3
    finally:
        ws.close()


def test_websocket_without_a_valid_token_is_closed(site: Site) -> None:
    ws = Client.connect(f"ws://{site.base}/api/ws")
    try:
        ws.send(json.dumps({"type": "auth", "token": "not-a-token"}))
        msg = json.loads(ws.receive(timeout=5))
        assert msg["type"] == "error" and msg["code"] == 401
        with pytest.raises(ConnectionClosed):
            for _ in range(20):
                ws.receive(timeout=0.5)
        assert ws.close_reason == 1008
    finally:
        with contextlib.suppress(ConnectionClosed):
            ws.close()


# --------------------------------------------------------------------------- sites (issue 8.1)


def test_tags_of_other_sites_read_like_missing_ones(site: Site) -> None:
    until(lambda: site.get("/api/tags/sim_pad.w4.frequency_setpoint", "sam").json["quality"]
          == "good")
    assert site.get("/api/tags?pattern=sim_pad.**", "olga").json == {"items": [], "count": 0}
    assert site.get("/api/tags", "olga").json["count"] == 0
    own = site.get("/api/tags?pattern=sim_pad.w4.*", "sam").json
    assert own["count"] > 5 and all(t["site"] == "sim_pad" for t in own["items"])
    hidden = site.get("/api/tags/sim_pad.w4.pip", "olga")
    assert hidden.status_code == 404 and hidden.json["message"] == "unknown tag 'sim_pad.w4.pip'"
    before = site.get("/api/tags/sim_pad.w4.frequency_setpoint", "adm").json["value"]
    stop = site.post("/api/tags/sim_pad.w4.frequency_setpoint/write", "olga", {"value": 41})
    assert stop.status_code == 404 and stop.json["message"] == (
        "unknown tag 'sim_pad.w4.frequency_setpoint'")
    time.sleep(0.5)
    assert site.get("/api/tags/sim_pad.w4.frequency_setpoint", "adm").json["value"] == before


def test_websocket_stops_a_site_taken_away(site: Site) -> None:
    from engine.auth.users import find_user, update_user

    olga = Client.connect(f"ws://{site.base}/api/ws?token={site.token('olga')}")
    ws = Client.connect(f"ws://{site.base}/api/ws?token={site.token('sam')}")
    with site.engine.connect() as conn:
        sam = find_user(conn, "sam")
    assert sam is not None
    try:
        _recv(olga, "ready")
        olga.send(json.dumps({"type": "subscribe", "patterns": ["sim_pad.**"]}))
        assert _recv(olga, "subscribed")["tags"] == 0
        _recv(ws, "ready")
        ws.send(json.dumps({"type": "subscribe", "patterns": ["sim_pad.w2.*"]}))
        assert _recv(ws, "subscribed")["tags"] > 5
        assert _recv(ws, "values")["values"]
        with site.engine.begin() as conn:
            update_user(conn, site.model, sam.id, dt.datetime.now(dt.UTC), sites=["pad_b"])
        time.sleep(1.0)  # the change is announced: the socket re-reads the user at once
        while ws.receive(timeout=0.2) is not None:
            pass
        end = time.monotonic() + 3.0
        while time.monotonic() < end:  # the simulated well keeps changing: nothing arrives
            raw = ws.receive(timeout=0.5)
            assert raw is None or json.loads(raw)["type"] != "values", raw
        raw = olga.receive(timeout=0.5)
        assert raw is None or json.loads(raw)["type"] != "values", raw
    finally:
        with site.engine.begin() as conn:
            update_user(conn, site.model, sam.id, dt.datetime.now(dt.UTC), sites=["sim_pad"])
        for w in (ws, olga):
            with contextlib.suppress(ConnectionClosed):
                w.close()


# --------------------------------------------------------------------------- patterns (8.2)


def test_hostile_patterns_answer_400_and_64_globstars_answer_fast(site: Site) -> None:
    for bad in ("****************#", "sim_pad.w1**", "a." + "b" * 300):
        r = site.get(f"/api/tags?pattern={bad.replace('#', '%23')}", "vic")
        assert r.status_code == 400, bad
        assert "pattern" in r.json["errors"]["query"]
    t0 = time.process_time()
    r = site.get("/api/tags?pattern=" + ".".join(["**"] * 64), "vic")
    assert r.status_code == 200 and r.json["count"] == 0
    assert time.process_time() - t0 < 0.5  # the whole request, CPU time of this process
    ws = Client.connect(f"ws://{site.base}/api/ws?token={site.token('vic')}")
    try:
        _recv(ws, "ready")
        ws.send(json.dumps({"type": "subscribe", "patterns": [f"sim_pad.w{i}.*"
                                                             for i in range(33)]}))
        err = _recv(ws, "error")
        assert err["code"] == 400 and "at most 32 patterns" in err["message"]
        ws.send(json.dumps({"type": "subscribe", "patterns": ["sim_pad.**#**"]}))
        assert _recv(ws, "error")["field"] == "patterns"
        ws.send(json.dumps({"type": "subscribe", "patterns": ["sim_pad.w1.pip"]}))
        assert _recv(ws, "subscribed")["tags"] == 1
    finally:
        with contextlib.suppress(ConnectionClosed):
            ws.close()


def test_a_rounded_write_says_so(site: Site, sim: Simulator) -> None:
    path = "/api/tags/sim_pad.w1.frequency_setpoint/write"
    until(lambda: site.get("/api/tags/sim_pad.w1.frequency_setpoint", "ana").json["quality"]
          == "good")
    r = site.post(path, "ana", {"value": 52.555})
    assert r.status_code == 200, r.json
    assert r.json["requested"] == 52.555 and r.json["rounded"] is True
    assert r.json["value"] in (pytest.approx(52.55), pytest.approx(52.56))
    assert "resolution is 0.01" in r.json["note"]
    exact = site.post(path, "ana", {"value": 52.5})
    assert exact.json["rounded"] is False and exact.json["note"] is None
