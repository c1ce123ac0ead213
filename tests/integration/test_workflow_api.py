"""Workflow actions through the REST API on SQLite and PostgreSQL: allowed and denied by
role, denied by guard and by ``requires``, wrong state, direct state writes refused,
per-state editable fields, stale versions, the recorded history and the audit hook."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from support.api import assert_error
from support.rules import RulesEnv, make_rules_env, seed

from engine.api.naming import transition_table

pytestmark = pytest.mark.integration


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> RulesEnv:
    e = make_rules_env(tmp_path / "project", db_url)
    yield e
    e.engine.dispose()


def _job(env: RulesEnv, ids: dict[str, int], **extra: object) -> dict[str, object]:
    body = {"crew": ids["C1"], "lines": [{"item": ids["BOLT"], "description": "bolts",
                                          "qty": "4"}], **extra}
    return env.create("job", body)


def _act(env: RulesEnv, job_id: object, action: str, body: object = None, **kw: object
         ) -> object:
    url = f"/api/works/job/{job_id}/actions/{action}"
    if body is None:
        return env.client.post(url, **kw)
    return env.client.post(url, json=body, **kw)


def test_transition_allowed_and_denied_by_role(env: RulesEnv) -> None:
    ids = seed(env)
    job = _job(env, ids, assigned_to="ana")
    env.hooks.roles = frozenset({"operator"})
    body = assert_error(_act(env, job["id"], "approve"), 403)
    assert "supervisor" in body["message"]
    assert env.get(f"job/{job['id']}").json["status"] == "draft"
    # an inherited role counts: the hook gives effective roles (foreman inherits supervisor)
    env.hooks.roles = frozenset({"foreman", "supervisor"})
    env.hooks.user = "sam"
    r = _act(env, job["id"], "approve", {"comment": "looks fine", "version": job["version"]})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "approved" and r.json["version"] == job["version"] + 1
    assert r.json["updated_by"] == "sam" and r.json["total"] == "10.00"
    # operator may finish; a transition without roles needs the update permission
    env.hooks.roles = frozenset({"operator"})
    env.hooks.denied = {("works.job", "update")}
    assert_error(_act(env, job["id"], "cancel"), 403)
    r = _act(env, job["id"], "finish", {})
    assert r.status_code == 200 and r.json["status"] == "done"
    # admin may run anything
    other = _job(env, ids)
    env.hooks.roles = frozenset({"admin"})
    assert _act(env, other["id"], "cancel").json["status"] == "cancelled"
    # the history, oldest first, with who, when, from, to, comment
    items = env.get(f"job/{job['id']}/transitions").json["items"]
    assert [(i["action"], i["from"], i["to"], i["user"]) for i in items] == [
        ("approve", "draft", "approved", "sam"), ("finish", "approved", "done", "sam")]
    assert items[0]["comment"] == "looks fine" and items[1]["comment"] is None
    assert items[0]["at"] <= items[1]["at"]
    # the audit hook saw each action inside its transaction
    audited = [c for c in env.hooks.changes if c["action"].startswith("workflow.")]
    assert [c["action"] for c in audited] == ["workflow.approve", "workflow.finish",
                                              "workflow.cancel"]
    first = audited[0]
    assert first["in_transaction"] and first["record_id"] == job["id"]
    assert first["before"]["status"] == "draft" and first["after"]["status"] == "approved"


def test_transition_denied_by_guard_requires_and_state(env: RulesEnv) -> None:
    ids = seed(env)
    empty = env.create("job", {})          # total 0: the guard 'self.total > 0' fails
    body = assert_error(_act(env, empty["id"], "approve"), 422)
    errors = body["errors"]["json"]
    assert errors["_guard"] == ["the record does not allow Approve: self.total > 0"]
    assert errors["assigned_to"] == ["needs a value to Approve"]
    es = assert_error(_act(env, empty["id"], "approve", headers={"Accept-Language": "es"}), 422)
    assert es["errors"]["json"]["assigned_to"] == ["necesita un valor para Aprobar"]
    # values sent with the action are applied first (and may satisfy requires)
    job = _job(env, ids)
    r = _act(env, job["id"], "approve", {"values": {"assigned_to": "ana"}})
    assert r.status_code == 200, r.json
    assert r.json["assigned_to"] == "ana" and r.json["status"] == "approved"
    # not from this state: 409; unknown action: 404
    body = assert_error(_act(env, job["id"], "approve"), 409)
    assert "finish" in body["message"] and "cancel" in body["message"]
    assert_error(_act(env, job["id"], "aprove"), 404)
    assert_error(_act(env, 99999, "approve"), 404)
    # nothing recorded for refused actions
    with env.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(transition_table)).scalar()
    assert n == 1
    # a bad body: 422 naming the key; a stale version: 409
    assert "colour" in assert_error(_act(env, job["id"], "finish", {"colour": 1}), 422)[
        "errors"]["json"]
    assert_error(_act(env, job["id"], "finish", {"version": 1}), 409)
    # the state field cannot be sent as a value of an action either
    body = assert_error(_act(env, job["id"], "finish", {"values": {"status": "done"}}), 422)
    assert list(body["errors"]["json"]) == ["status"]


def test_direct_state_write_refused_and_editable_fields_per_state(env: RulesEnv) -> None:
    ids = seed(env)
    job = _job(env, ids, assigned_to="ana")
    url = f"job/{job['id']}"
    body = assert_error(env.patch(url, {"status": "approved"}), 422)
    assert list(body["errors"]["json"]) == ["status"]
    body = assert_error(env.post("job", {"status": "done"}), 422)
    assert list(body["errors"]["json"]) == ["status"]
    r = env.client.put(f"/api/works/{url}", json={**env.get(url).json, "status": "done"})
    assert_error(r, 422)
    assert env.get(url).json["status"] == "draft"
    # draft: assigned_to is editable; approved: everything is; done: nothing is
    assert env.patch(url, {"assigned_to": "bea"}).status_code == 200
    assert _act(env, job["id"], "approve").status_code == 200
    assert env.patch(url, {"description_unknown": 1}).status_code == 422
    assert env.patch(url, {"assigned_to": "cy"}).status_code == 200
    assert _act(env, job["id"], "finish").status_code == 200
    body = assert_error(env.patch(url, {"assigned_to": "dan"}), 422)
    assert body["errors"]["json"] == {"assigned_to": ["cannot be changed while the record "
                                                      "is Done"]}
    es = assert_error(env.patch(url, {"lines": []}, headers={"Accept-Language": "es"}), 422)
    assert es["errors"]["json"] == {"lines": ["no se puede cambiar mientras el registro "
                                              "está Hecha"]}
    assert env.patch(url, {"assigned_to": "cy"}).status_code == 200   # unchanged: fine


def test_available_actions_for_the_caller(env: RulesEnv) -> None:
    ids = seed(env)
    empty = env.create("job", {})
    env.hooks.roles = frozenset({"operator"})
    got = env.get(f"job/{empty['id']}/actions").json
    assert got["state"] == "draft" and got["state_label"] == "Draft"
    by_action = {a["action"]: a for a in got["actions"]}
    assert set(by_action) == {"approve", "cancel"}
    approve = by_action["approve"]
    assert approve["allowed"] is False and approve["ready"] is False
    assert set(approve["problems"]) == {"_guard", "assigned_to"}
    assert approve["to"] == "approved" and approve["label"] == "Approve"
    # cancel names no roles: the update permission of the model decides (operator: read)
    assert by_action["cancel"]["ready"] is True and by_action["cancel"]["allowed"] is False
    env.hooks.roles = frozenset({"supervisor"})
    job = _job(env, ids, assigned_to="ana")
    got = env.get(f"job/{job['id']}/actions", headers={"Accept-Language": "es"}).json
    approve = next(a for a in got["actions"] if a["action"] == "approve")
    assert approve == {"action": "approve", "label": "Aprobar", "to": "approved",
                       "to_label": "Aprobada", "allowed": True, "ready": True, "problems": {}}
    assert got["state_label"] == "Borrador"
    assert next(a for a in got["actions"] if a["action"] == "cancel")["allowed"] is True
    # listing actions changes nothing
    assert env.get(f"job/{job['id']}").json["version"] == job["version"]


def test_row_scope_and_read_permission_apply_to_workflow_routes(env: RulesEnv) -> None:
    ids = seed(env)
    job = _job(env, ids, assigned_to="ana")
    env.hooks.scopes["works.job"] = "works_job.assigned_to = 'nobody'"
    for r in (_act(env, job["id"], "approve"), env.get(f"job/{job['id']}/transitions"),
              env.get(f"job/{job['id']}/actions")):
        assert_error(r, 404)
    env.hooks.scopes.clear()
    env.hooks.denied = {("works.job", "read")}
    assert_error(env.get(f"job/{job['id']}/transitions"), 403)
    assert_error(env.get(f"job/{job['id']}/actions"), 403)


def test_workflow_routes_are_in_openapi(env: RulesEnv) -> None:
    paths = env.client.get("/api/openapi.json").json["paths"]
    path = paths["/api/works/job/{record_id}/actions/{action}"]
    assert {p["name"] for p in path["parameters"]} == {"record_id", "action"}
    assert "comment" in path["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]
    assert "get" in paths["/api/works/job/{record_id}/transitions"]
    assert "get" in paths["/api/works/job/{record_id}/actions"]
    assert "/api/works/crew/{record_id}/actions/{action}" not in paths
