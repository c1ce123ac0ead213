"""Link fields are indexed by default (issue 10): ``on_delete`` checks and the lists of
records linking to one record read them, and PostgreSQL does not index foreign keys by
itself. ``index: false`` opts out; existing databases get the index from ``campo plan`` /
``campo migrate``."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from engine.db import build_metadata, create_engine_for
from engine.db.migrate import migrate, plan
from metamodel import load
from metamodel.schema import json_schema

pytestmark = pytest.mark.integration

YAML = """
module: m
entities:
  pad:
    fields:
      name: {type: string, max_length: 20, required: true, unique: true}
  well:
    fields:
      name: {type: string, max_length: 20}
      pad: {type: link, to: pad, on_delete: restrict}
      twin: {type: link, to: well, on_delete: set_null, index: false}
      slot: {type: link, to: pad, unique: true}
      lease: {type: link, to: pad}
    indexes:
      - [lease]
      - [pad, name]
"""


def _indexes(engine: sa.Engine, table: str) -> dict[tuple[str, ...], bool]:
    insp = sa.inspect(engine)
    out = {tuple(i["column_names"]): bool(i.get("unique")) for i in insp.get_indexes(table)}
    for u in insp.get_unique_constraints(table):
        out[tuple(u["column_names"])] = True
    return out


def test_links_are_indexed_unless_opted_out(project: Any, db_url: str) -> None:
    model = load(project({"modules/m.yaml": YAML}))
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    ix = _indexes(engine, "m_well")
    assert ix[("pad",)] is False                  # by default
    assert ("twin",) not in ix                    # index: false
    assert ix[("slot",)] is True                  # unique: its own index, no second one
    assert ix[("lease",)] is False and ("pad", "name") in ix  # indexes: [[lease]] once
    names = [i["name"] for i in sa.inspect(engine).get_indexes("m_well")]
    assert len(names) == len(set(names)) and names.count("ix_m_well_lease") == 1
    engine.dispose()


def test_an_existing_database_gets_the_index_from_plan_and_migrate(project: Any,
                                                                  db_url: str) -> None:
    old = YAML.replace("on_delete: restrict}", "on_delete: restrict, index: false}")
    root = project({"modules/m.yaml": old})
    engine = create_engine_for(db_url)
    migrate(engine, load(root), root)  # the database as Campo made it before: no index
    assert ("pad",) not in _indexes(engine, "m_well")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO m_pad (name, created_at, updated_at) "
                             "VALUES ('P1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO m_well (name, pad, created_at, updated_at) "
                             "VALUES ('W1', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    root = project({"modules/m.yaml": YAML})
    p = plan(engine, load(root), root)
    assert "+ add index ix_m_well_pad on m_well (pad)" in p.format(), p.format()
    assert len(p.steps) == 1 and not p.destructive and not p.blocked
    result = migrate(engine, load(root), root)
    assert result.revision is not None
    source = result.revision.read_text()
    assert "create_index(" in source and "ix_m_well_pad" in source
    assert _indexes(engine, "m_well")[("pad",)] is False
    assert plan(engine, load(root), root).empty
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name, pad FROM m_well")).one() == ("W1", 1)
    engine.dispose()


def test_the_yaml_language_documents_the_default() -> None:
    link = json_schema()["definitions"]["LinkField"]["properties"]["index"]
    assert link["default"] is True and "index: false" in link["description"]
