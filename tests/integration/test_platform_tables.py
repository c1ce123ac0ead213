"""Platform tables (``campo_*``): one MetaData, versioned by their own Alembic branch.

Fresh databases, databases made by the ``create_all`` of earlier versions (the SQL in
``tests/fixtures/platform/``, dumped from main at e16b6df), a new platform revision written
by the tool and applied with data kept, and the audit triggers surviving all of it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.db import create_engine_for, platform
from engine.db.migrate import migrate
from engine.db.platform_ddl import timescaledb_version
from engine.db.platform_revision import import_engine, write_revision
from metamodel import load

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "platform"
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)

import_engine()   # every module that declares a platform table


def _legacy(url: str) -> sa.Engine:
    """A database whose campo_* tables were made by the old create_all code, with rows."""
    engine = create_engine_for(url)
    dialect = engine.dialect.name
    script = (FIXTURES / f"legacy_{dialect}.sql").read_text(encoding="utf-8")
    with engine.begin() as conn:
        if dialect == "sqlite":
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.executescript(script)
        else:
            conn.exec_driver_sql(script)
        for sql in (
            "INSERT INTO campo_user (username, created_at, updated_at, password_hash) "
            "VALUES ('ana', :t, :t, 'h')",
            "INSERT INTO campo_user_role (user_id, role) VALUES (1, 'admin')",
            "INSERT INTO campo_user_site (user_id, site) VALUES (1, '*')",
            "INSERT INTO campo_session (id, user_id, created_at, last_seen_at, expires_at, "
            "refresh_jti) VALUES ('s1', 1, :t, :t, :t, 'j1')",
            "INSERT INTO campo_api_key (user_id, name, prefix, key_hash, created_at) "
            "VALUES (1, 'k', 'pre', 'hash', :t)",
            "INSERT INTO campo_audit (ts, action, username) VALUES (:t, 'login', 'ana')",
            "INSERT INTO campo_series (entity, key, last) VALUES ('m.wo', 'WO-{#}', 41)",
            "INSERT INTO campo_transition (entity, record_id, action, from_state, to_state, "
            "at) VALUES ('m.wo', 3, 'approve', 'draft', 'approved', :t)",
        ):
            conn.execute(sa.text(sql), {"t": T0})
    return engine


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for name in ("campo_user", "campo_user_role", "campo_user_site", "campo_session",
                     "campo_api_key", "campo_audit", "campo_series", "campo_transition"):
            t = platform.metadata.tables[name]
            out[name] = [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
    return out


def _differences(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda n, t, _p: t != "table" or n in platform.metadata.tables})
        return list(compare_metadata(ctx, platform.metadata))


def _immutable(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO campo_audit (ts, action) VALUES (:t, 'probe')"),
                     {"t": T0})
    for sql in ("UPDATE campo_audit SET action = 'x'", "DELETE FROM campo_audit"):
        with pytest.raises(sa.exc.DBAPIError, match="campo_audit rows are immutable"):
            with engine.begin() as conn:
                conn.exec_driver_sql(sql)


def test_a_fresh_database_gets_every_platform_table_at_the_head(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        assert [line.split(":")[0] for line in platform.upgrade(engine)] == list(
            reversed([s.revision for s in platform.scripts().walk_revisions()]))
        assert platform.upgrade(engine) == []          # at the head: nothing to do
        with engine.connect() as conn:
            assert platform.current(conn) == platform.heads()
            assert set(platform.metadata.tables) <= set(sa.inspect(conn).get_table_names())
            assert timescaledb_version(conn) is None   # plain PostgreSQL, SQLite
        assert _differences(engine) == []              # the code and the revisions agree
        _immutable(engine)
    finally:
        engine.dispose()


def test_one_linear_history() -> None:
    assert len(platform.heads()) == 1
    bases = platform.scripts().get_bases()
    assert bases == ["p0001"]
    assert platform.scripts().get_revision("p0001").branch_labels == {platform.BRANCH}


def test_a_database_made_by_create_all_is_adopted_with_its_data(
        db_url: str, project: Any, capsys: pytest.CaptureFixture[str]) -> None:
    engine = _legacy(db_url)
    try:
        before = _snapshot(engine)
        root = project({"modules/m.yaml": "module: m\nentities:\n  tank:\n    fields:\n"
                                          "      code: {type: string}\n"})
        result = migrate(engine, load(root), root)          # what campo migrate/serve run
        applied = [line.split(":")[0] for line in result.platform]
        assert applied[0] == "p0001" and applied == sorted(applied)  # the baseline adopts
        assert applied[-1] == platform.heads()[0]
        assert _snapshot(engine) == before                  # same data
        with engine.connect() as conn:
            assert platform.current(conn) == platform.heads()      # versioned
            if engine.dialect.name == "postgresql":
                assert sa.inspect(conn).get_pk_constraint("campo_series")["name"] == \
                    "pk_campo_series"
        assert _differences(engine) == []
        _immutable(engine)     # its one probe row goes on after the old row
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT max(id) FROM campo_audit").scalar() == 2
    finally:
        engine.dispose()


def test_a_platform_table_change_is_migrated_with_data_kept(db_url: str,
                                                            tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    shutil.copytree(platform.VERSIONS, versions)
    engine = create_engine_for(db_url)
    try:
        platform.upgrade(engine, versions)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO campo_audit (ts, action, username) "
                                 "VALUES (:t, 'login', 'ana')"), {"t": T0})
            conn.execute(sa.text("INSERT INTO campo_user (username, created_at, updated_at) "
                                 "VALUES ('ana', :t, :t)"), {"t": T0})
        # the code adds two columns to campo_* tables; the tool writes the revision
        changed = sa.MetaData(naming_convention=platform.metadata.naming_convention)
        for t in platform.metadata.sorted_tables:
            t.to_metadata(changed)
        changed.tables["campo_audit"].append_column(sa.Column("site", sa.String(100)))
        changed.tables["campo_user"].append_column(sa.Column(
            "locale", sa.String(8), nullable=False, server_default="es"))
        path = write_revision("audit site, user locale", versions, changed)
        assert path is not None and path.name == f"{len(list(versions.glob('*.py'))):04d}" \
            "_audit_site_user_locale.py"
        text = path.read_text(encoding="utf-8")
        assert "engine.db.platform_ddl.immutable_rows(op.get_bind(), 'campo_audit')" in text
        done = platform.upgrade(engine, versions)
        assert [line.split(":")[0] for line in done] == [path.name[:4].join(("p", ""))]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT action, username, site FROM campo_audit")
                                ).all() == [("login", "ana", None)]
            assert conn.execute(sa.text("SELECT username, locale FROM campo_user")).all() == [
                ("ana", "es")]
            assert platform.current(conn) == platform.heads(versions)
        assert write_revision("nothing", versions, changed) is None
        _immutable(engine)          # the triggers survived the change
    finally:
        engine.dispose()


def test_hooks_must_be_importable_functions() -> None:
    t = sa.Table("campo_probe", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    with pytest.raises(ValueError, match="module-level function"):
        platform.on_create(t, lambda conn, name: None)
