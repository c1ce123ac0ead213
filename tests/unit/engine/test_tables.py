"""The model -> SQLAlchemy tables compiler (no database server)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.db import build_metadata, create_engine_for
from engine.db.tables import INFO_KEY, UTCDateTime, column_type
from metamodel import load

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> sa.MetaData:
    """The showcase module alone (other modules of the repository may come and go)."""
    root = tmp_path_factory.mktemp("showcase")
    (root / "modules").mkdir()
    shutil.copy(REPO / "modules" / "showcase" / "showcase.yaml", root / "modules")
    return build_metadata(load(root))


def test_every_entity_is_a_table_with_system_columns(showcase: sa.MetaData) -> None:
    md = showcase
    assert {"showcase_field_area", "showcase_asset", "showcase_asset_reading",
            "showcase_inspection"} <= set(md.tables)
    for table in md.tables.values():
        assert list(table.c.keys())[:6] == ["id", "created_at", "created_by", "updated_at",
                                             "updated_by", "version"]
        assert table.c.id.primary_key and table.c.version.server_default is not None


def test_child_table_has_parent_and_order(showcase: sa.MetaData) -> None:
    t = showcase.tables["showcase_asset_reading"]
    (fk,) = t.c.parent_id.foreign_keys
    assert fk.target_fullname == "showcase_asset.id" and fk.ondelete == "CASCADE"
    assert not t.c.parent_id.nullable and t.c.idx.server_default is not None
    assert "readings" not in showcase.tables["showcase_asset"].c  # table fields are no column


def test_field_types_and_options(showcase: sa.MetaData) -> None:
    t = showcase.tables["showcase_asset"]
    assert isinstance(t.c.depth_m.type, sa.Numeric)
    assert (t.c.depth_m.type.precision, t.c.depth_m.type.scale) == (10, 2)
    assert isinstance(t.c.code.type, sa.String) and t.c.code.type.length == 32
    assert not t.c.code.nullable and t.c.notes.nullable
    assert isinstance(t.c.last_inspection_at.type, UTCDateTime)
    assert isinstance(t.c.attributes.type, sa.JSON)
    assert t.c.kind.type.length == 32          # enum: at least 32 characters
    assert t.c.code.info[INFO_KEY].type == "string"
    (fk,) = t.c.parent_asset.foreign_keys
    assert fk.ondelete == "SET NULL" and fk.target_fullname == "showcase_asset.id"


def test_constraint_and_index_names_follow_the_convention(showcase: sa.MetaData) -> None:
    t = showcase.tables["showcase_asset"]
    names = {c.name for c in t.constraints} | {i.name for i in t.indexes}
    assert {"pk_showcase_asset", "uq_showcase_asset_code",
            "uq_showcase_asset_field_area_name", "fk_showcase_asset_field_area",
            "ix_showcase_asset_field_area",
            "ix_showcase_asset_kind_showcase_asset_active"} <= names


def test_ddl_compiles_for_both_dialects(showcase: sa.MetaData) -> None:
    for table in showcase.sorted_tables:
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            ddl = str(sa.schema.CreateTable(table).compile(dialect=dialect))
            assert table.name in ddl
    pg = str(sa.schema.CreateTable(showcase.tables["showcase_asset"])
             .compile(dialect=postgresql.dialect()))
    assert "TIMESTAMP WITH TIME ZONE" in pg and "id BIGSERIAL" in pg


def test_column_type_of_each_field_type() -> None:
    class F:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    assert isinstance(column_type(F(type="int")), sa.BigInteger)
    assert isinstance(column_type(F(type="float")), sa.Float)
    assert isinstance(column_type(F(type="date")), sa.Date)
    assert isinstance(column_type(F(type="text")), sa.Text)


def test_utc_datetime_round_trip(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    md = sa.MetaData()
    t = sa.Table("t", md, sa.Column("at", UTCDateTime()))
    md.create_all(engine)
    local = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"at": local}, {"at": dt.datetime(2025, 6, 1, 15, 0)}])
        got = conn.execute(sa.select(t.c.at)).scalars().all()
        fk = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    engine.dispose()
    assert got == [dt.datetime(2025, 6, 1, 15, 0, tzinfo=dt.UTC)] * 2
    assert fk == 1


KINDS_YAML = """
module: k
entities:
  other:
    fields:
      name: {type: string, max_length: 10}
  every:
    fields:
      s: {type: string, max_length: 17}
      s_free: {type: string}
      t: {type: text}
      i: {type: int}
      d: {type: decimal, precision: 12, scale: 3}
      f: {type: float}
      b: {type: bool}
      day: {type: date}
      at: {type: datetime}
      e: {type: enum, values: [a, b]}
      e_long: {type: enum, values: [a_rather_long_code_of_forty_one_characters]}
      j: {type: json}
      l: {type: link, to: other}
      file: {type: attachment}
"""


def test_tables_and_revisions_use_the_same_type_for_every_kind(tmp_path: Path) -> None:
    """``SQL_TYPES`` is the one map of kinds to SQL types: the source a revision writes
    compiles to the column the tables declare, on both dialects (the enum used to be an
    unsized VARCHAR in revisions)."""
    from engine.db.render import type_source
    from engine.db.tables import SQL_TYPES
    from metamodel.spec import FIELD_TYPES

    assert set(SQL_TYPES) == set(FIELD_TYPES) - {"table"}
    (tmp_path / "modules").mkdir()
    (tmp_path / "modules" / "k.yaml").write_text(KINDS_YAML)
    ent = load(tmp_path).entities["k.every"]
    seen = set()
    for name, f in ent.stored_fields().items():
        seen.add(f.type)
        declared = column_type(f)
        written = eval(type_source(f), {"sa": sa})  # noqa: S307 - our own rendered source
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            assert str(written.compile(dialect=dialect)) == \
                str(declared.compile(dialect=dialect)), (name, dialect.name)
    assert seen == set(SQL_TYPES)
