"""``campo serve`` with authorization: production refuses to start without a JWT secret, and
the served API enforces the YAML's permissions, field rules and row scopes for a user made
with ``campo user create`` (a real server in a subprocess)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.rbac import FIELD_YAML
from test_api_serve import ADMIN_PASSWORD, running, serve_env

pytestmark = pytest.mark.integration


def _request(port: int, method: str, path: str, body: Any = None, token: str | None = None
             ) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def test_production_refuses_to_start_without_a_jwt_secret(project: Any, tmp_path: Path
                                                          ) -> None:
    root = project({"modules/field.yaml": FIELD_YAML})
    env = {**serve_env(), "CAMPO_PRODUCTION": "true", "CAMPO_DATA_DIR": str(tmp_path / "d")}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "serve", "--project", str(root),
                           "--database-url", f"sqlite:///{tmp_path}/p.db", "--port", "0"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    assert "production mode needs a JWT secret" in done.stderr
    assert "serving on" not in done.stdout
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "d" / "jwt_secret").exists()  # nothing generated in production


def test_served_api_enforces_the_yaml(project: Any, tmp_path: Path) -> None:
    root = project({"modules/field.yaml": FIELD_YAML})
    db = f"sqlite:///{tmp_path}/serve.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPO_")}
    created = subprocess.run(
        [sys.executable, "-m", "engine.cli", "user", "create", "otto", "--role", "operator",
         "--site", "north", "--password-stdin", "--project", str(root), "--database-url", db],
        input="otto-password-1\n", capture_output=True, text=True, timeout=60, env=env)
    assert created.returncode == 0, created.stderr
    with running(root, db, tmp_path / "err.log") as (_proc, port):
        assert _request(port, "GET", "/api/field/asset")[0] == 401
        status, body = _request(port, "POST", "/api/auth/login",
                                {"username": "admin", "password": ADMIN_PASSWORD})
        assert status == 200
        admin = body["access_token"]
        ids = {}
        for code in ("north", "south"):
            status, body = _request(port, "POST", "/api/field/area", {"code": code}, admin)
            assert status == 201
            ids[code] = body["id"]
        for tag, area in (("N-1", "north"), ("S-1", "south")):
            status, body = _request(port, "POST", "/api/field/asset",
                                    {"tag": tag, "area": ids[area], "cost": "9.99"}, admin)
            assert status == 201, body
        status, body = _request(port, "POST", "/api/auth/login",
                                {"username": "otto", "password": "otto-password-1"})
        assert status == 200
        otto = body["access_token"]
        status, body = _request(port, "GET", "/api/field/asset", token=otto)
        assert status == 200
        assert [(i["tag"], "cost" in i) for i in body["items"]] == [("N-1", False)]
        status, body = _request(port, "DELETE", f"/api/field/asset/{body['items'][0]['id']}",
                                token=otto)
        assert (status, body["message"]) == (403, "missing permission: delete on field.asset")
        status, body = _request(port, "GET", "/api/audit?action=permission.denied", token=admin)
        assert status == 200 and [i["username"] for i in body["items"]] == ["otto"]
        status, body = _request(port, "GET", "/api/audit?entity=field.asset&action=create",
                                token=admin)
        assert status == 200 and body["total"] == 2
