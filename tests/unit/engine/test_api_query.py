"""Query-string parsing, cursors and codecs of the generated API (no database)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from werkzeug.datastructures import MultiDict

from engine.api.codecs import dump_decimal, parse_datetime
from engine.api.query import (
    QueryError,
    decode_cursor,
    encode_cursor,
    keyset_clause,
    parse_list_query,
)
from engine.api.resource import Resource, build_resources, make_dumper
from engine.db import build_metadata
from metamodel import load

YAML = """
module: m
entities:
  thing:
    fields:
      code: {type: string, required: true}
      rate: {type: float}
      amount: {type: decimal, precision: 8, scale: 3}
      day: {type: date}
      at: {type: datetime}
      flag: {type: bool}
      count: {type: int}
      kind: {type: enum, values: [a, b]}
      data: {type: json}
      parent: {type: link, to: thing}
      rows: {type: table, of: row}
  row:
    child: true
    fields:
      n: {type: int}
"""


@pytest.fixture(scope="module")
def res(tmp_path_factory: pytest.TempPathFactory) -> Resource:
    root: Path = tmp_path_factory.mktemp("query")
    (root / "modules").mkdir()
    (root / "modules" / "m.yaml").write_text(YAML)
    model = load(root)
    return build_resources(model, build_metadata(model))["m.thing"]


def parse(res: Resource, query: str) -> object:
    args = MultiDict([tuple(p.split("=", 1)) for p in query.split("&") if p])
    return parse_list_query(res, args, default_limit=20, max_limit=100, dialect="sqlite")


def sql(clause: sa.ColumnElement[bool]) -> str:
    return str(clause.compile(dialect=sqlite.dialect(),
                              compile_kwargs={"literal_binds": True}))


def test_defaults(res: Resource) -> None:
    q = parse(res, "")
    assert q.limit == 20 and q.offset == 0 and q.count == "none"          # type: ignore[attr-defined]
    assert q.order == [("id", False)] and q.fields is None and q.expand == []  # type: ignore[attr-defined]


def test_control_names_and_filters(res: Resource) -> None:
    q = parse(res, "count__eq=3&count=exact&sort=-rate,code&fields=code,rows&expand=parent")
    assert q.count == "exact"                                            # type: ignore[attr-defined]
    assert q.order == [("rate", True), ("code", False), ("id", False)]   # type: ignore[attr-defined]
    assert q.fields == ("id", "code") and q.tables == ["rows"]           # type: ignore[attr-defined]
    assert q.expand == ["parent"]                                        # type: ignore[attr-defined]
    assert "count = 3" in sql(q.where[0])                                # type: ignore[attr-defined]


@pytest.mark.parametrize(("query", "param", "words"), [
    ("limit=101", "limit", "maximum page size 100"),
    ("count=lots", "count", "none, exact, estimated"),
    ("codee=x", "codee", "did you mean 'code'"),
    ("code__startswith=x", "code__startswith", "unknown filter operator"),
    ("flag__gt=true", "flag__gt", "does not apply to bool"),
    ("data=1", "data", "does not apply to json"),
    ("rows=1", "rows", "child table"),
    ("kind=c", "kind", "not one of a, b"),
    ("amount__gt=1e9", "amount__gt", "out of range"),
    ("day=2024-02-30", "day", "not a date"),
    ("sort=data", "sort", "not sortable"),
    ("expand=code", "expand", "neither a link nor a table"),
    ("cursor=abc&offset=2", "offset", "cannot be combined"),
])
def test_mistakes_name_the_parameter(res: Resource, query: str, param: str,
                                     words: str) -> None:
    with pytest.raises(QueryError) as err:
        parse(res, query)
    assert err.value.param == param and words in err.value.message


def test_cursor_round_trip_keeps_types(res: Resource) -> None:
    q = parse(res, "sort=-at,amount,day,flag,rate")
    row = make_dumper(res.api.names, res.api.codecs)(
        [3, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None, dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
         None, 1, "A", None, decimal.Decimal("1.5"), dt.date(2024, 5, 1),
         dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC), True, None, None, None, None])
    token = encode_cursor(res, q, row)                                   # type: ignore[arg-type]
    values = decode_cursor(res, token, "-at,amount,day,flag,rate", q.order)  # type: ignore[attr-defined]
    assert values == [dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC), decimal.Decimal("1.500"),
                      dt.date(2024, 5, 1), True, None, 3]
    with pytest.raises(QueryError, match="another sort"):
        decode_cursor(res, token, "code", [("code", False), ("id", False)])


def test_keyset_handles_nulls_last_in_both_directions(res: Resource) -> None:
    assert sql(keyset_clause(res, [("id", False)], [7])) == "thing.id > 7".replace(
        "thing", "m_thing")
    text = sql(keyset_clause(res, [("rate", True), ("id", False)], [2.5, 7]))
    assert text == ("m_thing.rate < 2.5 OR m_thing.rate IS NULL OR "
                    "m_thing.rate = 2.5 AND m_thing.id > 7")
    text = sql(keyset_clause(res, [("rate", False), ("id", False)], [None, 7]))
    assert text == "m_thing.rate IS NULL AND m_thing.id > 7"


def test_codecs() -> None:
    assert dump_decimal(2)(decimal.Decimal("1.5")) == "1.50"
    assert dump_decimal(3)(2.675) == "2.675"            # floats from SQLite go through str()
    assert dump_decimal(0)(decimal.Decimal("12")) == "12"
    assert parse_datetime("2024-01-01T08:00:00 03:00") == dt.datetime(2024, 1, 1, 5,
                                                                      tzinfo=dt.UTC)
    assert parse_datetime("2024-01-01T08:00") == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_datetime("tomorrow")
