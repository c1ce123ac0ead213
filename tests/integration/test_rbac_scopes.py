"""Row scopes translated to SQL select exactly the rows the expression language accepts.

For each scope, every row of a table holding nulls and edge values is tested both ways:
the SQL ``WHERE`` on a real database (SQLite and PostgreSQL) and the compiled expression
evaluated in Python on the same row (with its linked record), for several callers.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.db import build_metadata, create_engine_for
from engine.expr import Context, Type, compile
from engine.rules import load_project, scope_with_virtuals
from engine.rules.scopes import Caller, compile_scope

pytestmark = pytest.mark.integration

YAML = """
module: geo
entities:
  area:
    fields:
      code: {type: string, max_length: 20}
      rank: {type: int}
  thing:
    fields:
      site: {type: string, max_length: 20}
      n: {type: int}
      ok: {type: bool}
      area: {type: link, to: area}
"""

SCOPES = [
    "self.site in user.sites",
    "self.site not in user.sites",
    "self.site == user.username",
    "self.site != 'a'",
    "not (self.site == 'a')",
    "self.n > 2",
    "not (self.n > 2)",
    "self.n <= 2 or self.site is null",
    "self.ok",
    "not self.ok",
    "self.area.code in user.sites",
    "not (self.area.code in user.sites)",
    "self.area.code != 'a'",
    "self.area.rank >= 2 and self.site is not null",
    "self.area == null",
    "self.site in ['a', null]",
    "self.site not in ['a', null]",
    "has_role('supervisor') or self.created_by == user.username",
    "'admin' in user.roles or (self.n != 3 and not (self.area.code == 'b'))",
    "1 < self.n < 4",
    "user.username == self.site",
]

CALLERS = [
    Caller(1, "a", frozenset({"operator"}), frozenset({"a"})),
    Caller(2, "b", frozenset({"supervisor"}), frozenset({"b", "c"})),
    Caller(3, "zed", frozenset({"viewer"}), frozenset()),
]
#: a caller with every site: membership in user.sites is decided without looking
EVERY_SITE = Caller(4, "c", frozenset({"operator"}), frozenset({"*"}))


def test_sql_scopes_match_the_expression_language(project, db_url: str) -> None:  # type: ignore[no-untyped-def]
    root: Path = project({"modules/geo.yaml": YAML})
    model = load_project(root)
    md = build_metadata(model)
    engine = create_engine_for(db_url)
    md.create_all(engine)
    area, thing = md.tables["geo_area"], md.tables["geo_thing"]
    areas = {1: {"code": "a", "rank": 1}, 2: {"code": "b", "rank": 3},
             3: {"code": None, "rank": None}}
    rows: list[dict[str, Any]] = []
    for i, (site, n, ok, link) in enumerate(itertools.product(
            ["a", "b", "zed", None], [1, 3, None], [True, None], [1, 2, 3, None]), start=1):
        rows.append({"id": i, "site": site, "n": n, "ok": ok, "area": link,
                     "created_by": ["a", "b", None][i % 3], "version": 1})
    now = dt.datetime.now(dt.UTC)
    stamp = {"version": 1, "created_at": now, "updated_at": now}
    for row in rows:
        row.update(created_at=now, updated_at=now)
    with engine.begin() as conn:
        conn.execute(area.insert(), [{"id": k, **stamp, **v} for k, v in areas.items()])
        conn.execute(thing.insert(), rows)
    ent = model.entity("geo.thing")
    scope = scope_with_virtuals(model, ent)
    checked = 0
    for source in SCOPES:
        translated = compile_scope(model, _with_scope(ent, source))
        expr = compile(source, scope, expect=Type.BOOL)
        for caller in CALLERS:
            with engine.connect() as conn:
                got = set(conn.execute(sa.select(thing.c.id).where(
                    translated.clause(thing, caller))).scalars())
            want = set()
            for row in rows:
                link = areas.get(row["area"]) if row["area"] is not None else None
                ctx = Context(record=row, links={"area": link}, user=caller.context().user)
                if expr.evaluate(ctx):
                    want.add(row["id"])
            assert got == want, (source, caller)
            checked += 1
    assert checked == len(SCOPES) * len(CALLERS)
    everything = {r["id"] for r in rows}
    with engine.connect() as conn:
        def ids(source: str) -> set[int]:
            clause = compile_scope(model, _with_scope(ent, source)).clause(thing, EVERY_SITE)
            return set(conn.execute(sa.select(thing.c.id).where(clause)).scalars())

        assert ids("self.site in user.sites") == everything  # records without a site too
        assert ids("self.area.code in user.sites") == everything
        assert ids("self.site not in user.sites") == set()
        assert ids("'x' in user.sites and self.n == 1") == {r["id"] for r in rows
                                                            if r["n"] == 1}
        assert ids("self.site == user.username") == {r["id"] for r in rows
                                                     if r["site"] == "c"}
    engine.dispose()


def _with_scope(ent: Any, source: str) -> Any:
    """The entity with ``scope: source`` (entities are frozen: a copy)."""
    import dataclasses

    return dataclasses.replace(ent, spec=ent.spec.model_copy(update={"scope": source}))
