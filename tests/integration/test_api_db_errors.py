"""Only a real outage answers 503 "database unavailable": an aggregate the database cannot
compute (SQLite's integer overflow in ``sum``) is a 422 saying so, on both databases the
answer is never a 5xx; a database file that cannot be opened is the 503."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.api import create_app
from engine.db import build_metadata, create_engine_for
from engine.settings import Settings
from metamodel import load

pytestmark = pytest.mark.integration

YAML = """
module: m
entities:
  meter:
    fields:
      code: {type: string, max_length: 10}
      total: {type: int}
"""


def _app(project, url: str):  # type: ignore[no-untyped-def]
    model = load(project({"modules/m.yaml": YAML}))
    engine = create_engine_for(url)
    build_metadata(model).create_all(engine)
    return create_app(model, engine, Settings()), engine


def test_a_sum_that_overflows_is_not_an_outage(project, db_url: str) -> None:  # type: ignore[no-untyped-def]
    app, engine = _app(project, db_url)
    c = app.test_client()
    for code in ("a", "b"):
        r = c.post("/api/m/meter", json={"code": code, "total": 2**63 - 1})
        assert r.status_code == 201, r.json
    r = c.get("/api/m/meter/aggregate?sum=total")
    if engine.dialect.name == "sqlite":
        assert r.status_code == 422, r.json
        assert "overflow" in r.json["message"] and "unavailable" not in r.json["message"]
    else:  # PostgreSQL sums bigint into numeric
        assert r.status_code == 200 and r.json["items"][0]["sum"]["total"] == 2 * (2**63 - 1)
    assert c.get("/api/m/meter/aggregate?avg=total").status_code == 200
    engine.dispose()


def test_a_database_that_cannot_be_opened_is_503(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "gone.db"
    app, engine = _app(project, f"sqlite:///{path}")
    c = app.test_client()
    assert c.get("/api/m/meter").status_code == 200
    engine.dispose()
    path.unlink()
    path.mkdir()  # a directory where the file was: SQLite cannot open it
    r = c.get("/api/m/meter")
    assert r.status_code == 503 and "unavailable" in r.json["message"], r.json
    engine.dispose()
    shutil.rmtree(path)
