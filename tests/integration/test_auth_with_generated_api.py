"""engine.auth plugged into the generated API (``engine.api.create_app``) through its
``authorize``/``current_user``/``on_init`` hooks: the integration the app factory will use."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support.auth import FAST_HASHER, PASSWORD, bearer, build_settings

from engine.api import create_app
from engine.audit import audit_table
from engine.auth import auth_init_hook, authorize, current_username
from engine.auth.users import create_user
from engine.db import build_metadata, create_engine_for
from metamodel import Model

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration


def test_generated_crud_behind_auth(db_url: str, tmp_path: Path, auth_model: Model) -> None:
    engine = create_engine_for(db_url)
    build_metadata(auth_model).create_all(engine)
    settings = build_settings(tmp_path)
    app = create_app(auth_model, engine, settings, authorize=authorize,
                     current_user=current_username,
                     on_init=[auth_init_hook(engine, settings, auth_model, hasher=FAST_HASHER)])
    state = app.extensions["campo_auth"]
    with engine.begin() as conn:
        for name, role in (("alice", "admin"), ("bob", "operator")):
            create_user(conn, auth_model, username=name, now=state.now(),
                        password_hash=state.passwords.hash(PASSWORD), roles=[role])
    c = app.test_client()

    def token(name: str) -> dict[str, str]:
        r = c.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200
        return bearer(r.json["access_token"])

    assert c.get("/api/plant/gauge").status_code == 401
    assert c.get("/api/health").status_code == 200  # public; healthy: no MQTT configured
    docs = c.get("/api/docs")
    assert docs.status_code == 200
    assert "'unsafe-inline'" in docs.headers["Content-Security-Policy"]
    spec = c.get("/api/openapi.json").json
    assert "/api/auth/login" in spec["paths"] and "/api/plant/gauge" in spec["paths"]

    alice, bob = token("alice"), token("bob")
    r = c.post("/api/plant/gauge", json={"code": "G-1", "reading": "12.50"}, headers=alice)
    assert r.status_code == 201, r.json
    gid = r.json["id"]
    with engine.connect() as conn:
        by = conn.execute(sa.text("SELECT created_by FROM plant_gauge")).scalar_one()
    assert by == "alice"
    assert c.get("/api/plant/gauge", headers=bob).status_code == 200
    r = c.delete(f"/api/plant/gauge/{gid}", headers=bob)  # operator: read, update only
    assert r.status_code == 403
    with engine.connect() as conn:
        denied = conn.execute(sa.select(audit_table.c.username, audit_table.c.entity,
                                        audit_table.c.detail)
                              .where(audit_table.c.action == "permission.denied")).one()
    assert denied.username == "bob" and denied.entity == "plant.gauge"
    assert denied.detail["action"] == "delete"
    engine.dispose()
