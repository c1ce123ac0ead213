"""``GET /api/audit`` applies the rules of the entity each row describes: a supervisor of
site ``sim_pad`` reads the rows of ``sim_pad`` records only, without the fields hidden from
supervisors (also inside child rows); logins, sessions and user administration rows are
for admins; admins read everything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.auth import PASSWORD, bearer
from test_workflow_auth import signed_in_app

from engine.auth.users import create_user

pytestmark = pytest.mark.integration

YAML = """
module: pads
entities:
  well:
    scope: self.site in user.sites
    fields:
      name: {type: string, max_length: 40, required: true}
      site: {type: string, max_length: 20}
      secret: {type: string, max_length: 40, hidden_for: [supervisor]}
      parts: {type: table, of: part}
      costs: {type: table, of: cost, hidden_for: [supervisor]}
    permissions:
      supervisor: [read, create, update, delete]
  part:
    child: true
    fields:
      name: {type: string, max_length: 40}
      serial: {type: string, max_length: 40}
  cost:
    child: true
    fields:
      amount: {type: int}
  memo:
    fields:
      text: {type: string, max_length: 40}
    permissions:
      supervisor: [create]
"""


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, dict[str, dict[str, str]]]]:
    app, model, engine, state = signed_in_app(db_url, tmp_path, YAML)
    with engine.begin() as conn:
        for name, role, sites in (("ada", "admin", []), ("boss", "supervisor", ["sim_pad"])):
            create_user(conn, model, username=name, now=state.now(), roles=[role],
                        password_hash=state.passwords.hash(PASSWORD), sites=sites)
    c = app.test_client()
    tokens = {}
    for name in ("ada", "boss"):
        r = c.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.json
        tokens[name] = bearer(r.json["access_token"])
    yield c, tokens
    engine.dispose()


def test_audit_rows_follow_the_rules_of_their_entity(env: Any) -> None:
    c, t = env
    ada, boss = t["ada"], t["boss"]
    ids = {}
    for site in ("sim_pad", "pad_b"):
        r = c.post("/api/pads/well", headers=ada, json={
            "name": site, "site": site, "secret": "s3cr3t",
            "parts": [{"name": "pump", "serial": "SN-1"}], "costs": [{"amount": 5}]})
        assert r.status_code == 201, r.json
        ids[site] = r.json["id"]
    r = c.patch(f"/api/pads/well/{ids['pad_b']}", headers=ada, json={"secret": "other"})
    assert r.status_code == 200
    assert c.post("/api/pads/memo", headers=boss, json={"text": "hi"}).status_code == 201
    r = c.post("/api/auth/users", headers=ada, json={
        "username": "olga", "password": "olga-secret-1", "roles": ["operator"]})
    assert r.status_code == 201, r.json

    everything = c.get("/api/audit?page_size=1000", headers=ada).json
    actions = {(i["action"], i["entity"]) for i in everything["items"]}
    assert {("login", "campo_session"), ("create", "campo_user"),
            ("create", "pads.memo")} <= actions
    assert any(i["record_id"] == str(ids["pad_b"]) for i in everything["items"])

    mine = c.get("/api/audit?page_size=1000", headers=boss).json
    assert mine["total"] == len(mine["items"]) == 1, mine  # the sim_pad create only
    row = mine["items"][0]
    assert (row["action"], row["entity"], row["record_id"]) == (
        "create", "pads.well", str(ids["sim_pad"]))
    assert "secret" not in row["after"] and row["after"]["name"] == "sim_pad"
    assert [p["name"] for p in row["after"]["parts"]] == ["pump"]
    assert "costs" not in row["after"]  # a hidden table field goes whole
    # filters cannot widen it, and single rows follow the same rule
    for query in ("entity=pads.well", f"record={ids['pad_b']}", "action=login.*",
                  "entity=campo_user", "entity=pads.memo"):
        got = c.get(f"/api/audit?{query}", headers=boss).json
        assert all(i["id"] == row["id"] for i in got["items"]), query
    for other in everything["items"]:
        r = c.get(f"/api/audit/{other['id']}", headers=boss)
        assert r.status_code == (200 if other["id"] == row["id"] else 404), other
    assert c.get(f"/api/audit/{row['id']}", headers=boss).json == row
    full = c.get(f"/api/audit/{row['id']}", headers=ada).json
    assert full["after"]["secret"] == "s3cr3t" and full["after"]["costs"][0]["amount"] == 5
    # a record moved out of the supervisor's scope takes its history with it
    r = c.patch(f"/api/pads/well/{ids['sim_pad']}", headers=ada, json={"site": "pad_b"})
    assert r.status_code == 200
    assert c.get("/api/audit", headers=boss).json["total"] == 0
