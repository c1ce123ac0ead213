"""Admin API: users CRUD, last-admin protection, sessions list/revoke, self password change,
and that non-admins are refused (with an audited denial)."""

from __future__ import annotations

import pytest
from support.auth import PASSWORD, Harness, bearer

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration


@pytest.fixture
def admin(harness: Harness) -> dict[str, str]:
    return bearer(harness.tokens("alice")["access_token"])


def test_create_get_list_user(harness: Harness, admin: dict[str, str]) -> None:
    c = harness.client
    r = c.post("/api/auth/users", headers=admin, json={
        "username": "Olga", "password": "olga-secret-1", "roles": ["operator"],
        "sites": ["pad7"], "display_name": "Olga Ruiz", "email": "olga@example.com"})
    assert r.status_code == 201, r.json
    user = r.json
    assert user["username"] == "olga" and user["roles"] == ["operator"]
    assert "password" not in user and "password_hash" not in user
    assert c.get(f"/api/auth/users/{user['id']}", headers=admin).json == user
    names = [u["username"] for u in c.get("/api/auth/users", headers=admin).json]
    assert names == sorted(names) and "olga" in names and "scada1" in names
    assert harness.login("olga", "olga-secret-1").status_code == 200
    row = harness.audit_rows(action="create", entity="campo_user")[-1]
    assert row["username"] == "alice" and row["record_id"] == str(user["id"])
    assert row["after"]["roles"] == ["operator"] and "password_hash" not in row["after"]


def test_create_user_errors_name_the_field(harness: Harness, admin: dict[str, str]) -> None:
    c = harness.client
    r = c.post("/api/auth/users", headers=admin,
               json={"username": "olga", "password": "olga-secret-1", "roles": ["operater"]})
    assert r.status_code == 422
    assert r.json["errors"]["json"]["roles"] == [
        "unknown role 'operater' (did you mean 'operator'?); known roles: admin, engineer, "
        "operator, scada, supervisor, viewer"]
    r = c.post("/api/auth/users", headers=admin,
               json={"username": "bob", "password": "olga-secret-1"})
    assert r.status_code == 409 and "username" in r.json["errors"]["json"]
    r = c.post("/api/auth/users", headers=admin, json={"username": "olga", "password": "short"})
    assert r.status_code == 422 and "password" in r.json["errors"]["json"]
    r = c.post("/api/auth/users", headers=admin, json={"username": "olga"})
    assert r.status_code == 422 and "password" in r.json["errors"]["json"]
    r = c.post("/api/auth/users", headers=admin,
               json={"username": "bad name!", "password": "olga-secret-1"})
    assert r.status_code == 422 and "username" in r.json["errors"]["json"]
    r = c.post("/api/auth/users", headers=admin,
               json={"username": "rtu2", "is_service": True, "password": "olga-secret-1"})
    assert r.status_code == 422 and "password" in r.json["errors"]["json"]
    r = c.post("/api/auth/users", headers=admin,
               json={"username": "rtu2", "is_service": True, "roles": ["scada"]})
    assert r.status_code == 201 and r.json["is_service"] is True


def test_patch_user_audits_only_changed_fields(harness: Harness,
                                               admin: dict[str, str]) -> None:
    uid = harness.users["bob"]
    r = harness.client.patch(f"/api/auth/users/{uid}", headers=admin,
                             json={"roles": ["operator", "viewer"], "display_name": "Bob"})
    assert r.status_code == 200
    assert r.json["roles"] == ["operator", "viewer"] and r.json["sites"] == ["pad7"]
    row = harness.audit_rows(action="update", entity="campo_user")[-1]
    assert row["before"] == {"roles": ["operator"], "display_name": None}
    assert row["after"] == {"roles": ["operator", "viewer"], "display_name": "Bob"}
    assert row["detail"] == {"password_changed": False, "sessions_revoked": 0}


def test_password_reset_and_disable_revoke_sessions(harness: Harness,
                                                    admin: dict[str, str]) -> None:
    uid = harness.users["bob"]
    bob = harness.tokens("bob")["access_token"]
    r = harness.client.patch(f"/api/auth/users/{uid}", headers=admin,
                             json={"password": "brand-new-pw"})
    assert r.status_code == 200
    assert harness.get("/api/test/ping", bob).status_code == 401
    assert harness.login("bob").status_code == 401
    assert harness.login("bob", "brand-new-pw").status_code == 200
    r = harness.client.patch(f"/api/auth/users/{uid}", headers=admin, json={"disabled": True})
    assert r.status_code == 200 and r.json["disabled"] is True
    assert harness.login("bob", "brand-new-pw").status_code == 401


def test_last_admin_cannot_be_removed(harness: Harness, admin: dict[str, str]) -> None:
    me = harness.users["alice"]
    r = harness.client.patch(f"/api/auth/users/{me}", headers=admin, json={"roles": ["viewer"]})
    assert r.status_code == 409 and "last active admin" in r.json["message"]
    r = harness.client.patch(f"/api/auth/users/{me}", headers=admin, json={"disabled": True})
    assert r.status_code == 409
    assert harness.client.delete(f"/api/auth/users/{me}", headers=admin).status_code == 409
    # with a second admin, the first may step down
    harness.client.patch(f"/api/auth/users/{harness.users['sue']}", headers=admin,
                         json={"roles": ["admin"]})
    r = harness.client.patch(f"/api/auth/users/{me}", headers=admin, json={"roles": ["viewer"]})
    assert r.status_code == 200


def test_delete_user(harness: Harness, admin: dict[str, str]) -> None:
    uid = harness.users["vic"]
    vic = harness.tokens("vic")["access_token"]
    assert harness.client.delete(f"/api/auth/users/{uid}", headers=admin).status_code == 204
    assert harness.client.get(f"/api/auth/users/{uid}", headers=admin).status_code == 404
    assert harness.get("/api/test/ping", vic).status_code == 401
    assert harness.client.delete(f"/api/auth/users/{uid}", headers=admin).status_code == 404
    row = harness.audit_rows(action="delete", entity="campo_user")[-1]
    assert row["before"]["username"] == "vic" and row["after"] is None
    # the service account goes with its API keys
    sid = harness.users["scada1"]
    assert harness.client.delete(f"/api/auth/users/{sid}", headers=admin).status_code == 204
    assert harness.client.get("/api/test/ping",
                              headers={"X-API-Key": harness.api_key}).status_code == 401


def test_sessions_list_and_revoke(harness: Harness, admin: dict[str, str]) -> None:
    b1 = harness.tokens("bob")
    harness.tokens("bob")
    r = harness.client.get(f"/api/auth/sessions?user_id={harness.users['bob']}", headers=admin)
    assert r.status_code == 200 and r.json["total"] == 2
    assert all(s["username"] == "bob" and s["active"] for s in r.json["items"])
    assert "refresh_jti" not in r.json["items"][0]
    r = harness.client.delete(f"/api/auth/sessions/{b1['session_id']}", headers=admin)
    assert r.status_code == 204
    r = harness.client.delete(f"/api/auth/sessions/{b1['session_id']}", headers=admin)
    assert r.status_code == 404
    r = harness.client.get("/api/auth/sessions?active=false", headers=admin)
    assert [s["id"] for s in r.json["items"]] == [b1["session_id"]]
    assert r.json["items"][0]["revoked_reason"] == "revoked by admin"
    r = harness.client.get("/api/auth/sessions?page_size=1&page=2", headers=admin)
    assert r.json["total"] == 3 and len(r.json["items"]) == 1  # 2 of bob's + alice's
    # a bad query parameter is a 400 naming it, with a message, like the generated API's
    for query in ("bogus=1", f"user_id={2**63}", "page=0", "page=", f"page={2**64}"):
        r = harness.client.get(f"/api/auth/sessions?{query}", headers=admin)
        name = query.split("=")[0]
        assert r.status_code == 400 and name in r.json["errors"]["query"], (query, r.json)
        assert name in r.json["message"], query
    r = harness.client.get(f"/api/auth/users/{2**63}", headers=admin)
    assert r.status_code == 400 and "user_id" in r.json["errors"]["path"], r.json


def test_non_admins_are_refused_and_the_denial_is_audited(harness: Harness) -> None:
    bob = bearer(harness.tokens("bob")["access_token"])
    for method, path in (("GET", "/api/auth/users"), ("POST", "/api/auth/users"),
                         ("GET", "/api/auth/sessions"),
                         ("DELETE", f"/api/auth/users/{harness.users['vic']}")):
        r = harness.client.open(path, method=method, headers=bob,
                                json={"username": "x", "password": "xxxxxxxxxx"}
                                if method == "POST" else None)
        assert r.status_code == 403, path
        assert r.json["message"] == "requires role admin"
    rows = harness.audit_rows(action="permission.denied")
    assert len(rows) == 4
    assert {r["username"] for r in rows} == {"bob"}
    assert rows[0]["detail"]["path"] == "/api/auth/users"
    key = {"X-API-Key": harness.api_key}
    assert harness.client.get("/api/auth/users", headers=key).status_code == 403


def test_change_own_password(harness: Harness) -> None:
    s1 = harness.tokens("erin")
    s2 = harness.tokens("erin")
    h1 = bearer(s1["access_token"])
    r = harness.client.post("/api/auth/password", headers=h1,
                            json={"current_password": "wrong-one", "new_password": "new-pw-123"})
    assert r.status_code == 403 and "current_password" in r.json["errors"]["json"]
    r = harness.client.post("/api/auth/password", headers=h1,
                            json={"current_password": PASSWORD, "new_password": "erin"})
    assert r.status_code == 422 and "new_password" in r.json["errors"]["json"]
    r = harness.client.post("/api/auth/password", headers=h1,
                            json={"current_password": PASSWORD, "new_password": "new-pw-123"})
    assert r.status_code == 204
    assert harness.get("/api/test/ping", s1["access_token"]).status_code == 200  # kept
    assert harness.get("/api/test/ping", s2["access_token"]).status_code == 401  # revoked
    assert harness.login("erin", "new-pw-123").status_code == 200
