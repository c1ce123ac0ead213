"""Shared pieces of the oil-field module tests: the repository's project behind the real API
and real logins (``create_app`` with every auth hook, as ``campo serve`` builds it), users
of the built-in roles with sites, and a small field (two pads on one facility, three wells)
created through the REST API. (Holds no tests itself.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from engine.api import create_app
from engine.auth.hooks import api_hooks, auth_init_hook
from engine.auth.users import create_user
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project
from metamodel import Model
from support.auth import FAST_HASHER, PASSWORD, bearer, build_settings

REPO = Path(__file__).resolve().parents[2]
#: name -> (roles, sites)
USERS = {
    "sam": (["supervisor"], ["*"]),
    "eva": (["engineer"], ["pad_a"]),
    "otto": (["operator"], ["pad_a", "pad_b"]),
    "vera": (["viewer"], ["pad_b"]),
}


@dataclass
class Field:
    """The signed-in client, tokens by user name, the engine and the model."""

    client: FlaskClient
    headers: dict[str, dict[str, str]]
    engine: sa.Engine
    model: Model

    def post(self, who: str, url: str, body: Any = None) -> Any:
        return self.client.post(url, json=body, headers=self.headers[who])

    def ok(self, who: str, url: str, body: Any = None, status: int = 201) -> dict[str, Any]:
        r = self.post(who, url, body)
        assert r.status_code == status, (url, r.status_code, r.json)
        return dict(r.json)

    def get(self, who: str, url: str) -> Any:
        return self.client.get(url, headers=self.headers[who])

    def patch(self, who: str, url: str, body: Any) -> Any:
        return self.client.patch(url, json=body, headers=self.headers[who])


def signed_in_field(db_url: str, tmp_path: Path) -> Field:
    """The repository's model on a fresh database, behind real auth, users logged in."""
    model = load_project(REPO)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    settings = build_settings(tmp_path)
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model, hasher=FAST_HASHER)])
    state = app.extensions["campo_auth"]
    with engine.begin() as conn:
        for name, (roles, sites) in USERS.items():
            create_user(conn, model, username=name, now=state.now(), roles=roles, sites=sites,
                        password_hash=state.passwords.hash(PASSWORD))
    client = app.test_client()
    headers = {}
    for name in USERS:
        r = client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.json
        headers[name] = bearer(r.json["access_token"])
    return Field(client, headers, engine, model)


def small_field(f: Field) -> dict[str, Any]:
    """One oil field, facility F1, pads pad_a (wells A, B) and pad_b (well C), by ``sam``."""
    of = f.ok("sam", "/api/wells/oil_field", {"code": "LA", "name": "Loma Alta"})
    fac = f.ok("sam", "/api/wells/facility", {"code": "F1", "name": "Batería 1",
                                              "oil_field": of["id"], "site": "pad_a"})
    pads = {code: f.ok("sam", "/api/wells/pad", {"code": code, "name": code.upper(),
                                                 "oil_field": of["id"], "facility": fac["id"]})
            for code in ("pad_a", "pad_b")}
    wells = {}
    for name, pad, uwi in (("A", "pad_a", "AR-LA-0001"), ("B", "pad_a", "AR-LA-0002"),
                           ("C", "pad_b", "AR-LA-0003")):
        wells[name] = f.ok("sam", "/api/wells/well", {
            "uwi": uwi, "name": name, "pad": pads[pad]["id"], "well_type": "oil_producer",
            "lift_method": "ESP"})
    return {"oil_field": of, "facility": fac, "pads": pads, "wells": wells}


def signed_in_export(root: Path, db_url: str, tmp_path: Path) -> tuple[bytes, bytes]:
    """The WITSML export of one drilled well's reports and the PRODML export of one day of
    an already loaded database, fetched by an admin through the API."""
    model = load_project(root)
    engine = create_engine_for(db_url)
    settings = build_settings(tmp_path)
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model, hasher=FAST_HASHER)])
    state = app.extensions["campo_auth"]
    with engine.begin() as conn:
        create_user(conn, model, username="ada", now=state.now(), roles=["admin"], sites=["*"],
                    password_hash=state.passwords.hash(PASSWORD))
    c = app.test_client()
    r = c.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    h = bearer(r.json["access_token"])
    well = c.get("/api/wells/well?uwi=AR-NQ-EP-0039", headers=h).json["items"][0]
    w = c.get(f"/api/drilling/drilling_report/exports/witsml?well={well['id']}"
              "&sort=report_date", headers=h)
    p = c.get("/api/production/daily_production/exports/prodml?prod_date=2026-11-29",
              headers=h)
    assert w.status_code == 200 and p.status_code == 200, (w.data[:300], p.data[:300])
    engine.dispose()
    return w.data, p.data
