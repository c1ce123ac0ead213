"""Audit completeness of the generated API: every write path leaves exactly one audit row per
written record, in the write's transaction, with the right before/after diff (child rows
inside the parent's diff); a failed transaction leaves none. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.rbac import FIELD_YAML, Secured, secured_app, seed_field

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration

#: an entity whose records go when their asset goes (on_delete: cascade)
OPS_YAML = """
module: ops
entities:
  inspection:
    fields:
      asset: {type: link, to: field.asset, required: true, on_delete: cascade}
      result: {type: string, max_length: 40}
"""


@pytest.fixture
def s(project: Any, db_url: str, tmp_path: Path) -> Any:
    app = secured_app(project({"modules/field.yaml": FIELD_YAML, "modules/ops.yaml": OPS_YAML}),
                      db_url, tmp_path)
    seed_field(app)
    yield app
    app.engine.dispose()


def _changes(s: Secured, since: int) -> list[dict[str, Any]]:
    """Audit rows of record changes written after row ``since`` (logins left out)."""
    return [r for r in s.audit() if r["id"] > since and not r["action"].startswith("login")]


def _last_id(s: Secured) -> int:
    rows = s.audit()
    return rows[-1]["id"] if rows else 0


def test_create_update_delete_each_leave_one_row_with_the_diff(s: Secured) -> None:
    north = s.ids["north"]
    mark = _last_id(s)
    r = s.client.post("/api/field/asset", json={
        "tag": "A-1", "area": north, "cost": "12.5", "parts": [{"name": "pump", "qty": 2}]},
        headers={**s.headers["supervisor"], "X-Request-ID": "req-create-1"})
    assert r.status_code == 201
    aid = r.json["id"]
    [row] = _changes(s, mark)
    assert (row["action"], row["entity"], row["record_id"], row["username"]) == (
        "create", "field.asset", str(aid), "sue")
    assert row["before"] is None
    assert row["after"]["tag"] == "A-1" and row["after"]["cost"] == "12.50"
    assert row["after"]["parts"] == [{"id": r.json["parts"][0]["id"], "idx": 0, "name": "pump",
                                      "qty": 2}]
    assert not {"created_at", "updated_by", "version"} & set(row["after"])
    assert row["request_id"] == "req-create-1" == r.headers["X-Request-ID"]
    assert row["source_ip"] == "127.0.0.1"

    mark = _last_id(s)
    r = s.call("supervisor", "PATCH", f"/api/field/asset/{aid}", {"notes": "checked",
                                                                 "cost": "12.50"})
    assert r.status_code == 200
    [row] = _changes(s, mark)
    assert (row["action"], row["before"], row["after"]) == ("update", {"notes": None},
                                                            {"notes": "checked"})

    # child rows are part of the parent's diff
    mark = _last_id(s)
    part = r.json["parts"][0]
    r = s.call("supervisor", "PATCH", f"/api/field/asset/{aid}", {"parts": [
        {**part, "qty": 3}, {"name": "cable", "qty": 1}]})
    assert r.status_code == 200
    [row] = _changes(s, mark)
    assert row["before"] == {"parts": [part]}
    assert row["after"] == {"parts": r.json["parts"]}
    assert [p["qty"] for p in row["after"]["parts"]] == [3, 1]

    # PUT: one row naming only what changed
    mark = _last_id(s)
    body = {k: v for k, v in r.json.items() if k not in ("notes",)}
    r = s.call("supervisor", "PUT", f"/api/field/asset/{aid}", body)
    assert r.status_code == 200
    [row] = _changes(s, mark)
    assert (row["before"], row["after"]) == ({"notes": "checked"}, {"notes": None})

    # delete: the whole record, its child rows included; cascaded records are not separate
    assert s.call("supervisor", "POST", "/api/ops/inspection",
                  {"asset": aid, "result": "ok"}).status_code == 201
    mark = _last_id(s)
    final = s.call("supervisor", "GET", f"/api/field/asset/{aid}").json
    assert s.call("admin", "DELETE", f"/api/field/asset/{aid}").status_code == 204
    [row] = _changes(s, mark)
    assert (row["action"], row["record_id"], row["username"], row["after"]) == (
        "delete", str(aid), "ada", None)
    assert row["before"]["tag"] == "A-1" and row["before"]["parts"] == final["parts"]
    assert s.call("admin", "GET", "/api/ops/inspection?count=exact").json["count"] == 0


def test_bulk_rows_each_audited_and_all_or_nothing(s: Secured) -> None:
    north = s.ids["north"]
    mark = _last_id(s)
    r = s.call("supervisor", "POST", "/api/field/asset/bulk", [
        {"tag": f"B-{i}", "area": north, "parts": [{"name": f"p{i}"}]} for i in range(3)])
    assert r.status_code == 201
    rows = _changes(s, mark)
    assert [(a["action"], a["record_id"]) for a in rows] == [
        ("create", str(item["id"])) for item in r.json["items"]]
    assert [a["after"]["parts"][0]["name"] for a in rows] == ["p0", "p1", "p2"]

    failures = [
        # one invalid row: nothing is written
        ("POST", "/api/field/asset/bulk", [{"tag": "C-1", "area": north}, {"area": north}], 422),
        # a duplicate found by the database (unique tag) on the last row
        ("POST", "/api/field/asset/bulk", [{"tag": "C-2", "area": north},
                                           {"tag": "B-0", "area": north}], 409),
        # a link to a missing record
        ("POST", "/api/field/asset", {"tag": "C-3", "area": 99999}, 422),
    ]
    for method, url, body, status in failures:
        mark = _last_id(s)
        r = s.call("supervisor", method, url, body)
        assert r.status_code == status, (body, r.json)
        assert _changes(s, mark) == [], body
    assert s.call("admin", "GET", "/api/field/asset?tag__in=C-1,C-2,C-3&count=exact"
                  ).json["count"] == 0


def test_failed_updates_and_deletes_leave_no_row(s: Secured) -> None:
    n1, north = s.ids["N-1"], s.ids["north"]
    current = s.call("admin", "GET", f"/api/field/asset/{n1}").json
    cases = [
        # stale version
        ("PATCH", f"/api/field/asset/{n1}", {"notes": "late", "version": current["version"] - 1
                                             if current["version"] > 1 else 99}, 409),
        # unique conflict found by the database
        ("PATCH", f"/api/field/asset/{n1}", {"tag": "S-1"}, 409),
        # restrict: the area is still used by assets
        ("DELETE", f"/api/field/area/{north}", None, 409),
        # stale delete
        ("DELETE", f"/api/field/asset/{n1}?version=99", None, 409),
        # missing
        ("DELETE", "/api/field/asset/99999", None, 404),
        ("PATCH", "/api/field/asset/99999", {"notes": "x"}, 404),
    ]
    for method, url, body, status in cases:
        mark = _last_id(s)
        r = s.call("admin", method, url, body)
        assert r.status_code == status, (method, url, r.json)
        assert _changes(s, mark) == [], (method, url)
    assert s.call("admin", "GET", f"/api/field/asset/{n1}").json == current


def test_denials_are_audited_and_change_nothing(s: Secured) -> None:
    n1 = s.ids["N-1"]
    before = s.call("admin", "GET", f"/api/field/asset/{n1}").json
    mark = _last_id(s)
    assert s.call("viewer", "DELETE", f"/api/field/asset/{n1}").status_code == 403
    assert s.call("operator", "PATCH", f"/api/field/asset/{n1}",
                  {"notes": "sneaky", "rating": 1}).status_code == 403
    rows = _changes(s, mark)
    assert [(r["action"], r["username"], r["detail"]["action"]) for r in rows] == [
        ("permission.denied", "vera", "delete"), ("permission.denied", "otto", "update")]
    assert rows[1]["detail"]["reason"] == "field 'rating' is read-only for your roles"
    assert s.call("admin", "GET", f"/api/field/asset/{n1}").json == before
    # the trail cannot be changed through the API
    audit = s.call("admin", "GET", "/api/audit?entity=field.asset&action=permission.denied")
    assert audit.status_code == 200 and audit.json["total"] == 2
    aid = audit.json["items"][0]["id"]
    for method in ("PUT", "PATCH", "DELETE"):
        assert s.call("admin", method, f"/api/audit/{aid}", {}).status_code == 405
