"""Shared pieces of the RBAC, audit and export tests: the real app (``create_app`` with every
auth hook, as ``campo serve`` builds it), users of every built-in role logged in through
``POST /api/auth/login`` (the scada service account with its API key), and a YAML model with
permissions, field rules and row scopes. (Holds no tests itself.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from engine.api import create_app
from engine.audit import audit_table
from engine.auth import api_hooks, auth_init_hook
from engine.auth.apikeys import create_api_key
from engine.auth.users import create_user
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project
from metamodel import Model
from support.auth import FAST_HASHER, PASSWORD, build_settings

#: The example the matrix is about. Sites: ``north`` and ``south`` areas; an asset belongs to
#: the sites of its area (one link hop); ``backup`` links to an area too (expansion and link
#: writes across the scope).
FIELD_YAML = """
module: field
label: {es: Campo, en: Field}
entities:
  area:
    scope: self.code in user.sites
    fields:
      code: {type: string, max_length: 20, required: true, unique: true}
      name: {type: string, max_length: 80}
    permissions:
      supervisor: [read, create, update, delete, export]
      operator: [read]
      viewer: [read]
      scada: [read]
  asset:
    scope: self.area.code in user.sites
    fields:
      tag: {type: string, max_length: 20, required: true, unique: true}
      area: {type: link, to: area, required: true, on_delete: restrict}
      backup: {type: link, to: area, on_delete: set_null}
      status: {type: enum, values: [active, retired], default: active}
      cost: {type: decimal, precision: 12, scale: 2, hidden_for: [operator, viewer, scada]}
      rating: {type: int, readonly_for: [operator]}
      notes: {type: text}
      parts: {type: table, of: part, readonly_for: [operator]}
    permissions:
      supervisor: [read, create, update, delete, export]
      operator: [read, update]
      viewer: [read, export]
      scada: [read]
  part:
    child: true
    fields:
      name: {type: string, max_length: 40, required: true}
      qty: {type: int, default: 1}
  well:
    scope: self.site in user.sites
    fields:
      name: {type: string, max_length: 40, required: true}
      site: {type: string, max_length: 20}
      visits: {type: table, of: visit}
    permissions:
      supervisor: [read, create, update, delete]
      operator: [read, create, update]
  visit:
    child: true
    fields:
      area: {type: link, to: area}
      note: {type: string, max_length: 40}
  log_entry:
    scope: self.created_by == user.username or has_role('supervisor')
    fields:
      text: {type: string, max_length: 200, required: true}
    permissions:
      supervisor: [read, create, update, delete, export]
      operator: [read, create, update, delete]
      viewer: []
"""

#: role -> sites of the matrix users
USERS: dict[str, tuple[str, list[str]]] = {
    "admin": ("ada", []),
    "supervisor": ("sue", ["*"]),
    "operator": ("otto", ["north"]),
    "viewer": ("vera", ["north"]),
    "scada": ("rtu", ["north"]),
}


@dataclass
class Secured:
    """The real app with auth, its database and one logged-in client header per role."""

    app: Flask
    client: FlaskClient
    engine: sa.Engine
    model: Model
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def call(self, role: str, method: str, url: str, body: Any = None) -> Any:
        """One request as ``role``."""
        kw: dict[str, Any] = {"headers": self.headers[role]}
        if body is not None:
            kw["json"] = body
        return self.client.open(url, method=method, **kw)

    def audit(self, **where: Any) -> list[dict[str, Any]]:
        """Audit rows (oldest first) matching ``where``."""
        q = sa.select(audit_table).order_by(audit_table.c.id)
        for k, v in where.items():
            q = q.where(audit_table.c[k] == v)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def count_audit(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(audit_table))
                       .scalar_one())


def secured_app(root: Path, db_url: str, tmp_path: Path) -> Secured:
    """Build the app for the project at ``root`` and log every role's user in."""
    model = load_project(root)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    settings = build_settings(tmp_path)
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model, hasher=FAST_HASHER)])
    state = app.extensions["campo_auth"]
    s = Secured(app, app.test_client(), engine, model)
    pw = state.passwords.hash(PASSWORD)
    with engine.begin() as conn:
        for role, (name, sites) in USERS.items():
            service = role == "scada"
            uid = create_user(conn, model, username=name, now=state.now(),
                              password_hash=None if service else pw, roles=[role],
                              sites=sites, is_service=service)
            if service:
                _kid, key = create_api_key(conn, uid, "matrix", state.now())
                s.headers[role] = {"X-API-Key": key}
    for role, (name, _sites) in USERS.items():
        if role == "scada":
            continue
        r = s.client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.json
        s.headers[role] = {"Authorization": f"Bearer {r.json['access_token']}"}
    return s


def seed_field(s: Secured) -> None:
    """Areas north/south and one asset in each (created by the admin through the API)."""
    for code in ("north", "south"):
        r = s.call("admin", "POST", "/api/field/area", {"code": code, "name": code.title()})
        assert r.status_code == 201, r.json
        s.ids[code] = r.json["id"]
    for tag, area, backup in (("N-1", "north", "south"), ("S-1", "south", None)):
        body = {"tag": tag, "area": s.ids[area], "cost": "100.50", "rating": 3,
                "backup": s.ids[backup] if backup else None,
                "parts": [{"name": "motor", "qty": 1}]}
        r = s.call("admin", "POST", "/api/field/asset", body)
        assert r.status_code == 201, r.json
        s.ids[tag] = r.json["id"]
