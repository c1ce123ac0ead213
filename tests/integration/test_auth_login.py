"""Login: no difference between unknown users and wrong passwords (reply and timing),
rate limits per IP and per user, lockout, and the first-admin bootstrap."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from support.auth import PASSWORD, Harness, bearer, build_app, build_settings, make_harness

from engine.auth.tables import user_table
from engine.auth.users import find_user
from engine.db import create_engine_for
from metamodel import Model

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration

#: headers whose values legitimately differ between two requests
VOLATILE = {"X-Request-ID", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Date",
            "Retry-After"}


def _shape(r: Any) -> tuple[int, Any, dict[str, str]]:
    headers = {k: ("*" if k in VOLATILE else v) for k, v in r.headers.items()}
    return r.status_code, r.get_data(as_text=True), headers


def test_unknown_user_and_wrong_password_answer_alike(harness: Harness) -> None:
    unknown = harness.login("nobody-here", "whatever-password")
    wrong = harness.login("bob", "whatever-password")
    disabled_or_service = harness.login("scada1", "whatever-password")
    assert unknown.status_code == 401
    assert unknown.json == {"code": 401, "status": "Unauthorized",
                            "message": "invalid user name or password"}
    assert _shape(unknown) == _shape(wrong) == _shape(disabled_or_service)
    reasons = [(r["username"], r["detail"]["reason"])
               for r in harness.audit_rows(action="login.failed")]
    assert reasons == [("nobody-here", "unknown_user"), ("bob", "bad_password"),
                       ("scada1", "service_account")]


def test_login_timing_does_not_reveal_unknown_users(sqlite_url: str, tmp_path: Path,
                                                    auth_model: Model) -> None:
    # the cost is the hash, not the database: SQLite alone keeps the test short
    engine = create_engine_for(sqlite_url)
    app, state = build_app(engine, build_settings(tmp_path, lockout_attempts=0), auth_model,
                           hasher=PasswordHasher())  # production argon2id parameters
    client = app.test_client()
    from engine.auth.users import create_user
    with engine.begin() as conn:
        create_user(conn, auth_model, username="bob", now=state.now(),
                    password_hash=state.passwords.hash(PASSWORD), roles=["operator"])

    def timed(name: str) -> float:
        t0 = time.perf_counter()
        r = client.post("/api/auth/login", json={"username": name, "password": "wrong-pw-1"})
        assert r.status_code == 401
        return time.perf_counter() - t0

    timed("warm-up")
    unknown, known = [], []
    for _ in range(5):
        unknown.append(timed("nobody"))
        known.append(timed("bob"))
    ratio = statistics.median(unknown) / statistics.median(known)
    # an unknown user still costs a full argon2id verification (~0.1 s on an idle core);
    # skipping it would make the ratio ~0.01, so a wide band tolerates a busy machine
    assert statistics.median(unknown) > 0.02
    assert 0.5 < ratio < 2.0, (unknown, known)
    engine.dispose()


def test_lockout_after_repeated_failures_then_expiry(harness: Harness) -> None:
    for _ in range(3):  # lockout_attempts=3
        assert harness.login("bob", "bad-password").status_code == 401
    r = harness.login("bob")  # right password, but locked
    assert r.status_code == 429
    assert r.json["message"] == "too many failed logins; try again later"
    assert 14 * 60 < int(r.headers["Retry-After"]) <= 15 * 60 + 1
    assert harness.audit_rows(action="login.locked")[0]["username"] == "bob"
    # other users are not affected
    assert harness.login("erin").status_code == 200
    harness.clock.advance(minutes=15, seconds=1)
    assert harness.login("bob").status_code == 200


def test_unknown_names_lock_out_exactly_like_real_ones(harness: Harness) -> None:
    replies = {}
    for name in ("bob", "ghost"):
        seq = [harness.login(name, "bad-password") for _ in range(4)]
        replies[name] = [(r.status_code, r.json["message"]) for r in seq]
    assert replies["bob"] == replies["ghost"]
    assert [s for s, _ in replies["bob"]] == [401, 401, 401, 429]


def test_success_resets_the_failure_count(harness: Harness) -> None:
    for _ in range(2):
        harness.login("bob", "bad-password")
    assert harness.login("bob").status_code == 200
    for _ in range(2):
        assert harness.login("bob", "bad-password").status_code == 401
    assert harness.login("bob").status_code == 200


def test_failures_spread_over_more_than_the_window_do_not_lock(harness: Harness) -> None:
    for _ in range(3):
        harness.login("bob", "bad-password")
        harness.clock.advance(minutes=8)
    assert harness.login("bob").status_code == 200


def test_admin_unlock_lifts_the_lockout(harness: Harness) -> None:
    admin = harness.tokens("alice")["access_token"]
    for _ in range(3):
        harness.login("bob", "bad-password")
    assert harness.login("bob").status_code == 429
    r = harness.client.post(f"/api/auth/users/{harness.users['bob']}/unlock",
                            headers=bearer(admin))
    assert r.status_code == 204
    assert harness.login("bob").status_code == 200


def test_rate_limit_per_ip_and_per_user(db_url: str, tmp_path: Path,
                                        auth_model: Model) -> None:
    h = make_harness(db_url, tmp_path, auth_model, login_rate_limit="3 per minute",
                     lockout_attempts=0)
    ip_a = {"environ_base": {"REMOTE_ADDR": "10.0.0.1"}}
    for name in ("u1", "u2", "u3"):
        assert h.login(name, "bad-password", **ip_a).status_code == 401
    r = h.login("u4", "bad-password", **ip_a)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json["message"] == "too many login attempts; try again later"
    # per user: one name tried from many addresses
    for i in range(3):
        r = h.login("bob", "bad-password", environ_base={"REMOTE_ADDR": f"10.0.1.{i}"})
        assert r.status_code == 401
    r = h.login("bob", environ_base={"REMOTE_ADDR": "10.0.1.9"})
    assert r.status_code == 429
    # a fresh address and name are still served
    assert h.login("erin", environ_base={"REMOTE_ADDR": "10.0.2.1"}).status_code == 200
    h.engine.dispose()


def test_disabled_user_cannot_log_in_even_with_the_password(harness: Harness) -> None:
    with harness.engine.begin() as conn:
        conn.execute(sa.update(user_table).where(user_table.c.username == "vic")
                     .values(disabled=True))
    r = harness.login("vic")
    assert r.status_code == 401 and r.json["message"] == "invalid user name or password"
    assert harness.audit_rows(action="login.failed")[-1]["detail"] == {"reason": "disabled"}


def test_username_is_case_insensitive_and_login_is_audited(harness: Harness) -> None:
    r = harness.login("  BOB ", headers={"X-Request-ID": "req-42"},
                      environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert r.status_code == 200
    row = harness.audit_rows(action="login")[-1]
    assert (row["username"], row["user_id"], row["source_ip"], row["request_id"],
            row["entity"], row["record_id"]) == (
        "bob", harness.users["bob"], "192.0.2.7", "req-42", "campo_session",
        r.json["session_id"])


def test_old_hash_parameters_are_upgraded_on_login(harness: Harness) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with harness.engine.begin() as conn:
        conn.execute(sa.update(user_table).where(user_table.c.username == "vic")
                     .values(password_hash=weak))
    assert harness.login("vic").status_code == 200
    with harness.engine.connect() as conn:
        stored = find_user(conn, "vic").password_hash  # type: ignore[union-attr]
    assert stored != weak and stored.startswith("$argon2id$")
    assert "m=8192" in stored  # the app's current parameters
    assert harness.login("vic").status_code == 200


def test_first_admin_only_from_the_environment(db_url: str, tmp_path: Path,
                                               auth_model: Model) -> None:
    engine = create_engine_for(db_url)
    build_app(engine, build_settings(tmp_path), auth_model)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(user_table)).scalar() == 0
    settings = build_settings(tmp_path, admin_username="root", admin_password="first-admin-pw")
    app, _ = build_app(engine, settings, auth_model)
    r = app.test_client().post("/api/auth/login",
                               json={"username": "root", "password": "first-admin-pw"})
    assert r.status_code == 200
    # a second start with another password changes nothing
    again = build_settings(tmp_path, admin_username="root", admin_password="other-password")
    app2, _ = build_app(engine, again, auth_model)
    c2 = app2.test_client()
    assert c2.post("/api/auth/login", json={"username": "root",
                                            "password": "other-password"}).status_code == 401
    assert c2.post("/api/auth/login", json={"username": "root",
                                            "password": "first-admin-pw"}).status_code == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(user_table)).scalar() == 1
    engine.dispose()


def test_login_body_is_validated(harness: Harness) -> None:
    r = harness.client.post("/api/auth/login", json={"username": "bob"})
    assert r.status_code == 422
    assert "password" in r.json["errors"]["json"]
    r = harness.client.post("/api/auth/login", data="not json",
                            content_type="application/json")
    assert r.status_code in (400, 422)
