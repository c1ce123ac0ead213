"""Ids of deleted rows are never handed out again (issue 8.12).

SQLite reused the largest id after a delete (create, delete, create -> the same id), so the
audit rows of two different records shared an id. Generated tables are ``AUTOINCREMENT`` on
SQLite (PostgreSQL's sequences never reuse ids), and ``campo plan``/``migrate`` rebuild the
tables of databases made before, starting after the largest id the audit trail names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from support.api import PLANT_YAML, ApiEnv, make_env

from engine.db import create_engine_for
from engine.db.migrate import migrate, plan
from metamodel import load

pytestmark = pytest.mark.integration

V1 = """
module: m
entities:
  well:
    fields:
      name: {type: string, max_length: 20, required: true, unique: true}
      samples: {type: table, of: sample}
  sample:
    child: true
    fields:
      taken: {type: date}
  reading:
    fields:
      well: {type: link, to: well, required: true, on_delete: cascade}
      pressure: {type: float}
"""
NOW = dt.datetime(2025, 1, 2, tzinfo=dt.UTC)


@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url)
    yield e
    e.engine.dispose()


def test_create_delete_create_gives_a_new_id(env: ApiEnv) -> None:
    first = env.create("site", {"name": "Pad 1"})
    second = env.create("site", {"name": "Pad 2"})
    assert env.client.delete(f"/api/plant/site/{second['id']}?version=1").status_code == 204
    third = env.create("site", {"name": "Pad 3"})
    assert third["id"] > second["id"] > first["id"]
    child = env.create("equipment", {"tag": "E-1", "name": "e", "readings": [
        {"taken_on": "2024-01-01"}, {"taken_on": "2024-01-02"}]})
    rows = [r["id"] for r in env.client.get(f"/api/plant/equipment/{child['id']}").json[
        "readings"]]
    r = env.client.patch(f"/api/plant/equipment/{child['id']}",
                         json={"readings": [{"id": rows[0], "taken_on": "2024-01-01"}],
                               "version": child["version"]})
    assert r.status_code == 200, r.json
    r = env.client.patch(f"/api/plant/equipment/{child['id']}", json={
        "readings": [{"id": rows[0], "taken_on": "2024-01-01"}, {"taken_on": "2024-02-02"}],
        "version": r.json["version"]})
    assert r.status_code == 200, r.json
    assert max(x["id"] for x in r.json["readings"]) > rows[1]  # a child row's id too


def _without_autoincrement(engine: sa.Engine, tables: list[str]) -> None:
    """Make the tables as Campo made them before (SQLite: no AUTOINCREMENT)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        ops = Operations(MigrationContext.configure(conn))
        for t in tables:
            with ops.batch_alter_table(t, recreate="always",
                                       table_kwargs={"sqlite_autoincrement": False}):
                pass
        sql = conn.execute(sa.text("SELECT group_concat(sql) FROM sqlite_master "
                                   "WHERE name LIKE 'm\\_%' ESCAPE '\\'")).scalar()
    assert "AUTOINCREMENT" not in str(sql).upper()


def test_an_existing_database_is_rebuilt_by_plan_and_migrate(project: Any,
                                                            db_url: str) -> None:
    root = project({"modules/m.yaml": V1})
    model = load(root)
    engine = create_engine_for(db_url)
    migrate(engine, model, root)
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        _without_autoincrement(engine, ["m_well", "m_sample", "m_reading"])
    now = {"created_at": NOW, "updated_at": NOW}
    with engine.begin() as conn:
        for i in (1, 2, 3, 4):
            conn.execute(sa.text("INSERT INTO m_well (name, created_at, updated_at) "
                                 "VALUES (:n, :created_at, :updated_at)"),
                         {"n": f"W-{i}", **now})
        conn.execute(sa.text("INSERT INTO m_reading (well, pressure, created_at, updated_at) "
                             "VALUES (1, 2.5, :created_at, :updated_at)"), now)
        conn.execute(sa.text("DELETE FROM m_well WHERE id IN (3, 4)"))
        # the audit trail remembers well 4, deleted before the rebuild
        conn.execute(sa.text("INSERT INTO campo_audit (ts, action, entity, record_id) "
                             "VALUES (:ts, 'delete', 'm.well', '4')"), {"ts": NOW})
    p = plan(engine, model, root)
    text = p.format()
    if not sqlite:
        assert p.empty, text
    else:
        for t in ("m_well", "m_sample", "m_reading"):
            assert f"~ rebuild table {t} with AUTOINCREMENT" in text, text
        assert not p.destructive and not p.blocked
        result = migrate(engine, model, root)
        assert result.revision is not None
        source = result.revision.read_text()
        assert 'recreate="always"' in source
        imports = [ln for ln in source.splitlines() if ln.startswith(("import ", "from "))]
        assert not [ln for ln in imports if "engine" in ln or "campo" in ln], imports
        assert plan(engine, model, root).empty
    with engine.begin() as conn:
        kept = conn.execute(sa.text("SELECT id, name FROM m_well ORDER BY id")).all()
        assert [tuple(r) for r in kept] == [(1, "W-1"), (2, "W-2")]
        assert conn.execute(sa.text("SELECT well FROM m_reading")).scalar() == 1
        conn.execute(sa.text("INSERT INTO m_well (name, created_at, updated_at) "
                             "VALUES ('W-5', :created_at, :updated_at)"), now)
        new_id = conn.execute(sa.text("SELECT id FROM m_well WHERE name = 'W-5'")).scalar()
        if sqlite:
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'm_well'"))
            assert "AUTOINCREMENT" in str(sql.scalar()).upper()
            fks = conn.exec_driver_sql("PRAGMA foreign_key_list(m_reading)").all()
            assert [(f[2], f[3], f[6]) for f in fks] == [("m_well", "well", "CASCADE")]
    assert new_id == 5  # SQLite: after the audit's 4, not the kept 2 or the deleted 3
    engine.dispose()


def test_a_table_copied_by_a_later_migration_stays_autoincrement(project: Any,
                                                                 sqlite_url: str) -> None:
    """Alembic's batch copy rebuilds a SQLite table from its reflection, which has no
    AUTOINCREMENT: the revisions say it again."""
    root = project({"modules/m.yaml": V1})
    engine = create_engine_for(sqlite_url)
    migrate(engine, load(root), root)
    v2 = V1.replace("      pressure: {type: float}\n",
                    "      pressure: {type: float, required: true, default: 0}\n"
                    "      note: {type: string, max_length: 10}\n")
    root = project({"modules/m.yaml": v2})
    result = migrate(engine, load(root), root)
    assert result.revision is not None and "sqlite_autoincrement" in \
        result.revision.read_text()
    with engine.connect() as conn:
        sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'm_reading'"))
        assert "AUTOINCREMENT" in str(sql.scalar()).upper()
    assert plan(engine, load(root), root).empty
    engine.dispose()
