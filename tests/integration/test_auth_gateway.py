"""The gateway: what is public, API keys, security headers, request ids, body limit,
CORS, the per-user API rate limit, the JWT secret, and the principal's roles."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_smorest import Api
from support.auth import Harness, bearer, build_app, build_settings, make_harness

from engine.auth import AuthConfigError, init_app, resolve_jwt_secret
from engine.auth.apikeys import revoke_api_key
from engine.auth.tables import api_key_table, user_table
from engine.db import create_engine_for
from engine.settings import Settings
from metamodel import Model

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration

ERROR = {"code": 401, "status": "Unauthorized", "message": "authentication required"}


def test_everything_but_public_endpoints_needs_a_token(harness: Harness) -> None:
    c = harness.client
    for method, path in (("GET", "/api/test/ping"), ("GET", "/api/auth/me"),
                         ("GET", "/api/audit"), ("GET", "/api/auth/users"),
                         ("POST", "/api/test/items"), ("GET", "/api/no/such/route"),
                         ("POST", "/api/auth/logout"), ("GET", "/anything-else")):
        r = c.open(path, method=method)
        assert r.status_code == 401, path
        assert r.json == ERROR
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert c.get("/api/health").json == {"status": "healthy"}
    spec = c.get("/api/openapi.json")
    assert spec.status_code == 200
    assert "/api/auth/login" in spec.json["paths"] and "/api/audit" in spec.json["paths"]
    assert spec.json["paths"]["/api/auth/login"]["post"]["security"] == []
    assert "bearer" in spec.json["components"]["securitySchemes"]
    docs = c.get("/api/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()
    assert c.post("/api/auth/refresh").status_code == 401  # public route, but needs its token


def test_api_key_for_service_accounts(harness: Harness) -> None:
    for headers in ({"Authorization": f"ApiKey {harness.api_key}"},
                    {"X-API-Key": harness.api_key}):
        r = harness.client.get("/api/test/ping", headers=headers)
        assert r.status_code == 200
        assert r.json == {"user": "scada1", "roles": ["scada"], "sites": ["pad7"],
                          "service": True}
    bad = harness.api_key[:-1] + ("A" if harness.api_key[-1] != "A" else "B")
    for key in (bad, "campo_000000000000_" + "x" * 43, "rubbish", ""):
        r = harness.client.get("/api/test/ping", headers={"X-API-Key": key})
        assert r.status_code == 401 and r.json["message"] == "invalid API key"
    # service accounts cannot use the password login, and API keys have no session
    r = harness.client.post("/api/auth/logout", headers={"X-API-Key": harness.api_key})
    assert r.status_code == 400


def test_revoked_expired_and_disabled_api_keys_are_refused(harness: Harness) -> None:
    headers = {"X-API-Key": harness.api_key}
    with harness.engine.begin() as conn:
        conn.execute(sa.update(api_key_table).values(
            expires_at=harness.clock() - dt.timedelta(seconds=1)))
    assert harness.client.get("/api/test/ping", headers=headers).status_code == 401
    with harness.engine.begin() as conn:
        conn.execute(sa.update(api_key_table).values(expires_at=None))
        conn.execute(sa.update(user_table).where(user_table.c.username == "scada1")
                     .values(disabled=True))
    assert harness.client.get("/api/test/ping", headers=headers).status_code == 401
    with harness.engine.begin() as conn:
        conn.execute(sa.update(user_table).values(disabled=False))
    assert harness.client.get("/api/test/ping", headers=headers).status_code == 200
    with harness.engine.begin() as conn:
        key_id = conn.execute(sa.select(api_key_table.c.id)).scalar_one()
        assert revoke_api_key(conn, key_id, harness.clock())
    assert harness.client.get("/api/test/ping", headers=headers).status_code == 401


def test_security_headers_and_docs_csp(harness: Harness) -> None:
    for r in (harness.client.get("/api/test/ping"), harness.client.get("/api/health")):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
    docs = harness.client.get("/api/docs")
    assert "script-src 'self' 'unsafe-inline'" in docs.headers["Content-Security-Policy"]
    login = harness.login("bob")
    assert login.headers["Cache-Control"] == "no-store"
    assert "Retry-After" not in login.headers  # only on refusals


def test_refusals_and_errors_carry_the_headers_and_https_adds_hsts(harness: Harness) -> None:
    token = harness.tokens("bob")["access_token"]
    refused = harness.client.get("/api/test/ping")  # no credentials: 401
    missing = harness.get("/api/no/such/thing", token)  # 404 from the router
    for r in (refused, missing):
        assert r.status_code in (401, 404)
        assert r.headers.getlist("X-Frame-Options") == ["DENY"]
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in r.headers
    tls = harness.client.get("/api/test/ping", base_url="https://localhost",
                             headers=bearer(token))
    assert tls.status_code == 200
    assert tls.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert int(tls.headers["X-RateLimit-Remaining"]) < int(tls.headers["X-RateLimit-Limit"])
    # a view's own Cache-Control on /api/auth/ is replaced, never doubled
    assert harness.login("bob").headers.getlist("Cache-Control") == ["no-store"]


def test_request_id_in_and_out(harness: Harness) -> None:
    r = harness.client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    r = harness.client.get("/api/health", headers={"X-Request-ID": "bad id <script>"})
    assert r.headers["X-Request-ID"] != "bad id <script>"
    assert len(r.headers["X-Request-ID"]) == 32
    assert harness.client.get("/api/test/ping").headers["X-Request-ID"]  # on refusals too
    made = {harness.client.get("/api/health").headers["X-Request-ID"] for _ in range(200)}
    assert len(made) == 200 and all(re.fullmatch(r"[0-9a-f]{32}", m) for m in made)


def test_request_body_limit(harness: Harness) -> None:
    token = harness.tokens("alice")["access_token"]
    big = {"name": "x" * (70 * 1024)}  # max_body_bytes = 64 KiB
    r = harness.client.post("/api/test/items", json=big, headers=bearer(token))
    assert r.status_code == 413
    assert r.json["code"] == 413 and "64" not in r.json["status"]
    assert "request body larger than 65536 bytes" == r.json["message"]
    # the same without a token is refused for size before anything else
    assert harness.client.post("/api/test/items", json=big).status_code == 413


def test_cors_origins(db_url: str, tmp_path: Path, auth_model: Model) -> None:
    h = make_harness(db_url, tmp_path, auth_model, cors_origins="https://hmi.example")
    pre = {"Origin": "https://hmi.example", "Access-Control-Request-Method": "GET",
           "Access-Control-Request-Headers": "Authorization"}
    r = h.client.options("/api/test/ping", headers=pre)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://hmi.example"
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    r = h.client.options("/api/test/ping", headers={**pre, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    token = h.tokens("bob")["access_token"]
    r = h.client.get("/api/test/ping", headers={**bearer(token),
                                                "Origin": "https://hmi.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://hmi.example"
    assert "X-Request-ID" in r.headers["Access-Control-Expose-Headers"]
    h.engine.dispose()


def test_no_cors_headers_unless_configured(harness: Harness) -> None:
    r = harness.client.get("/api/health", headers={"Origin": "https://hmi.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_api_rate_limit_is_per_user(db_url: str, tmp_path: Path, auth_model: Model) -> None:
    h = make_harness(db_url, tmp_path, auth_model, api_rate_limit="5 per minute")
    bob = h.tokens("bob")["access_token"]
    erin = h.tokens("erin")["access_token"]
    codes = [h.get("/api/test/ping", bob).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    r = h.get("/api/test/ping", bob)
    assert r.json["code"] == 429 and "rate limit exceeded" in r.json["message"]
    assert int(r.headers["Retry-After"]) >= 1
    assert h.get("/api/test/ping", erin).status_code == 200
    h.engine.dispose()


def test_principal_roles_include_inherited_and_me_summarises(harness: Harness) -> None:
    token = harness.tokens("erin")["access_token"]
    assert harness.get("/api/test/ping", token).json["roles"] == ["engineer", "operator"]
    me = harness.get("/api/auth/me", token).json
    assert me["assigned_roles"] == ["engineer"]
    assert me["roles"] == ["engineer", "operator"]
    assert me["sites"] == ["pad7", "pad9"]
    assert me["permissions"] == {"plant.gauge": ["read", "update"]}
    assert me["user"]["username"] == "erin" and "password" not in me["user"]
    vic = harness.get("/api/auth/me", harness.tokens("vic")["access_token"]).json
    assert vic["permissions"] == {"plant.gauge": ["read"]}


def test_jwt_secret_sources(tmp_path: Path) -> None:
    prod = Settings(project=tmp_path, data_dir=tmp_path / "d1", production=True)
    with pytest.raises(AuthConfigError, match="production mode needs a JWT secret"):
        resolve_jwt_secret(prod)
    dev = Settings(project=tmp_path, data_dir=tmp_path / "d2")
    first = resolve_jwt_secret(dev)
    path = tmp_path / "d2" / "jwt_secret"
    assert path.read_text().strip() == first and len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert resolve_jwt_secret(dev) == first  # persisted, so tokens survive a restart
    # production accepts the file, or the environment value
    assert resolve_jwt_secret(prod.model_copy(update={"secret_file": path})) == first
    with pytest.raises(AuthConfigError, match="at least 32"):
        resolve_jwt_secret(Settings(jwt_secret="short", production=True))


def test_init_app_refuses_production_without_secret(db_url: str, tmp_path: Path,
                                                    auth_model: Model) -> None:
    app = Flask("prod")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    settings = Settings(project=tmp_path, data_dir=tmp_path / "data", production=True)
    engine = create_engine_for(db_url)
    with pytest.raises(AuthConfigError):
        init_app(app, engine, settings, auth_model, api=Api(app))
    engine.dispose()


def test_extra_public_paths(db_url: str, tmp_path: Path, auth_model: Model) -> None:
    engine = create_engine_for(db_url)
    app = Flask("pub")
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3")
    init_app(app, engine, build_settings(tmp_path), auth_model, api=Api(app),
             public=("/ui/", "/favicon.ico"))

    @app.get("/ui/index.html")
    def index() -> str:
        return "<html></html>"

    c = app.test_client()
    assert c.get("/ui/index.html").status_code == 200
    assert c.get("/favicon.ico").status_code == 404  # public, just not served here
    assert c.get("/api/auth/me").status_code == 401
    engine.dispose()


def test_platform_tables_are_idempotent(db_url: str, tmp_path: Path,
                                        auth_model: Model) -> None:
    engine = create_engine_for(db_url)
    build_app(engine, build_settings(tmp_path), auth_model)
    build_app(engine, build_settings(tmp_path), auth_model)  # second start: no error
    names = set(sa.inspect(engine).get_table_names())
    assert {"campo_user", "campo_session", "campo_api_key", "campo_user_role",
            "campo_user_site", "campo_audit"} <= names
    engine.dispose()
