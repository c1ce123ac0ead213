"""``/api/history`` and ``/api/history/status`` through the app, with authentication and
site scopes; and the runtime feeding the historian (simulator -> runtime -> sink -> rows)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from engine.api import create_app, shutdown
from engine.auth.hooks import auth_init_hook, authorize, current_username
from engine.auth.passwords import Passwords
from engine.auth.users import create_user
from engine.bus import InProcessBus
from engine.db import build_metadata, create_engine_for
from engine.historian.samples import Sample, iso, to_us
from engine.settings import Settings
from engine.wiring.edge import EdgePlugin
from engine.wiring.history import make_historian
from metamodel import load
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
PASSWORD = "pump intake 812"
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
SITES = {
    "tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}}\n",
    "tags/sites/pad.yaml": """\
site: pad
devices: {plc: {type: modbus_tcp, host: 127.0.0.1, port: 1}}
tags:
  w1.pip: {device: plc, address: "hr:40001", type: float32, scan_class: fast, unit: psi}
  w1.run: {device: plc, address: "co:00001", type: bool, scan_class: fast}
  w2.pip: {device: plc, address: "hr:40003", type: float32, scan_class: fast, unit: psi}
""",
    "tags/sites/other.yaml": """\
site: other
devices: {plc: {type: modbus_tcp, host: 127.0.0.1, port: 1}}
tags:
  x.flow: {device: plc, address: "hr:40001", type: float32, scan_class: fast}
""",
}
T0 = to_us(dt.datetime.now(dt.UTC).replace(microsecond=0)) - 3600 * 1_000_000


class Client:
    def __init__(self, app: Any) -> None:
        self.client = app.test_client()
        self.tokens: dict[str, str] = {}

    def get(self, path: str, user: str | None, **headers: str) -> Any:
        if user is not None:
            if user not in self.tokens:
                r = self.client.post("/api/auth/login",
                                     json={"username": user, "password": PASSWORD})
                assert r.status_code == 200, r.json
                self.tokens[user] = r.json["access_token"]
            headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return self.client.get(path, headers=headers)


def _app(root: Path, tmp: Path, run_runtime: bool, tags: Any, **over: Any
         ) -> tuple[Any, EdgePlugin, Any]:
    settings = Settings(project=root, data_dir=tmp, jwt_secret="hist-secret-" + "x" * 40,
                        login_rate_limit="1000 per minute", api_rate_limit="10000 per minute",
                        simulate=False, history_flush_seconds=0.1, **over)
    model = load(REPO)
    engine = create_engine_for(f"sqlite:///{tmp / 'campo.db'}")
    build_metadata(model).create_all(engine)
    plugin = EdgePlugin(tags, InProcessBus(), engine, run_runtime, settings)
    app = create_app(model, engine, settings, authorize=authorize, current_user=current_username,
                     on_init=[auth_init_hook(engine, settings, model, hasher=HASHER),
                              plugin.init_app])
    hashed = Passwords(HASHER).hash(PASSWORD)
    with engine.begin() as conn:
        now = dt.datetime.now(dt.UTC)
        for name, roles, sites in (("ana", ["operator"], ["pad"]), ("vic", ["viewer"], ["other"]),
                                   ("adm", ["admin"], ["*"])):
            create_user(conn, model, username=name, now=now, password_hash=hashed, roles=roles,
                        sites=sites)
    return app, plugin, settings


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    tmp = tmp_path_factory.mktemp("history_api")
    root = tmp / "project"
    for rel, text in SITES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    tags = load_tags(root)
    app, plugin, settings = _app(root, tmp, False, tags, history_max_points=1000)
    hist = make_historian(settings, tags, app.extensions["campo_engine"]
                          if "campo_engine" in app.extensions else None)
    assert hist is not None
    hist.start()
    rows = []
    for k in range(600):
        ts = dt.datetime.fromtimestamp((T0 + k * 5_000_000) / 1e6, dt.UTC)
        rows.append(Sample("pad.w1.pip", ts, float(k), 2))
        rows.append(Sample("pad.w2.pip", ts, 1000.0 - k, 2 if k % 10 else 1))
        if k % 60 == 0:
            rows.append(Sample("pad.w1.run", ts, k % 120 == 0, 2))
        rows.append(Sample("other.x.flow", ts, 7.5, 2))
    for i in range(0, len(rows), 100):
        hist.publish(rows[i:i + 100])
    assert hist.wait_stored(60)
    hist.stop()
    yield Client(app)
    shutdown(app)


def q(**params: Any) -> str:
    return "/api/history?" + "&".join(f"{k.rstrip('_')}={v}" for k, v in params.items())


def test_raw_json_and_csv(api: Client) -> None:
    start, end = iso(T0), iso(T0 + 60_000_000)
    r = api.get(q(tags="pad.w1.pip", from_=start, to=end), "ana")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["mode"] == "raw" and body["points"] == 12
    (series,) = body["series"]
    assert series["tag"] == "pad.w1.pip" and series["unit"] == "psi"
    assert series["columns"] == ["ts", "value", "quality"]
    assert series["rows"][:2] == [[iso(T0), 0.0, "good"], [iso(T0 + 5_000_000), 1.0, "good"]]
    r = api.get(q(tags="pad.*.pip", from_=start, to=end, format="csv"), "ana")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert lines[0] == ["tag", "ts", "value", "quality"]
    assert lines[1] == ["pad.w1.pip", iso(T0), "0.0", "good"]
    assert len(lines) == 1 + 24
    r = api.get(q(tags="pad.w2.pip", from_=start, to=end), "ana", Accept="text/csv")
    assert r.mimetype == "text/csv" and "uncertain" in r.get_data(as_text=True)


def test_buckets_and_interpolation(api: Client) -> None:
    start, end = iso(T0), iso(T0 + 600 * 5_000_000)
    r = api.get(q(tags="pad.w1.pip,pad.w1.run", from_=start, to=end, bucket="10m",
                  agg="avg,min,max,count,twa"), "ana")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["mode"] == "aggregate" and body["source"] == "rollup_1m"
    pip = next(s for s in body["series"] if s["tag"] == "pad.w1.pip")
    assert pip["columns"] == ["ts", "avg", "min", "max", "count", "twa"]
    counts = [row[4] for row in pip["rows"]]
    assert sum(counts) == 600
    full = [row for row in pip["rows"] if row[4] == 120]
    assert full and all(row[3] - row[2] == 119.0 for row in full)
    run = next(s for s in body["series"] if s["tag"] == "pad.w1.run")
    assert all(row[5] is None or 0.0 <= row[5] <= 1.0 for row in run["rows"])
    r = api.get(q(tags="pad.w1.pip", from_=iso(T0 + 2_500_000), to=iso(T0 + 22_500_000),
                  interpolate="linear", interval="5s"), "ana")
    assert r.status_code == 200, r.json
    assert [row[1] for row in r.json["series"][0]["rows"]] == [0.5, 1.5, 2.5, 3.5, 4.5]
    r = api.get(q(tags="pad.w1.pip", from_=iso(T0 + 2_500_000), to=iso(T0 + 12_500_000),
                  interpolate="previous", interval="5s"), "ana")
    assert [row[1] for row in r.json["series"][0]["rows"]] == [0.0, 1.0, 2.0]


def test_refusals_name_the_field(api: Client) -> None:
    r = api.get(q(tags="pad.**", from_=iso(T0), to=iso(T0 + 3600_000_000)), "ana")
    assert r.status_code == 400
    assert "limit" in r.json["errors"]["json"] and "bucket=" in r.json["message"]
    r = api.get(q(tags="pad.w1.pip", from_="yesterday"), "ana")
    assert r.status_code == 400 and "from" in r.json["errors"]["json"]
    r = api.get(q(tags="pad.w1.pip", bucket="1m", agg="median"), "ana")
    assert r.status_code == 400 and "agg" in r.json["errors"]["json"]
    r = api.get(q(tags="pad.w1.pip", interpolate="cubic", interval="1s"), "ana")
    assert r.status_code == 400 and "interpolate" in r.json["errors"]["json"]
    r = api.get("/api/history", "ana")
    assert r.status_code in (400, 422) and "tags" in str(r.json)  # the API's validation status
    assert api.get(q(tags="pad.w1.pip"), None).status_code == 401


def test_only_the_callers_sites(api: Client) -> None:
    span = {"from_": iso(T0), "to": iso(T0 + 10_000_000)}
    r = api.get(q(tags="**", **span), "vic")
    assert [s["tag"] for s in r.json["series"]] == ["other.x.flow"]
    r = api.get(q(tags="pad.w1.pip", **span), "vic")
    assert r.status_code == 404 and "unknown tag 'pad.w1.pip'" in r.json["message"]
    r = api.get(q(tags="**", **span), "adm")
    assert len(r.json["series"]) == 4


def test_status_and_openapi(api: Client) -> None:
    r = api.get("/api/history/status", "vic")
    assert r.status_code == 200
    body = r.json
    assert body["backend"] == "sqlite"
    (writer,) = body["writers"]
    assert writer["stored"] == writer["published"] > 0 and writer["dropped_samples"] == 0
    assert {"spool_bytes", "oldest_unflushed", "last_flush", "rows_per_second"} <= set(writer)
    spec = api.get("/api/openapi.json", "adm").json
    assert "/api/history" in spec["paths"] and "/api/history/status" in spec["paths"]
    params = {p["name"] for p in spec["paths"]["/api/history"]["get"]["parameters"]}
    assert {"tags", "from", "to", "bucket", "agg", "interpolate", "interval", "format"} <= params


def test_the_runtime_feeds_the_historian(tmp_path: Path) -> None:
    """Simulator -> runtime -> historian sink -> rows, queried through the API."""
    from engine.scada.simulator import PhysicsConfig, Simulator

    sim = Simulator(1, tick_s=0.1, physics=PhysicsConfig(ramp_hz_per_s=40.0, rate_tau_s=0.3,
                                                         drawdown_tau_s=0.6,
                                                         thermal_tau_s=0.6))
    sim.start_in_thread()
    try:
        tags = load_tags(REPO, params={"sim_pad.modbus_port": sim.ports.modbus,
                                       "sim_pad.opcua_enabled": False})
        app, plugin, _settings = _app(REPO, tmp_path, True, tags)
        plugin.start()
        client = Client(app)
        deadline = time.monotonic() + 30
        rows: list[Any] = []
        while time.monotonic() < deadline and len(rows) < 3:
            r = client.get(q(tags="sim_pad.w1.pip", from_="now-5m"), "adm")
            assert r.status_code == 200, r.json
            rows = r.json["series"][0]["rows"]
            time.sleep(0.2)
        status = client.get("/api/history/status", "adm").json["writers"][0]
        plugin.stop()
        shutdown(app)
    finally:
        sim.stop_thread()
    assert len(rows) >= 3 and all(isinstance(row[1], float) for row in rows if row[1])
    assert status["state"] == "writing" and status["stored"] > 0
