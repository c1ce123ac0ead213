"""The example modules (``modules/finance``, ``modules/maintenance``) served by the REST API:
a journal entry must balance over its lines; a work order goes draft -> approved ->
in progress -> done with its rules. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.api import assert_error
from support.rules import Hooks

from engine.api import create_app
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_journal_entry_and_work_order(db_url: str) -> None:
    model = load_project(REPO)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    hooks = Hooks(roles=frozenset({"supervisor"}), user="sup")
    app = create_app(model, engine, authorize=hooks.authorize, current_user=hooks.current_user,
                     current_roles=hooks.current_roles)
    c = app.test_client()
    cash = c.post("/api/finance/account", json={"code": "1000", "name": "Cash",
                                                "kind": "asset"}).json["id"]
    sales = c.post("/api/finance/account", json={"code": "4000", "name": "Sales",
                                                 "kind": "income"}).json["id"]
    unbalanced = {"memo": "sale", "lines": [{"account": cash, "debit": "100"},
                                            {"account": sales, "credit": "90"}]}
    body = assert_error(c.post("/api/finance/journal_entry", json=unbalanced), 422)
    assert body["errors"]["json"]["lines"] == ["Debits must equal credits"]
    es = assert_error(c.post("/api/finance/journal_entry", json=unbalanced,
                             headers={"Accept-Language": "es"}), 422)
    assert es["errors"]["json"]["lines"] == ["El debe y el haber deben ser iguales"]
    both = {"lines": [{"account": cash, "debit": "5", "credit": "5"},
                      {"account": sales, "debit": "0", "credit": "0"}]}
    body = assert_error(c.post("/api/finance/journal_entry", json=both), 422)
    assert "lines.0._rules" in body["errors"]["json"]
    r = c.post("/api/finance/journal_entry", json={**unbalanced, "lines": [
        {"account": cash, "debit": "100"}, {"account": sales, "credit": "100"}]})
    assert r.status_code == 201, r.json
    je = r.json
    assert je["number"].startswith("JE-") and je["number"].endswith("-0001")
    assert je["total_debit"] == je["total_credit"] == "100.00"
    assert [ln["account_name"] for ln in je["lines"]] == ["Cash", "Sales"]
    posted = c.post(f"/api/finance/journal_entry/{je['id']}/actions/post")
    assert posted.status_code == 200 and posted.json["status"] == "posted"
    assert_error(c.patch(f"/api/finance/journal_entry/{je['id']}", json={"memo": "x"}), 422)

    eq = c.post("/api/maintenance/equipment", json={"code": "ESP-1", "name": "ESP pump 1",
                                                    "site": "PAD7", "kind": "esp"}).json
    r = c.post("/api/maintenance/work_order", json={
        "equipment": eq["id"], "kind": "corrective", "assigned_to": "olga",
        "lines": [{"description": "seal kit", "qty": "2", "unit_cost": "150"}]})
    assert r.status_code == 201, r.json
    wo = r.json
    assert wo["equipment_name"] == "ESP pump 1" and wo["total"] == "300.00"
    assert wo["age_days"] == 0 and wo["status"] == "draft"
    base = f"/api/maintenance/work_order/{wo['id']}"
    hooks.roles = frozenset({"operator"})
    assert_error(c.post(f"{base}/actions/approve"), 403)
    hooks.roles = frozenset({"supervisor"})
    assert c.post(f"{base}/actions/approve").json["status"] == "approved"
    assert c.post(f"{base}/actions/start", json={"values": {
        "started_at": "2025-05-01T08:00:00Z"}}).json["status"] == "in_progress"
    # finishing needs finished_at (requires) and, for a corrective order, a cause
    body = assert_error(c.post(f"{base}/actions/finish"), 422)
    assert {"finished_at", "cause"} <= set(body["errors"]["json"])
    body = assert_error(c.post(f"{base}/actions/finish", json={"values": {
        "finished_at": "2025-04-30T08:00:00Z", "cause": "sand"}}), 422)
    assert body["errors"]["json"] == {"finished_at": ["Finish cannot be before start"]}
    r = c.post(f"{base}/actions/finish", json={"comment": "done", "values": {
        "finished_at": "2025-05-01T18:00:00Z", "cause": "sand"}})
    assert r.status_code == 200 and r.json["status"] == "done", r.json
    assert [t["to"] for t in c.get(f"{base}/transitions").json["items"]] == [
        "approved", "in_progress", "done"]
    agg = c.get("/api/maintenance/work_order/aggregate?group_by=status&sum=total").json
    assert agg["items"] == [{"group": {"status": "done"}, "sum": {"total": "300.00"}}]
    engine.dispose()
