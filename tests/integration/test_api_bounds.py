"""Integers from the outside are bounded at the edge to what their column holds: ids of
every item route, actions and transitions, ``offset``/``limit``, ``?version=`` (a 32-bit
column), ``page``, audit and user ids. Out of range is a 4xx naming the parameter — never a
500 (``OverflowError`` on SQLite) nor a database error on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.auth import PASSWORD, bearer
from test_workflow_auth import signed_in_app
from test_write_gate import PAD_YAML

from engine.auth.users import create_user

pytestmark = pytest.mark.integration

HUGE = [2**63, 2**64 + 5, 10**30]


@pytest.fixture
def admin(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], int]]:
    app, model, engine, state = signed_in_app(db_url, tmp_path, PAD_YAML)
    with engine.begin() as conn:
        create_user(conn, model, username="ada", now=state.now(), roles=["admin"],
                    password_hash=state.passwords.hash(PASSWORD))
    c = app.test_client()
    r = c.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    token = bearer(r.json["access_token"])
    r = c.post("/api/pads/well", json={"name": "W1", "site": "x"}, headers=token)
    assert r.status_code == 201
    yield c, token, r.json["id"]
    engine.dispose()


def _named(r: Any, where: str, param: str) -> None:
    assert r.status_code == 400, (param, r.status_code, r.json)
    assert param in r.json["errors"][where], r.json
    assert param in r.json["message"], r.json


def test_huge_ids_in_every_item_route(admin: Any) -> None:
    c, h, _wid = admin
    for n in HUGE:
        base = f"/api/pads/well/{n}"
        for method, url, body in (("GET", base, None), ("PUT", base, {"name": "x"}),
                                  ("PATCH", base, {"name": "x"}), ("DELETE", base, None),
                                  ("POST", f"{base}/actions/open", {}),
                                  ("GET", f"{base}/actions", None),
                                  ("GET", f"{base}/transitions", None),
                                  ("GET", f"/api/audit/{n}", None),
                                  ("GET", f"/api/auth/users/{n}", None),
                                  ("PATCH", f"/api/auth/users/{n}", {"display_name": "x"}),
                                  ("POST", f"/api/auth/users/{n}/unlock", None)):
            r = c.open(url, method=method, headers=h, json=body)
            param = "row_id" if "audit" in url else "user_id" if "users" in url \
                else "record_id"
            _named(r, "path", param)
    # the largest id that exists as a value is a plain 404
    assert c.get(f"/api/pads/well/{2**63 - 1}", headers=h).status_code == 404
    # non-ASCII digits are not an id
    _named(c.get("/api/pads/well/\u0661", headers=h), "path", "record_id")


def test_huge_integers_in_query_strings_and_bodies(admin: Any) -> None:
    c, h, wid = admin
    for n in HUGE + [-1]:
        _named(c.get(f"/api/pads/well?offset={n}", headers=h), "query", "offset")
        _named(c.get(f"/api/pads/well?limit={n}", headers=h), "query", "limit")
        _named(c.get(f"/api/pads/well/aggregate?limit={n}", headers=h), "query", "limit")
        _named(c.delete(f"/api/pads/well/{wid}?version={n if n > 0 else -2**31 - 1}",
                        headers=h), "query",
               "version")
        _named(c.get(f"/api/audit?page={n}", headers=h), "query", "page")
        _named(c.get(f"/api/audit?user_id={n}", headers=h), "query", "user_id")
        _named(c.get(f"/api/auth/sessions?page={n}", headers=h), "query", "page")
    # version is a 32-bit column: a body version beyond it is a 422 naming it
    for method in ("PATCH", "PUT"):
        r = c.open(f"/api/pads/well/{wid}", method=method, headers=h,
                   json={"name": "W1", "version": 2**31})
        assert r.status_code == 422 and "version" in r.json["errors"]["json"], r.json
    r = c.post(f"/api/pads/well/{wid}/actions/open", headers=h, json={"version": 2**31})
    assert r.status_code == 422 and "version" in r.json["errors"]["json"], r.json
    r = c.post("/api/pads/well/bulk", headers=h, json=[{"name": "x", "version": 2**40}])
    assert r.status_code == 422, r.json
    # in range, stale: 409 as before
    assert c.delete(f"/api/pads/well/{wid}?version={2**31 - 1}", headers=h).status_code == 409
    assert c.get(f"/api/pads/well?offset={2**31}", headers=h).json["items"] == []
