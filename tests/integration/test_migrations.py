"""Migrations against real databases (SQLite file and PostgreSQL), on tables with rows.

Each test writes YAML versions into a temporary project, migrates, fills rows, changes the
YAML and checks the plan, the refusal of destructive steps and that no value is lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.db import build_metadata, create_engine_for, platform
from engine.db.migrate import (
    DestructiveChange,
    MigrationBlocked,
    apply_on_start,
    migrate,
    plan,
)
from metamodel import load

pytestmark = pytest.mark.integration

NOW = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

V1 = """
module: m
entities:
  well:
    fields:
      name: {type: string, max_length: 20, required: true, unique: true}
      depth: {type: int}
      note: {type: string, max_length: 40}
      samples: {type: table, of: sample}
  sample:
    child: true
    fields:
      taken: {type: date}
  reading:
    fields:
      well: {type: link, to: well, required: true}
      pressure: {type: float}
"""


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = create_engine_for(db_url)
    yield eng
    eng.dispose()


class Project:
    """A temporary project whose YAML is rewritten between migrations."""

    def __init__(self, write: Any, engine: sa.Engine) -> None:
        self.write = write
        self.engine = engine
        self.root: Path = write({})

    def model(self, yaml: str) -> Any:
        self.root = self.write({"modules/m.yaml": yaml})
        return load(self.root)

    def migrate(self, yaml: str, **kw: Any) -> Any:
        return migrate(self.engine, self.model(yaml), self.root, **kw)

    def plan(self, yaml: str) -> Any:
        return plan(self.engine, self.model(yaml), self.root)

    def revisions(self) -> list[str]:
        versions = self.root / "migrations" / "versions"
        return sorted(p.name for p in versions.glob("*.py")) if versions.exists() else []

    def insert(self, table: str, *rows: dict[str, Any]) -> None:
        md = sa.MetaData()
        t = sa.Table(table, md, autoload_with=self.engine)
        with self.engine.begin() as conn:
            conn.execute(t.insert(), [{"created_at": NOW, "updated_at": NOW, **r} for r in rows])

    def rows(self, table: str, *cols: str) -> list[tuple[Any, ...]]:
        t = sa.Table(table, sa.MetaData(), autoload_with=self.engine)
        with self.engine.connect() as conn:
            stmt = sa.select(*(t.c[c] for c in cols)).order_by(t.c.id)
            return [tuple(r) for r in conn.execute(stmt)]

    def columns(self, table: str) -> dict[str, Any]:
        return {c["name"]: c for c in sa.inspect(self.engine).get_columns(table)}


@pytest.fixture
def proj(project: Any, engine: sa.Engine) -> Project:
    return Project(project, engine)


def populated(proj: Project) -> None:
    proj.migrate(V1)
    proj.insert("m_well", {"name": "W-1", "depth": 1200, "note": "first"},
                {"name": "W-2", "depth": None, "note": None},
                {"name": "W-3", "depth": 3400, "note": "a rather long note here"})
    proj.insert("m_reading", {"well": 1, "pressure": 10.5}, {"well": 3, "pressure": 7.25})
    proj.insert("m_sample", {"parent_id": 3, "idx": 0, "taken": dt.date(2024, 1, 31)})


def test_empty_to_v1_then_twice_is_a_no_op(proj: Project) -> None:
    first = proj.plan(V1)
    text = first.format()
    assert "+ create table m_well (" in text and "+ create table m_reading (" in text
    assert "+ create table campo_tables" in text and not first.destructive
    result = proj.migrate(V1)
    assert result.revision is not None and result.revision.exists()
    assert (proj.root / "migrations" / "env.py").exists()
    with proj.engine.connect() as conn:
        reg = dict(conn.execute(sa.text("SELECT name, entity FROM campo_tables")).all())
    assert reg == {"m_well": "m.well", "m_reading": "m.reading", "m_sample": "m.sample"}
    assert proj.plan(V1).empty
    files = proj.revisions()
    again = proj.migrate(V1)
    assert again.revision is None and again.plan.empty and proj.revisions() == files


def test_add_fields_existing_rows_get_defaults(proj: Project) -> None:
    populated(proj)
    v2 = V1.replace("      note: {type: string, max_length: 40}\n",
                    "      note: {type: string, max_length: 40}\n"
                    "      status: {type: enum, values: [active, shut_in], required: true,"
                    " default: active}\n"
                    "      spud: {type: date, default: 2024-05-01}\n"
                    "      remarks: {type: text}\n")
    p = proj.plan(v2)
    text = p.format()
    assert "+ add column m_well.status" in text and "NOT NULL (existing rows get 'active')" in text
    assert not p.destructive and not p.blocked
    proj.migrate(v2)
    assert proj.rows("m_well", "name", "depth", "status", "spud", "remarks") == [
        ("W-1", 1200, "active", dt.date(2024, 5, 1), None),
        ("W-2", None, "active", dt.date(2024, 5, 1), None),
        ("W-3", 3400, "active", dt.date(2024, 5, 1), None),
    ]
    assert proj.columns("m_well")["status"]["nullable"] is False
    assert proj.plan(v2).empty


def test_defaults_of_every_kind_fill_existing_rows(proj: Project) -> None:
    populated(proj)
    v2 = V1.replace("      note: {type: string, max_length: 40}\n",
                    "      note: {type: string, max_length: 40}\n"
                    "      seen: {type: date, required: true, default: today}\n"
                    "      stamp: {type: datetime, required: true, default: now}\n"
                    "      fixed: {type: datetime, default: 2024-01-02T03:04:05Z}\n"
                    "      flags: {type: json, default: {a: [1, 2]}}\n"
                    "      ok: {type: bool, required: true, default: false}\n"
                    "      rate: {type: decimal, precision: 8, scale: 3, default: 1.25}\n")
    proj.migrate(v2)
    rows = proj.rows("m_well", "seen", "stamp", "fixed", "flags", "ok", "rate")
    today = dt.datetime.now(dt.UTC).date()
    for seen, stamp, fixed, flags, ok, rate in rows:
        assert abs((seen - today).days) <= 1
        assert stamp is not None and abs(stamp.replace(tzinfo=dt.UTC).date() - today).days <= 1
        assert fixed.replace(tzinfo=dt.UTC) == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        assert flags == {"a": [1, 2]} and ok is False and float(rate) == 1.25
    assert len(rows) == 3 and proj.plan(v2).empty


def test_required_field_without_default_is_blocked(proj: Project) -> None:
    populated(proj)
    files = proj.revisions()
    v2 = V1.replace("      depth: {type: int}\n",
                    "      depth: {type: int}\n      api: {type: string, required: true}\n")
    text = proj.plan(v2).format()
    assert "x add column m_well.api" in text and "has 3 row(s)" in text
    with pytest.raises(MigrationBlocked):
        proj.migrate(v2, allow_data_loss=True)
    assert proj.revisions() == files and "api" not in proj.columns("m_well")


def test_rename_field_keeps_every_value(proj: Project) -> None:
    populated(proj)
    v2 = (V1.replace("name: {type: string, max_length: 20, required: true, unique: true}",
                     "well_name: {type: string, max_length: 30, required: true, unique: true,"
                     " renamed_from: name}")
          .replace("well: {type: link, to: well, required: true}",
                   "parent_well: {type: link, to: well, required: true, renamed_from: well}"))
    p = proj.plan(v2)
    text = p.format()
    assert "~ rename column m_well.name -> well_name, widen VARCHAR(20) -> VARCHAR(30)" in text
    assert "~ rename column m_reading.well -> parent_well" in text
    assert not p.destructive, text
    proj.migrate(v2)
    assert proj.rows("m_well", "well_name", "depth") == [("W-1", 1200), ("W-2", None),
                                                         ("W-3", 3400)]
    assert proj.rows("m_reading", "parent_well", "pressure") == [(1, 10.5), (3, 7.25)]
    assert proj.plan(v2).empty, proj.plan(v2).format()
    with proj.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.text("INSERT INTO m_well (created_at, updated_at, well_name) "
                             "VALUES (:t, :t, 'W-1')"), {"t": NOW})


def test_drop_column_refused_without_flag(proj: Project) -> None:
    populated(proj)
    files = proj.revisions()
    v2 = V1.replace("      note: {type: string, max_length: 40}\n", "")
    with pytest.raises(DestructiveChange) as err:
        proj.migrate(v2)
    text = err.value.plan_text
    assert "! drop column m_well.note  [DESTRUCTIVE]" in text
    assert "blast radius: 3 row(s) in m_well, 2 non-null value(s) in note" in text
    assert proj.revisions() == files and "note" in proj.columns("m_well")
    result = proj.migrate(v2, allow_data_loss=True)
    assert result.revision is not None
    assert "note" not in proj.columns("m_well")
    assert proj.rows("m_well", "name", "depth") == [("W-1", 1200), ("W-2", None), ("W-3", 3400)]
    assert proj.rows("m_reading", "well") == [(1,), (3,)]
    assert proj.plan(v2).empty


def test_removed_entity_is_a_destructive_drop_with_its_links(proj: Project) -> None:
    populated(proj)
    v2 = """
module: m
entities:
  reading:
    fields:
      pressure: {type: float}
"""
    p = proj.plan(v2)
    text = p.format()
    assert "! drop table m_well  [DESTRUCTIVE]" in text
    assert "blast radius: 3 row(s) in m_well" in text
    assert "linked from m_reading.well (2 value(s))" in text
    assert "! drop column m_reading.well  [DESTRUCTIVE]" in text
    assert "well is a link to m_well" in text
    with pytest.raises(DestructiveChange):
        proj.migrate(v2)
    proj.migrate(v2, allow_data_loss=True)
    assert "m_well" not in sa.inspect(proj.engine).get_table_names()
    assert proj.rows("m_reading", "pressure") == [(10.5,), (7.25,)]
    with proj.engine.connect() as conn:
        reg = conn.execute(sa.text("SELECT name FROM campo_tables")).scalars().all()
    assert reg == ["m_reading"]
    assert proj.plan(v2).empty


def test_type_widening_keeps_data(proj: Project) -> None:
    populated(proj)
    v2 = (V1.replace("note: {type: string, max_length: 40}", "note: {type: text}")
          .replace("depth: {type: int}", "depth: {type: decimal, precision: 12, scale: 2}")
          .replace("max_length: 20, required", "max_length: 60, required"))
    p = proj.plan(v2)
    assert not p.destructive, p.format()
    assert "widen VARCHAR(20) -> VARCHAR(60)" in p.format()
    proj.migrate(v2)
    rows = proj.rows("m_well", "name", "depth", "note")
    assert [(n, None if d is None else Decimal(str(d)), t) for n, d, t in rows] == [
        ("W-1", Decimal("1200"), "first"), ("W-2", None, None),
        ("W-3", Decimal("3400"), "a rather long note here")]
    assert proj.plan(v2).empty, proj.plan(v2).format()


def test_type_narrowing_is_destructive_and_cuts_values(proj: Project) -> None:
    populated(proj)
    v2 = V1.replace("note: {type: string, max_length: 40}", "note: {type: string, max_length: 10}")
    with pytest.raises(DestructiveChange) as err:
        proj.migrate(v2)
    text = err.value.plan_text
    assert "! alter column m_well.note: narrow VARCHAR(40) -> VARCHAR(10)  [DESTRUCTIVE]" in text
    assert "2 non-null value(s) in note" in text
    assert "1 value(s) longer than 10 characters are cut" in text
    proj.migrate(v2, allow_data_loss=True)
    assert proj.rows("m_well", "note") == [("first",), (None,), ("a rather l",)]
    assert proj.plan(v2).empty


def test_type_conversion_across_families(proj: Project) -> None:
    populated(proj)
    v2 = V1.replace("depth: {type: int}", "depth: {type: string, max_length: 12}")
    p = proj.plan(v2)
    assert [s.text for s in p.destructive] == [
        "alter column m_well.depth: narrow BIGINT -> VARCHAR(12)"]
    proj.migrate(v2, allow_data_loss=True)
    assert proj.rows("m_well", "depth") == [("1200",), (None,), ("3400",)]
    assert proj.plan(v2).empty


def test_failed_migration_leaves_no_trace(project: Any, pg_url: str) -> None:
    # PostgreSQL only: it refuses to turn 'first' into a number, so the migration fails
    # midway; SQLite converts any text to a number and never fails here
    engine = create_engine_for(pg_url)
    proj = Project(project, engine)
    populated(proj)
    files = proj.revisions()
    v2 = V1.replace("note: {type: string, max_length: 40}", "note: {type: int}")
    with pytest.raises(sa.exc.DataError):
        proj.migrate(v2, allow_data_loss=True)
    assert proj.revisions() == files
    assert isinstance(proj.columns("m_well")["note"]["type"], sa.String)
    assert proj.plan(v2).destructive
    engine.dispose()


def test_decimal_that_does_not_fit_is_blocked(proj: Project) -> None:
    populated(proj)
    v2 = V1.replace("depth: {type: int}", "depth: {type: decimal, precision: 5, scale: 2}")
    p = proj.plan(v2)
    assert [s.table for s in p.blocked] == ["m_well"]
    assert "2 value(s) of depth do not fit NUMERIC(5, 2)" in p.format()


def test_unique_over_duplicates_is_blocked(proj: Project) -> None:
    populated(proj)
    proj.insert("m_reading", {"well": 1, "pressure": 10.5})
    v2 = V1.replace("pressure: {type: float}", "pressure: {type: float, unique: true}")
    with pytest.raises(MigrationBlocked, match="1 value"):
        proj.migrate(v2)


def test_make_required_fills_empty_rows_with_default(proj: Project) -> None:
    populated(proj)
    v2 = V1.replace("depth: {type: int}", "depth: {type: int, required: true, default: 0}")
    proj.migrate(v2)
    assert proj.rows("m_well", "depth") == [(1200,), (0,), (3400,)]
    assert proj.columns("m_well")["depth"]["nullable"] is False
    assert proj.plan(v2).empty


V2_RENAMED = """
module: m
entities:
  borehole:
    renamed_from: well
    fields:
      name: {type: string, max_length: 20, required: true, unique: true}
      depth: {type: int, index: true}
      note: {type: string, max_length: 40}
      samples: {type: table, of: sample}
      parent: {type: link, to: borehole, on_delete: set_null}
  sample:
    child: true
    fields:
      taken: {type: date}
  reading:
    fields:
      well: {type: link, to: borehole, required: true}
      pressure: {type: float}
"""


def test_empty_v1_v2_with_entity_rename_loses_nothing(proj: Project, db_url: str,
                                                      tmp_path: Path) -> None:
    populated(proj)
    p = proj.plan(V2_RENAMED)
    text = p.format()
    assert "~ rename table m_well -> m_borehole (keeps data)" in text
    assert not p.destructive, text
    proj.migrate(V2_RENAMED)
    names = sa.inspect(proj.engine).get_table_names()
    assert "m_borehole" in names and "m_well" not in names
    assert proj.rows("m_borehole", "name", "depth", "note") == [
        ("W-1", 1200, "first"), ("W-2", None, None), ("W-3", 3400, "a rather long note here")]
    assert proj.rows("m_reading", "well", "pressure") == [(1, 10.5), (3, 7.25)]
    assert proj.rows("m_sample", "parent_id", "taken") == [(3, dt.date(2024, 1, 31))]
    assert proj.plan(V2_RENAMED).empty, proj.plan(V2_RENAMED).format()
    with proj.engine.connect() as conn:
        reg = dict(conn.execute(sa.text("SELECT name, entity FROM campo_tables")).all())
        fks = sa.inspect(conn).get_foreign_keys("m_reading")
    assert reg == {"m_borehole": "m.borehole", "m_reading": "m.reading", "m_sample": "m.sample"}
    assert [fk["referred_table"] for fk in fks] == ["m_borehole"]
    # the link still guards its rows after the rename
    with proj.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.text("INSERT INTO m_reading (created_at, updated_at, well) "
                             "VALUES (:t, :t, 99)"), {"t": NOW})
    # a new entity may take the old name: no constraint, index or sequence name is left over
    v3 = V2_RENAMED.replace("    renamed_from: well\n", "") + """  well:
    fields:
      name: {type: string, max_length: 20, required: true, unique: true}
      depth: {type: int, index: true}
"""
    assert [s.text.split(" (")[0] for s in proj.plan(v3).steps] == ["create table m_well"]
    proj.migrate(v3)
    proj.insert("m_well", {"name": "W-1"})
    assert proj.rows("m_well", "name") == [("W-1",)]
    # the history in migrations/ (written against this database, SQLite or PostgreSQL)
    # replays on an empty SQLite file to the same schema: revisions are dialect-neutral
    other = create_engine_for(f"sqlite:///{tmp_path / 'replay.db'}")
    try:
        pending = plan(other, load(proj.root), proj.root).pending
        assert sorted(pending) == sorted(
            p.name.split("_")[2] for p in (proj.root / "migrations/versions").glob("*.py"))
        assert len(pending) == 3
        result = migrate(other, load(proj.root), proj.root)
        assert result.revision is None and len(result.applied) == 3
        assert plan(other, load(proj.root)).empty
    finally:
        other.dispose()


def test_unrelated_tables_are_never_touched(proj: Project) -> None:
    with proj.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE legacy_stuff (id INTEGER PRIMARY KEY, x TEXT)"))
        conn.execute(sa.text("INSERT INTO legacy_stuff (id, x) VALUES (1, 'keep')"))
    p = proj.plan(V1)
    assert "legacy_stuff" not in p.format() and "alembic_version" not in p.format()
    proj.migrate(V1, allow_data_loss=True)
    proj.migrate("module: m\nentities: {}\n", allow_data_loss=True)
    assert proj.rows("legacy_stuff", "x") == [("keep",)]
    names = set(sa.inspect(proj.engine).get_table_names())
    assert platform.VERSION_TABLE in names  # the platform tables are migrated too
    assert {t for t in names if not t.startswith("campo_") or t == "campo_tables"} == {
        "legacy_stuff", "alembic_version", "campo_tables"}


def test_apply_on_start(proj: Project) -> None:
    model = proj.model(V1)
    applied = apply_on_start(proj.engine, model, proj.root)
    assert any("create table m_well" in line for line in applied)
    assert apply_on_start(proj.engine, model, proj.root) == []
    with pytest.raises(DestructiveChange, match="drop column m_well.note"):
        apply_on_start(proj.engine, proj.model(V1.replace(
            "      note: {type: string, max_length: 40}\n", "")), proj.root)


def test_apply_on_start_without_a_writable_folder(project: Any, engine: sa.Engine) -> None:
    root = project({"modules/m.yaml": V1, "migrations/versions": ""})  # a file, not a folder
    model = load(root)
    applied = apply_on_start(engine, model, root)
    assert any("create table m_reading" in line for line in applied)
    assert plan(engine, model).empty
    assert not (root / "migrations" / "env.py").exists()


def test_metadata_matches_what_migrations_build(proj: Project) -> None:
    model = proj.model(V2_RENAMED)
    migrate(proj.engine, model, proj.root)
    md = build_metadata(model)
    insp = sa.inspect(proj.engine)
    for name, table in md.tables.items():
        assert {c["name"] for c in insp.get_columns(name)} == set(table.c.keys())


def test_tables_named_before_the_registry(project: Any, engine: sa.Engine) -> None:
    # 'alpha_item' sorts before 'campo_tables': its registry row must wait for the registry
    root = project({"modules/alpha.yaml": "module: alpha\nentities:\n  item:\n    fields:\n"
                                          "      code: {type: string}\n"})
    result = migrate(engine, load(root), root)
    assert result.revision is not None
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT entity FROM campo_tables")).scalars().all() == [
            "alpha.item"]
