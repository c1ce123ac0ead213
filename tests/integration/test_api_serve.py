"""``campo serve``: a real gunicorn server in a subprocess, auth, plugins, destructive changes."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flask
import pytest
from support.api import PLANT_YAML

from engine.api import create_app, shutdown
from engine.db import create_engine_for
from engine.settings import Settings
from engine.wiring.startup import load_plugins
from metamodel import Model, load

pytestmark = pytest.mark.integration


ADMIN_PASSWORD = "serve-test-admin-pw"


def serve_env() -> dict[str, str]:
    """The environment of a served test project: no simulator, a bootstrap admin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPO_")}
    env.update(CAMPO_SIMULATE="false", CAMPO_ADMIN_PASSWORD=ADMIN_PASSWORD)
    return env


@contextmanager
def running(root: Path, db: str, log: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``campo serve`` on a free port; yields (process, port); stops it with SIGINT."""
    env = serve_env()
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "serve", "--project", str(root),
             "--database-url", db, "--port", "0", "--threads", "4"],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    assert proc.stdout is not None
    try:
        port = None
        for line in proc.stdout:
            if line.startswith("serving on http://"):
                port = int(line.split()[2].rsplit(":", 1)[1])
                break
        assert port is not None, f"server did not start: {log.read_text()}"
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            proc.stdout.close()


def _request(port: int, method: str, path: str, body: Any = None,
             token: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def _login(port: int) -> str:
    status, body = _request(port, "POST", "/api/auth/login",
                            {"username": "admin", "password": ADMIN_PASSWORD})
    assert status == 200, body
    return str(body["access_token"])


def test_serve_migrates_serves_and_stops_on_sigint(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = project({"modules/plant.yaml": PLANT_YAML})
    with running(root, f"sqlite:///{tmp_path}/serve.db", tmp_path / "err.log") as (proc, port):
        status, body = _request(port, "GET", "/api/health")
        assert status == 200 and body["status"] == "healthy"
        assert body["database"] == "connected" and body["mqtt"] == "not_configured"
        assert _request(port, "POST", "/api/plant/site", {"name": "Pad 7"})[0] == 401
        token = _login(port)
        status, body = _request(port, "POST", "/api/plant/site", {"name": "Pad 7"}, token)
        assert status == 201 and body["id"] == 1
        status, body = _request(port, "GET", "/api/plant/site?count=exact", token=token)
        assert status == 200 and body["count"] == 1
        status, body = _request(port, "GET", "/api/tags", token=token)
        assert status == 200 and body["items"] == []  # no tags/ in this project
        # errors gunicorn answers itself come in the API's JSON shape too
        status, body = _request(port, "GET", "/api/plant/site?q=" + "x" * 9000, token=token)
        assert status == 414 and body["code"] == 414 and "too large" in body["message"]
    assert proc.returncode == 0


def test_serve_refuses_a_destructive_change(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("engine.db.migrate")
    root = project({"modules/plant.yaml": PLANT_YAML})
    db = f"sqlite:///{tmp_path}/destroy.db"
    with running(root, db, tmp_path / "err.log") as (proc, port):
        assert _request(port, "POST", "/api/plant/site", {"name": "keep me",
                                                          "region": "north"},
                        _login(port))[0] == 201
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    # drop the 'region' field: serving now would lose data
    (root / "modules" / "plant.yaml").write_text(
        PLANT_YAML.replace("      region: {type: string, max_length: 20}\n", ""))
    env = serve_env()
    done = subprocess.run([sys.executable, "-m", "engine.cli", "serve", "--project", str(root),
                           "--database-url", db, "--port", "0"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    assert "region" in done.stderr and "not starting" in done.stderr
    assert "serving on" not in done.stdout


def plugin(model: Model, engine: Any, settings: Settings) -> Any:
    """A serve plugin as engine.wiring.plugins.SERVE_PLUGINS lists them (used below)."""
    bp = flask.Blueprint("sim", __name__)
    calls: list[str] = []

    @bp.route("/api/sim/state")
    def state() -> Any:
        return {"calls": calls, "entities": len(model.entities)}

    return SimpleNamespace(blueprints=[bp], start=lambda: calls.append("start"),
                           stop=lambda: calls.append("stop"), calls=calls)


def plugin_off(model: Model, engine: Any, settings: Settings) -> None:
    """A plugin with nothing to run."""
    return None


def test_serve_plugins_add_routes_and_start_and_stop(project, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    model = load(project({"modules/plant.yaml": PLANT_YAML}))
    engine = create_engine_for(sqlite_url)
    plugins = load_plugins((plugin, plugin_off), model,
                           engine, Settings())
    assert len(plugins) == 1
    app = create_app(model, engine, Settings(),
                     extra_blueprints=[b for p in plugins for b in p.blueprints],
                     on_start=[p.start_hook for p in plugins])
    assert app.test_client().get("/api/sim/state").json == {"calls": ["start"], "entities": 4}
    shutdown(app)
    assert app.test_client().get("/api/sim/state").json["calls"] == ["start", "stop"]


def _cmdlines(pid: int) -> list[str]:
    """The command lines of ``pid`` and its descendants, as ``ps`` shows them to anyone."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            out.append(Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(k) for k in kids)
    return out


def test_serve_keeps_passwords_off_command_lines(project, pg_url: str, tmp_path: Path
                                                 ) -> None:  # type: ignore[no-untyped-def]
    # trust auth accepts any password: the URL carries one the way a production URL would
    secret = "pw-never-on-argv-7731"
    url = pg_url.replace("postgres@", f"postgres:{secret}@", 1)
    assert secret in url
    root = project({"modules/plant.yaml": PLANT_YAML})
    with running(root, url, tmp_path / "err.log") as (proc, port):
        deadline = time.monotonic() + 60
        while len(lines := _cmdlines(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker is forked after the master says it serves
        assert len(lines) >= 2 and any("engine.wiring.master" in line for line in lines)
        assert not [line for line in lines if secret in line]
