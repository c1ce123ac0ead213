"""Shared pieces of the desk tests: a project with a link, a child table, computed and
conditional fields and a workflow, served behind real authentication with the desk plugin.
(Holds no tests itself.)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from engine.api import create_app, shutdown
from engine.auth.hooks import api_hooks, auth_init_hook
from engine.auth.users import create_user
from engine.db import build_metadata, create_engine_for
from engine.desk import serve_plugin
from engine.rules import load_project
from support.auth import FAST_HASHER, PASSWORD, bearer, build_settings

DESK_YAML = (Path(__file__).resolve().parents[1] / "fixtures" / "desk" / "modules"
             / "field.yaml").read_text(encoding="utf-8")


@dataclass
class Desk:
    app: Flask
    client: FlaskClient
    engine: sa.Engine
    model: Any
    root: Path

    def close(self) -> None:
        shutdown(self.app)
        self.engine.dispose()

    def token(self, name: str) -> dict[str, str]:
        r = self.client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.json
        return bearer(r.json["access_token"])


def desk_app(db_url: str, tmp_path: Path, yaml: str = DESK_YAML,
             files: dict[str, str] | None = None, **settings: Any) -> Desk:
    """The generated API + auth + desk plugin for ``yaml``, with users of each role."""
    root = tmp_path / "project"
    (root / "modules").mkdir(parents=True)
    (root / "modules" / "field.yaml").write_text(yaml, encoding="utf-8")
    for rel, text in (files or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    model = load_project(root)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    s = build_settings(tmp_path, project=root, **settings)
    plugin = serve_plugin(model, engine, s)
    app = create_app(model, engine, s, **api_hooks(),
                     on_init=[auth_init_hook(engine, s, model, hasher=FAST_HASHER),
                              plugin.init_app])
    state = app.extensions["campo_auth"]
    with engine.begin() as conn:
        for name, role in (("ada", "admin"), ("sam", "supervisor"), ("otto", "operator"),
                           ("vic", "viewer")):
            create_user(conn, model, username=name, now=state.now(),
                        password_hash=state.passwords.hash(PASSWORD), roles=[role])
    return Desk(app, app.test_client(), engine, model, root)
