"""Shared fixtures of the auth/audit tests: a minimal Flask + flask-smorest app with
``engine.auth.init_app``, a tiny protected route, a route that writes with an audit row,
users of every kind and a controllable clock. (Holds no tests itself.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask, request
from flask.testing import FlaskClient
from flask_smorest import Api, abort

from engine.audit import record
from engine.auth import AuthState, current_principal, init_app
from engine.auth.apikeys import create_api_key
from engine.auth.users import create_user
from engine.db import create_engine_for
from engine.settings import Settings
from metamodel import Model, load

SECRET = "test-secret-" + "k" * 40
PASSWORD = "correct horse battery"
#: cheap argon2id parameters so tests stay fast; the timing test uses the defaults
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)

MODULE_YAML = """
module: plant
roles:
  engineer:
    inherits: [operator]
entities:
  gauge:
    fields:
      code: {type: string, max_length: 20, required: true}
      reading: {type: decimal, precision: 10, scale: 2}
    permissions:
      admin: [read, create, update, delete]
      operator: [read, update]
      viewer: [read]
"""

demo_md = sa.MetaData()
demo_table = sa.Table("demo_item", demo_md,
                      sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                      sa.Column("name", sa.String(50), nullable=False),
                      sa.Column("qty", sa.Numeric(10, 2)))


class Clock:
    """A settable clock (timezone-aware UTC); starts at the real time."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


@dataclass
class Harness:
    app: Flask
    client: FlaskClient
    engine: sa.Engine
    state: AuthState
    clock: Clock
    model: Model
    users: dict[str, int] = field(default_factory=dict)
    api_key: str = ""

    def login(self, username: str, password: str = PASSWORD, **kw: Any) -> Any:
        return self.client.post("/api/auth/login",
                                json={"username": username, "password": password}, **kw)

    def tokens(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        r = self.login(username, password)
        assert r.status_code == 200, r.json
        return dict(r.json)

    def get(self, path: str, token: str | None = None, **kw: Any) -> Any:
        return self.client.get(path, headers=bearer(token) if token else {}, **kw)

    def audit_rows(self, **where: Any) -> list[dict[str, Any]]:
        from engine.audit.tables import audit_table as a
        q = sa.select(a).order_by(a.c.id)
        for k, v in where.items():
            q = q.where(a.c[k] == v)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def build_settings(tmp_path: Path, **over: Any) -> Settings:
    base: dict[str, Any] = dict(
        project=tmp_path, data_dir=tmp_path / "data", jwt_secret=SECRET,
        access_token_minutes=15, refresh_token_days=7, lockout_attempts=3, lockout_minutes=15,
        login_rate_limit="1000 per minute", api_rate_limit="1000 per minute",
        max_body_bytes=64 * 1024)
    base.update(over)
    return Settings(**base)


def build_app(engine: sa.Engine, settings: Settings, model: Model,
              hasher: PasswordHasher | None = FAST_HASHER,
              clock: Clock | None = None) -> tuple[Flask, AuthState]:
    app = Flask("campo-test")
    app.config.update(API_TITLE="Campo test", API_VERSION="1", OPENAPI_VERSION="3.0.3",
                      OPENAPI_URL_PREFIX="/api", OPENAPI_JSON_PATH="openapi.json",
                      OPENAPI_SWAGGER_UI_PATH="docs", OPENAPI_SWAGGER_UI_URL="/static/swagger/",
                      TESTING=True)
    api = Api(app)
    state = init_app(app, engine, settings, model, api=api, hasher=hasher, clock=clock)
    demo_md.create_all(engine)

    @app.get("/api/test/ping")
    def ping() -> Any:
        p = current_principal()
        return {"user": p.username, "roles": sorted(p.roles), "sites": sorted(p.sites),
                "service": p.is_service}

    @app.post("/api/test/items")
    def add_item() -> Any:
        body = request.get_json()
        with engine.begin() as conn:
            new_id = conn.execute(sa.insert(demo_table).values(
                name=body["name"], qty=body.get("qty"))).inserted_primary_key[0]
            after = {"id": new_id, "name": body["name"], "qty": body.get("qty")}
            record(conn, action="create", entity="demo.item", record_id=new_id, after=after)
            if body.get("fail"):
                abort(409, message="simulated failure after the audit row")
        return {"id": new_id}, 201

    @app.get("/api/health")
    def health() -> Any:
        return {"status": "healthy"}

    return app, state


def seed_users(h: Harness) -> None:
    now = h.clock()
    pw = h.state.passwords.hash(PASSWORD)
    with h.engine.begin() as conn:
        for name, roles, sites in (("alice", ["admin"], []), ("bob", ["operator"], ["pad7"]),
                                   ("sue", ["supervisor"], ["*"]),
                                   ("erin", ["engineer"], ["pad7", "pad9"]),
                                   ("vic", ["viewer"], [])):
            h.users[name] = create_user(conn, h.model, username=name, now=now,
                                        password_hash=pw, roles=roles, sites=sites)
        h.users["scada1"] = create_user(conn, h.model, username="scada1", now=now,
                                        roles=["scada"], sites=["pad7"], is_service=True)
        _kid, h.api_key = create_api_key(conn, h.users["scada1"], "rtu gateway", now)


@pytest.fixture
def auth_model(project: Any) -> Model:
    return load(project({"modules/plant.yaml": MODULE_YAML}))


def make_harness(db_url: str, tmp_path: Path, model: Model, **settings_over: Any) -> Harness:
    engine = create_engine_for(db_url)
    clock = Clock()
    settings = build_settings(tmp_path, **settings_over)
    app, state = build_app(engine, settings, model, clock=clock)
    h = Harness(app, app.test_client(), engine, state, clock, model)
    seed_users(h)
    return h


@pytest.fixture
def harness(db_url: str, tmp_path: Path, auth_model: Model) -> Iterator[Harness]:
    h = make_harness(db_url, tmp_path, auth_model)
    yield h
    h.engine.dispose()
