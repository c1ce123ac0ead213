"""Small security items of issue 8.6: wrong current passwords on ``POST /api/auth/password``
are audited, throttled and locked out like logins; API keys only for service accounts;
tokens without ``exp`` refused; the SQLite database file created 0600."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
import sqlalchemy as sa
from support.auth import PASSWORD, SECRET, Harness, bearer, make_harness

from engine.auth.apikeys import create_api_key
from engine.auth.tables import api_key_table
from engine.db import create_engine_for

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration


def _change(h: Harness, token: str, current: str) -> Any:
    return h.client.post("/api/auth/password", headers=bearer(token), json={
        "current_password": current, "new_password": "a-brand-new-password"})


def test_wrong_current_passwords_are_audited_and_locked_out(harness: Harness) -> None:
    h = harness
    token = h.tokens("bob")["access_token"]
    for _ in range(3):  # the harness locks after 3 failures
        h.clock.advance(seconds=1)
        r = _change(h, token, "not my password")
        assert r.status_code == 403 and "current_password" in r.json["errors"]["json"]
    failed = h.audit_rows(action="user.password.failed")
    assert len(failed) == 3 and {f["username"] for f in failed} == {"bob"}
    assert all(f["detail"] == {"reason": "bad_current_password"} for f in failed)
    r = _change(h, token, PASSWORD)  # locked now: even the right one is refused
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert h.login("bob").status_code == 429  # the same lock as logins
    assert h.audit_rows(action="login.locked")
    h.clock.advance(minutes=16)
    r = _change(h, token, PASSWORD)
    assert r.status_code == 204, r.json


def test_password_changes_are_rate_limited(db_url: str, tmp_path: Path,
                                           auth_model: Any) -> None:
    h = make_harness(db_url, tmp_path, auth_model, login_rate_limit="2 per minute",
                     lockout_attempts=0)
    token = h.tokens("bob")["access_token"]  # one hit on bob's name
    assert _change(h, token, "wrong one").status_code == 403
    r = _change(h, token, "wrong two")
    assert r.status_code == 429 and "Retry-After" in r.headers
    h.engine.dispose()


def test_api_keys_are_for_service_accounts_only(harness: Harness) -> None:
    h = harness
    now = h.clock()
    with h.engine.begin() as conn:
        with pytest.raises(ValueError, match="service accounts only"):
            create_api_key(conn, h.users["bob"], "laptop", now)
        # a key made for a person before this rule existed does not authenticate
        _kid, key = create_api_key(conn, h.users["scada1"], "tmp", now)
        conn.execute(sa.update(api_key_table).where(api_key_table.c.id == _kid)
                     .values(user_id=h.users["bob"]))
    assert h.client.get("/api/auth/me", headers={"X-API-Key": key}).status_code == 401
    assert h.client.get("/api/auth/me", headers={"X-API-Key": h.api_key}).status_code == 200


def test_tokens_without_exp_are_refused(harness: Harness) -> None:
    h = harness
    good = h.tokens("bob")["access_token"]
    claims = pyjwt.decode(good, SECRET, algorithms=["HS256"], issuer="campo")
    assert h.client.get("/api/auth/me", headers=bearer(good)).status_code == 200
    del claims["exp"]
    forever = pyjwt.encode(claims, SECRET, algorithm="HS256")
    r = h.client.get("/api/auth/me", headers=bearer(forever))
    assert r.status_code == 401 and r.json["message"] == "invalid token"
    with h.app.app_context():
        from engine.auth.tokens import decode_bearer
        assert decode_bearer(good) is not None and decode_bearer(forever) is None
    claims["exp"] = int((dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).timestamp())
    again = pyjwt.encode(claims, SECRET, algorithm="HS256")
    assert h.client.get("/api/auth/me", headers=bearer(again)).status_code == 200


def test_the_sqlite_database_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "campo.db"
    path.parent.mkdir()
    engine = create_engine_for(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    assert modes == {f.name: 0o600 for f in files}
    engine.dispose()
