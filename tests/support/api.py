"""Shared helpers for the REST API tests: a small model, an app factory, a query counter.

Imported by the ``test_api_*`` modules; holds no tests itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from engine.api import create_app
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project
from engine.settings import Settings
from metamodel import Model

PLANT_YAML = """
module: plant
label: {es: Planta, en: Plant}
entities:
  site:
    label: {es: Locación, en: Site}
    naming: {field: name}
    title: "{name}"
    fields:
      name: {type: string, max_length: 40, required: true, unique: true,
             label: {es: Nombre, en: Name}}
      region: {type: string, max_length: 20}
  equipment:
    label: {es: Equipo, en: Equipment}
    title: "{tag} {name}"
    fields:
      tag: {type: string, max_length: 16, required: true, unique: true, pattern: '^[A-Z0-9-]+$',
            label: {es: Etiqueta, en: Tag}, help: {es: Código único, en: Unique code}}
      name: {type: string, max_length: 60, required: true}
      notes: {type: text}
      site: {type: link, to: site, on_delete: restrict}
      parent: {type: link, to: equipment, on_delete: set_null}
      kind: {type: enum, required: true, default: pump,
             values: {pump: {es: Bomba, en: Pump}, tank: {es: Tanque, en: Tank}, valve: Valve}}
      depth_m: {type: decimal, precision: 7, scale: 2, min: 0, max: 12000, unit: m}
      run_hours: {type: int, min: 0, max: 1000000, default: 0, unit: h}
      rate: {type: float, min: 0, unit: bbl/d}
      active: {type: bool, default: true}
      installed_on: {type: date, min: 1950-01-01}
      inspected_at: {type: datetime}
      attrs: {type: json}
      readings: {type: table, of: reading, label: {es: Lecturas, en: Readings}}
    unique_together:
      - [site, name]
  reading:
    child: true
    fields:
      taken_on: {type: date, required: true}
      pressure: {type: float, min: 0}
      comment: {type: string, max_length: 30}
      witness_site: {type: link, to: site, on_delete: restrict}
  inspection:
    fields:
      equipment: {type: link, to: equipment, required: true, on_delete: cascade}
      done_on: {type: date, required: true}
      result: {type: enum, values: [ok, minor, major], default: ok}
"""


@dataclass
class ApiEnv:
    """A test client over a fresh database, with the objects behind it."""

    app: Flask
    client: FlaskClient
    engine: Engine
    model: Model

    def post(self, url: str, body: Any) -> Any:
        """POST JSON and return the response."""
        return self.client.post(url, json=body)

    def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a record and return it (asserting 201)."""
        r = self.client.post(f"/api/plant/{entity}", json=body)
        assert r.status_code == 201, r.json
        return dict(r.json)


def make_env(root: Path, db_url: str, **kwargs: Any) -> ApiEnv:
    """Load the project at ``root`` (as ``campo serve`` does), create its tables on ``db_url``
    and build the app."""
    model = load_project(root)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    settings = kwargs.pop("settings", None) or Settings(max_page_size=100,
                                                        default_page_size=20)
    app = create_app(model, engine, settings, **kwargs)
    return ApiEnv(app, app.test_client(), engine, model)


@contextmanager
def count_queries(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL statements executed on ``engine`` inside the block."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """Assert the common error shape and status; return the body."""
    assert response.status_code == status, (response.status_code, response.data[:500])
    assert response.mimetype == "application/json"
    body = response.json
    assert body["code"] == status
    assert isinstance(body["status"], str) and body["status"]
    assert set(body) <= {"code", "status", "message", "errors"}
    return dict(body)
