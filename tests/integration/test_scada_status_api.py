"""``GET /api/scada/status`` end to end: a slow pymodbus device, the runtime in the web
process (``campo serve``) or in its own (``campo scada``, reporting over Mosquitto)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from support.modbus import Tables, TcpServer

from engine.api import create_app, shutdown
from engine.auth.hooks import auth_init_hook, authorize, current_username
from engine.auth.passwords import Passwords
from engine.auth.users import create_user
from engine.bus import InProcessBus
from engine.bus.events import MqttEventHub
from engine.db import build_metadata, create_engine_for
from engine.live.scada_views import ScadaStatus
from engine.settings import Settings
from engine.wiring.edge import EdgePlugin, RuntimeBridge
from metamodel import load
from metamodel.tags import TagModel, load_tags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pump intake 812"
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
MQTT = "mqtt://127.0.0.1:1883"

#: five units answering in 60 ms each, read every 200 ms: `campo tags plan` rejects it
SLOW = """site: slowpad
devices:
  plc: {type: modbus_tcp, host: 127.0.0.1, port: '${port}', timeout: 3s, round_trip: 60ms}
parameters:
  port: {type: int, default: 502}
tags:
""" + "".join(f"  u{u}: {{device: plc, address: hr:40001, unit_id: {u}, type: uint16, "
              f"scan_class: fast}}\n" for u in range(1, 6))


def until(check: Callable[[], Any], within: float = 15.0) -> Any:
    end = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"condition not met within {within} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def slow_server() -> Iterator[TcpServer]:
    server = TcpServer({u: Tables(hr=[u] + [0] * 10, latency=0.06) for u in range(1, 6)})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture(scope="module")
def slow_tags(slow_server: TcpServer, tmp_path_factory: pytest.TempPathFactory) -> TagModel:
    root = tmp_path_factory.mktemp("slowpad")
    (root / "tags" / "sites").mkdir(parents=True)
    (root / "tags" / "scan_classes.yaml").write_text(
        "scan_classes: {fast: {period: 200ms}}\n", encoding="utf-8")
    (root / "tags" / "sites" / "slowpad.yaml").write_text(SLOW, encoding="utf-8")
    return load_tags(root, params={"slowpad.port": slow_server.port})


class Web:
    def __init__(self, app: Any, plugin: EdgePlugin) -> None:
        self.client = app.test_client()
        self.plugin = plugin
        self.tokens: dict[str, str] = {}

    def get(self, path: str, user: str) -> Any:
        if user not in self.tokens:
            r = self.client.post("/api/auth/login",
                                 json={"username": user, "password": PASSWORD})
            assert r.status_code == 200, r.json
            self.tokens[user] = r.json["access_token"]
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[user]}"})


@pytest.fixture(scope="module")
def web(slow_tags: TagModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    tmp = tmp_path_factory.mktemp("web")
    settings = Settings(project=REPO, data_dir=tmp, jwt_secret="status-secret-" + "x" * 40,
                        login_rate_limit="1000 per minute", api_rate_limit="10000 per minute",
                        simulate=False)
    model = load(REPO)
    engine = create_engine_for(f"sqlite:///{tmp / 'campo.db'}")
    build_metadata(model).create_all(engine)
    plugin = EdgePlugin(slow_tags, InProcessBus(), engine, run_runtime=True)
    app = create_app(model, engine, settings, authorize=authorize, current_user=current_username,
                     on_init=[auth_init_hook(engine, settings, model, hasher=HASHER),
                              plugin.init_app])
    hashed = Passwords(HASHER).hash(PASSWORD)
    with engine.begin() as conn:
        now = dt.datetime.now(dt.UTC)
        for name, roles, sites in (("vic", ["viewer"], ["slowpad"]),
                                   ("adm", ["admin"], ["*"]),
                                   ("olga", ["operator"], ["pad_b"])):
            create_user(conn, model, username=name, now=now, password_hash=hashed, roles=roles,
                        sites=sites)
    plugin.start()
    try:
        yield Web(app, plugin)
    finally:
        plugin.stop()
        shutdown(app)
        engine.dispose()


def test_status_needs_a_token_and_is_documented(web: Web) -> None:
    r = web.client.get("/api/scada/status")
    assert r.status_code == 401
    spec = web.client.get("/api/openapi.json").json
    op = spec["paths"]["/api/scada/status"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"devices", "plan", "sinks", "running"} <= set(schema["properties"])
    from openapi_spec_validator import validate

    validate(spec)


def test_overruns_and_the_plan_are_reported_per_device_and_scan_class(web: Web) -> None:
    def behind() -> Any:
        r = web.get("/api/scada/status", "vic")
        assert r.status_code == 200
        devs = r.json["devices"]
        return r.json if devs and devs[0]["scan_classes"] and \
            devs[0]["scan_classes"][0]["scans"] >= 6 else None

    body = until(behind)
    assert body["running"] is True and body["source"] == "local"
    (dev,) = body["devices"]
    assert dev["device"] == "slowpad.plc" and dev["site"] == "slowpad"
    assert dev["state"] == "online" and dev["reason"] is None
    (fast,) = dev["scan_classes"]
    assert fast["scan_class"] == "fast" and fast["period"] == 0.2 and fast["tags"] == 5
    assert fast["overruns"] >= 2 and fast["behind"] is True, fast
    assert fast["actual_period"] >= 0.28, fast  # "200 ms" data every 300 ms or more
    assert fast["last_duration"] >= 0.25, fast
    assert body["plan"]["ok"] is False
    assert ("device slowpad.plc: scan class 'fast' needs about 300 ms per scan, more than "
            "80% of its 0.2 s period") in body["plan"]["problems"]
    assert dev["plan_problems"] == body["plan"]["problems"]
    assert body["sinks"] == []  # sink figures only for callers who see every site


def test_other_sites_see_no_device_and_no_plan(web: Web) -> None:
    body = web.get("/api/scada/status", "olga").json
    assert body["devices"] == [] and body["plan"] == {"ok": True, "problems": []}
    assert body["sinks"] == []
    admin = web.get("/api/scada/status", "adm").json
    assert [d["device"] for d in admin["devices"]] == ["slowpad.plc"]
    assert isinstance(admin["sinks"], list)


def test_a_runtime_in_another_process_reports_over_the_bus(slow_tags: TagModel) -> None:
    """``campo scada`` publishes its status on the bus; a web process reads it."""
    prefix = f"campo/test-status-{time.monotonic_ns()}"
    runtime_hub, web_hub = MqttEventHub(MQTT, prefix), MqttEventHub(MQTT, prefix)
    bus = InProcessBus()  # the values' bus is not what this test is about
    status = ScadaStatus(hub=web_hub)
    bridge = RuntimeBridge(slow_tags, bus, status_hub=runtime_hub)
    try:
        time.sleep(0.5)  # both hubs subscribed
        bridge.start()

        class Viewer:
            all_sites = False

            @staticmethod
            def may_see_site(site: str | None) -> bool:
                return site == "slowpad"

        body = until(lambda: status.for_viewer(Viewer()) if status.report()[0] else None)
        assert body["source"] == "remote" and body["stale"] is False
        assert [d["device"] for d in body["devices"]] == ["slowpad.plc"]
        assert body["plan"]["ok"] is False and body["sinks"] == []
    finally:
        bridge.stop()
        status.close()
        runtime_hub.close()
        web_hub.close()
        bus.close()
