"""The RBAC matrix: every built-in role x every action on ``field.asset`` (YAML in
``support.rbac.FIELD_YAML``), through real logins against the app ``campo serve``
builds, on SQLite and PostgreSQL.

Entity actions (read, create, update, delete, export), aggregates and link expansion are
checked against tables written here by hand from the YAML, as are the field rules (``cost``
hidden from operator, viewer and scada; ``rating`` and ``parts`` read-only for operator) and
the row scope (an asset is seen by the sites of its area: operator, viewer and scada have
``north``; supervisor ``*``; admin everything).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.rbac import FIELD_YAML, USERS, Secured, secured_app, seed_field

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration

ROLES = ("admin", "supervisor", "operator", "viewer", "scada")
#: field.asset's permissions, as the YAML says (admin keeps everything unless listed)
ALLOWED: dict[str, set[str]] = {
    "admin": {"read", "create", "update", "delete", "export"},
    "supervisor": {"read", "create", "update", "delete", "export"},
    "operator": {"read", "update"},
    "viewer": {"read", "export"},
    "scada": {"read"},
}
#: assets each role sees (row scope through the area's code)
VISIBLE = {"admin": {"N-1", "S-1"}, "supervisor": {"N-1", "S-1"}, "operator": {"N-1"},
           "viewer": {"N-1"}, "scada": {"N-1"}}
SEES_COST = {"admin", "supervisor"}


def _outcome(status: int) -> str:
    return {200: "ok", 201: "ok", 204: "ok", 403: "denied", 404: "not found"}.get(
        status, str(status))


def _matrix(s: Secured, role: str) -> dict[str, Any]:
    """What ``role`` may do, observed through the API."""
    n1, s1, north = s.ids["N-1"], s.ids["S-1"], s.ids["north"]
    out: dict[str, Any] = {}
    r = s.call(role, "GET", "/api/field/asset?count=exact&sort=tag")
    out["read"] = _outcome(r.status_code)
    if r.status_code == 200:
        out["rows"] = {i["tag"] for i in r.json["items"]}
        out["count"] = r.json["count"]
        out["cost shown"] = all("cost" in i for i in r.json["items"])
    out["get N-1"] = _outcome(s.call(role, "GET", f"/api/field/asset/{n1}").status_code)
    out["get S-1"] = _outcome(s.call(role, "GET", f"/api/field/asset/{s1}").status_code)
    r = s.call(role, "POST", "/api/field/asset", {"tag": f"C-{role}", "area": north})
    out["create"] = _outcome(r.status_code)
    created = r.json["id"] if r.status_code == 201 else None
    r = s.call(role, "PATCH", f"/api/field/asset/{n1}", {"notes": f"by {role}"})
    out["update"] = _outcome(r.status_code)
    r = s.call(role, "DELETE", f"/api/field/asset/{created or n1}")
    out["delete"] = _outcome(r.status_code)
    r = s.call(role, "GET", "/api/field/asset/export?format=json&sort=tag")
    out["export"] = _outcome(r.status_code)
    if r.status_code == 200:
        out["exported"] = {i["tag"] for i in r.json} - {f"C-{x}" for x in ROLES}
        out["cost exported"] = all("cost" in i for i in r.json)
    r = s.call(role, "GET", "/api/field/asset/aggregate?group_by=status&count")
    out["aggregate"] = _outcome(r.status_code)
    if r.status_code == 200:
        out["aggregated"] = sum(g["count"] for g in r.json["items"])
    r = s.call(role, "GET", "/api/field/asset?expand=backup,area&tag__in=N-1,S-1&sort=tag")
    if r.status_code == 200:
        items = {i["tag"]: i["_expanded"] for i in r.json["items"]}
        out["expand"] = {tag: (e["area"]["code"], (e["backup"] or {}).get("code"))
                         for tag, e in items.items()}
    return out


def _expected(role: str) -> dict[str, Any]:
    allowed = ALLOWED[role]

    def may(action: str) -> str:
        return "ok" if action in allowed else "denied"

    out: dict[str, Any] = {"read": may("read"), "rows": VISIBLE[role],
                           "count": len(VISIBLE[role]), "cost shown": role in SEES_COST,
                           "get N-1": "ok", "get S-1": "ok" if "S-1" in VISIBLE[role]
                           else "not found", "create": may("create"), "update": may("update"),
                           "delete": may("delete"), "export": may("export"),
                           "aggregate": may("read"), "aggregated": len(VISIBLE[role])}
    if "export" in allowed:
        out["exported"] = VISIBLE[role]
        out["cost exported"] = role in SEES_COST
    # S-1's backup is empty; N-1's backup is the south area, outside the north-only scopes
    out["expand"] = {"N-1": ("north", "south" if role in ("admin", "supervisor") else None)}
    if "S-1" in VISIBLE[role]:
        out["expand"]["S-1"] = ("south", None)
    return out


def test_yaml_permissions_are_the_matrix(project: Any) -> None:
    from engine.rules import load_project

    model = load_project(project({"modules/field.yaml": FIELD_YAML}))
    ent = model.entity("field.asset")
    for role in ROLES:
        assert set(ent.permissions[role]) == ALLOWED[role], role


def test_rbac_matrix(project: Any, db_url: str, tmp_path: Path) -> None:
    s = secured_app(project({"modules/field.yaml": FIELD_YAML}), db_url, tmp_path)
    seed_field(s)
    denials_before = len(s.audit(action="permission.denied"))
    got = {role: _matrix(s, role) for role in ROLES}
    assert got == {role: _expected(role) for role in ROLES}
    # every 403 above is in the audit trail, naming the missing permission
    denials = s.audit(action="permission.denied")[denials_before:]
    expected_denials = sum(1 for role in ROLES for a in ("create", "update", "delete", "export")
                           if a not in ALLOWED[role])
    assert len(denials) == expected_denials
    assert {d["username"] for d in denials} == {USERS[r][0] for r in ("operator", "viewer",
                                                                     "scada")}
    assert all(d["detail"]["reason"].startswith("missing permission: ") for d in denials)
    s.engine.dispose()


def test_field_rules(project: Any, db_url: str, tmp_path: Path) -> None:
    s = secured_app(project({"modules/field.yaml": FIELD_YAML}), db_url, tmp_path)
    seed_field(s)
    n1 = s.ids["N-1"]
    url = f"/api/field/asset/{n1}"
    # hidden: not filterable, sortable, selectable, writable; same answers as unknown fields
    for query, param in (("cost=1", "cost"), ("cost__gt=1", "cost__gt"), ("sort=-cost", "sort"),
                         ("fields=tag,cost", "fields")):
        r = s.call("operator", "GET", f"/api/field/asset?{query}")
        assert r.status_code == 400 and param in r.json["errors"]["query"], query
        assert s.call("supervisor", "GET", f"/api/field/asset?{query}").status_code == 200
    r = s.call("operator", "GET", "/api/field/asset/aggregate?group_by=status&sum=cost")
    assert r.status_code == 400 and "cost" in r.json["message"]
    r = s.call("operator", "PATCH", url, {"cost": "1.00"})
    assert r.status_code == 422 and r.json["errors"]["json"] == {"cost": ["Unknown field."]}
    assert "cost" not in s.call("operator", "GET", url).json
    # read-only: unchanged values may be sent back; a change is a 403 naming the field
    current = s.call("operator", "GET", url).json
    r = s.call("operator", "PATCH", url, {"rating": current["rating"], "notes": "same rating"})
    assert r.status_code == 200, r.json
    r = s.call("operator", "PATCH", url, {"rating": 4})
    assert r.status_code == 403
    assert r.json["message"] == "field 'rating' is read-only for your roles"
    r = s.call("operator", "PATCH", url, {"parts": [{"name": "cable", "qty": 2}]})
    assert r.status_code == 403 and "'parts'" in r.json["message"]
    denied = s.audit(action="permission.denied")[-1]
    assert (denied["username"], denied["entity"], denied["record_id"]) == ("otto",
                                                                            "field.asset",
                                                                            str(n1))
    assert denied["detail"]["reason"] == "field 'parts' is read-only for your roles"
    # a PUT without the hidden and read-only fields keeps their values
    # (backup stays linked to the south area, outside the scope: keeping a link is allowed)
    current = s.call("operator", "GET", url).json
    body = {k: v for k, v in current.items() if k not in ("rating", "parts", "notes")}
    r = s.call("operator", "PUT", url, body)
    assert r.status_code == 200, r.json
    assert r.json["backup"] == s.ids["south"]
    full = s.call("admin", "GET", url).json
    assert (full["cost"], full["rating"], [p["name"] for p in full["parts"]]) == (
        "100.50", 3, ["motor"])
    assert full["notes"] is None  # left out of the PUT: back to its default
    # the supervisor may change both
    r = s.call("supervisor", "PATCH", url, {"rating": 5, "cost": "7.25"})
    assert r.status_code == 200 and (r.json["rating"], r.json["cost"]) == (5, "7.25")
    s.engine.dispose()


def test_row_scope_on_writes_and_links(project: Any, db_url: str, tmp_path: Path) -> None:
    s = secured_app(project({"modules/field.yaml": FIELD_YAML}), db_url, tmp_path)
    seed_field(s)
    n1, s1, south = s.ids["N-1"], s.ids["S-1"], s.ids["south"]
    # outside the scope: as if it did not exist
    for method, body in (("GET", None), ("PATCH", {"notes": "x"}), ("PUT", {"tag": "S-1",
                                                                            "area": south})):
        r = s.call("operator", method, f"/api/field/asset/{s1}", body)
        assert r.status_code == 404, (method, r.json)
    # linking to a record outside the scope (N-1's backup was south: the admin clears it)
    assert s.call("admin", "PATCH", f"/api/field/asset/{n1}", {"backup": None}).status_code \
        == 200
    r = s.call("operator", "PATCH", f"/api/field/asset/{n1}", {"backup": south})
    assert r.status_code == 422
    assert r.json["errors"]["json"]["backup"] == [
        f"field.area {south} does not exist or is outside your scope"]
    r = s.call("operator", "PATCH", f"/api/field/asset/{n1}", {"area": south})
    assert r.status_code == 422  # the area itself is outside the scope
    # writing a record outside one's own scope is refused, and nothing changes
    r = s.call("operator", "POST", "/api/field/well", {"name": "W-9", "site": "south"})
    assert r.status_code == 403
    assert r.json["message"] == ("missing permission: create of a record outside your scope "
                                 "of field.well")
    r = s.call("operator", "POST", "/api/field/well", {"name": "W-1", "site": "north"})
    assert r.status_code == 201
    well = r.json["id"]
    r = s.call("operator", "PATCH", f"/api/field/well/{well}", {"site": "south"})
    assert r.status_code == 403 and "outside your scope" in r.json["message"]
    assert s.call("admin", "GET", f"/api/field/well/{well}").json["site"] == "north"
    assert [w["name"] for w in s.call("admin", "GET", "/api/field/well").json["items"]] == [
        "W-1"]
    assert [a["action"] for a in s.audit(entity="field.well")] == [
        "permission.denied", "create", "permission.denied"]
    # child rows: their links are checked against the scope too, errors name the row
    r = s.call("operator", "PATCH", f"/api/field/well/{well}", {"visits": [
        {"area": s.ids["north"], "note": "ok"}, {"area": south, "note": "not mine"}]})
    assert r.status_code == 422
    assert list(r.json["errors"]["json"]) == ["visits.1.area"]
    # bulk: one record outside the scope refuses the whole request
    r = s.call("operator", "POST", "/api/field/well/bulk", [
        {"name": "W-2", "site": "north"}, {"name": "W-3", "site": "south"}])
    assert r.status_code == 403
    r = s.call("operator", "POST", "/api/field/well/bulk", [
        {"name": "W-4", "site": "north", "visits": [{"area": south}]}])
    assert r.status_code == 422 and list(r.json["errors"]["json"]["0"]) == ["visits.0.area"]
    assert s.call("admin", "GET", "/api/field/well?count=exact").json["count"] == 1
    # the supervisor (site *) may link anywhere; the admin sees everything
    r = s.call("supervisor", "PATCH", f"/api/field/asset/{s1}", {"backup": s.ids["north"]})
    assert r.status_code == 200
    # created_by scopes: each operator sees their own log entries, the supervisor all
    for role in ("operator", "supervisor"):
        r = s.call(role, "POST", "/api/field/log_entry", {"text": f"by {role}"})
        assert r.status_code == 201
    seen = {role: [e["text"] for e in s.call(role, "GET", "/api/field/log_entry?sort=id")
                   .json["items"]] for role in ("operator", "supervisor")}
    assert seen == {"operator": ["by operator"], "supervisor": ["by operator", "by supervisor"]}
    sup_entry = s.call("supervisor", "GET", "/api/field/log_entry?text=by supervisor").json
    entry_id = sup_entry["items"][0]["id"]
    assert s.call("operator", "DELETE", f"/api/field/log_entry/{entry_id}").status_code == 404
    assert s.call("viewer", "GET", "/api/field/log_entry").status_code == 403
    s.engine.dispose()


def test_meta_shows_what_the_caller_may_read(project: Any, db_url: str, tmp_path: Path
                                             ) -> None:
    s = secured_app(project({"modules/field.yaml": FIELD_YAML}), db_url, tmp_path)
    for role in ROLES:
        r = s.call(role, "GET", "/api/meta")
        assert r.status_code == 200
        ents = {e["qualname"]: e for m in r.json["modules"] for e in m["entities"]}
        readers = {"field.area", "field.asset"} | (
            {"field.log_entry", "field.well"} if role in ("admin", "supervisor", "operator")
            else set())
        assert set(ents) == readers, role
        asset = ents["field.asset"]
        assert set(asset["allowed"]) == ALLOWED[role]
        names = [f["name"] for f in asset["fields"]]
        assert ("cost" in names) == (role in SEES_COST), role
        assert asset["readonly_fields"] == (["parts", "rating"] if role == "operator" else [])
        one = s.call(role, "GET", "/api/meta/field/log_entry")
        assert one.status_code == (200 if "field.log_entry" in readers else 404), role
        assert s.call(role, "GET", "/api/meta/field/part").status_code == 200
    s.engine.dispose()


PERMIT_YAML = """
module: permits
entities:
  permit:
    fields:
      title: {type: string, max_length: 40, required: true}
      status: {type: enum, values: [draft, submitted], default: draft}
      budget: {type: int, readonly_for: [operator]}
      secret: {type: string, max_length: 20, hidden_for: [operator]}
    workflow:
      field: status
      transitions:
        - {action: submit, from: [draft], to: submitted, roles: [operator, supervisor]}
    permissions:
      supervisor: [read, create, update]
      operator: [read, create, update]
"""


def test_field_rules_in_workflow_actions(project: Any, sqlite_url: str, tmp_path: Path
                                         ) -> None:
    s = secured_app(project({"modules/field.yaml": FIELD_YAML,
                             "modules/permits.yaml": PERMIT_YAML}), sqlite_url, tmp_path)
    r = s.call("supervisor", "POST", "/api/permits/permit", {"title": "hot work", "budget": 5,
                                                             "secret": "x"})
    assert r.status_code == 201, r.json
    url = f"/api/permits/permit/{r.json['id']}/actions/submit"
    r = s.call("operator", "POST", url, {"values": {"budget": 9}})
    assert (r.status_code, r.json["message"]) == (403, "field 'budget' is read-only for your "
                                                       "roles")
    assert s.audit(action="permission.denied")[-1]["detail"]["action"] == "workflow.submit"
    r = s.call("operator", "POST", url, {"values": {"secret": "y"}})
    assert r.status_code == 422 and r.json["errors"]["json"] == {"secret": ["Unknown field."]}
    r = s.call("operator", "POST", url, {"values": {"budget": 5}, "comment": "ready"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "submitted" and "secret" not in r.json
    [row] = s.audit(action="workflow.submit")
    assert (row["username"], row["before"], row["after"]) == ("otto", {"status": "draft"},
                                                               {"status": "submitted"})
    s.engine.dispose()
