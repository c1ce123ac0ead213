"""Workflow actions behind real authentication (``engine.auth.hooks.api_hooks``): roles of
signed-in users decide, the transition and the audit trail name the user, a refusal is
audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from support.auth import FAST_HASHER, PASSWORD, bearer, build_settings
from support.rules import WORKS_YAML

from engine.api import create_app
from engine.audit import audit_table
from engine.auth.hooks import api_hooks, auth_init_hook
from engine.auth.users import create_user
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project

pytestmark = pytest.mark.integration


def signed_in_app(db_url: str, tmp_path: Path, yaml: str) -> tuple[Any, Any, sa.Engine, Any]:
    """The generated API behind real auth for one module file: (app, model, engine, state)."""
    root = tmp_path / "project"
    (root / "modules").mkdir(parents=True)
    (root / "modules" / "module.yaml").write_text(yaml, encoding="utf-8")
    model = load_project(root)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    settings = build_settings(tmp_path)
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model, hasher=FAST_HASHER)])
    return app, model, engine, app.extensions["campo_auth"]


def test_workflow_with_signed_in_users(db_url: str, tmp_path: Path) -> None:
    app, model, engine, state = signed_in_app(db_url, tmp_path, WORKS_YAML)
    with engine.begin() as conn:
        for name, role in (("boss", "foreman"), ("olga", "operator")):
            create_user(conn, model, username=name, now=state.now(),
                        password_hash=state.passwords.hash(PASSWORD), roles=[role])
    c = app.test_client()

    def token(name: str) -> dict[str, str]:
        r = c.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.json
        return bearer(r.json["access_token"])

    boss, olga = token("boss"), token("olga")
    r = c.post("/api/works/job", json={"assigned_to": "olga", "lines": [
        {"description": "labour", "qty": "1"}]}, headers=boss)
    assert r.status_code == 201, r.json
    job = r.json
    url = f"/api/works/job/{job['id']}/actions/approve"
    assert c.post(url, headers=olga).status_code == 403          # operator: not supervisor
    r = c.post(url, headers=boss)                                 # no amount: guard fails
    assert r.status_code == 422 and "_guard" in r.json["errors"]["json"]
    r = c.patch(f"/api/works/job/{job['id']}", headers=boss, json={
        "lines": [{"id": job["lines"][0]["id"], "description": "pump", "qty": "1",
                   "item": None}]})
    assert r.status_code == 200, r.json
    item = c.post("/api/works/item", json={"code": "P", "price": "99.00"}, headers=boss).json
    r = c.patch(f"/api/works/job/{job['id']}", headers=boss, json={
        "lines": [{"description": "pump", "item": item["id"]}]})
    assert r.status_code == 200 and r.json["total"] == "99.00", r.json
    r = c.post(url, json={"comment": "go"}, headers=boss)       # foreman inherits supervisor
    assert r.status_code == 200, r.json
    assert r.json["status"] == "approved" and r.json["updated_by"] == "boss"
    history = c.get(f"/api/works/job/{job['id']}/transitions", headers=olga).json["items"]
    assert [(h["action"], h["user"], h["comment"]) for h in history] == [
        ("approve", "boss", "go")]
    actions = c.get(f"/api/works/job/{job['id']}/actions", headers=olga).json["actions"]
    assert {a["action"]: a["allowed"] for a in actions} == {"finish": True, "cancel": False}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_table.c.action, audit_table.c.username,
                                      audit_table.c.record_id)
                            .where(audit_table.c.action.like("workflow.%")
                                   | (audit_table.c.action == "permission.denied"))
                            .order_by(audit_table.c.id)).all()
    assert ("workflow.approve", "boss", str(job["id"])) in [tuple(r) for r in rows]
    assert any(r.action == "permission.denied" and r.username == "olga" for r in rows)
    engine.dispose()


SITES_YAML = """
module: ops
entities:
  ticket:
    fields:
      site: {type: string, max_length: 20, required: true}
      note: {type: string, max_length: 80}
      opened_by: {type: string, max_length: 150, default: '=user.username'}
    validations:
      - rule: "self.site in user.sites or has_role('admin')"
        message: {es: "Solo en sus locaciones", en: "Only at your own sites"}
        field: site
"""


def test_expressions_see_the_signed_in_users_sites_and_name(db_url: str,
                                                            tmp_path: Path) -> None:
    app, model, engine, state = signed_in_app(db_url, tmp_path, SITES_YAML)
    with engine.begin() as conn:
        create_user(conn, model, username="nora", now=state.now(),
                    password_hash=state.passwords.hash(PASSWORD), roles=["supervisor"],
                    sites=["north"])
    c = app.test_client()
    r = c.post("/api/auth/login", json={"username": "nora", "password": PASSWORD})
    nora = bearer(r.json["access_token"])
    ok = c.post("/api/ops/ticket", json={"site": "north"}, headers=nora)
    assert ok.status_code == 201, ok.json
    assert ok.json["opened_by"] == "nora"
    refused = c.post("/api/ops/ticket", json={"site": "south"}, headers=nora)
    assert refused.status_code == 422
    assert "Only at your own sites" in str(refused.json["errors"]["json"]["site"])
    engine.dispose()
