"""The fast loader agrees with the generated marshmallow schema whenever it answers."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api.fastload import compile_loader
from engine.api.schemas import input_schema
from metamodel import Model, load

YAML = """
module: m
entities:
  thing:
    fields:
      code: {type: string, max_length: 8, required: true, pattern: '^[A-Z]+[0-9]*$'}
      label: {type: string, max_length: 5, min_length: 2}
      notes: {type: text, required: true, default: none}
      kind: {type: enum, values: [a, b], required: true, default: a}
      count: {type: int, min: -5, max: 50}
      other: {type: link, to: thing}
      amount: {type: decimal, precision: 6, scale: 2, min: -10, max: 9999}
      ratio: {type: float, min: 0, max: 1}
      flag: {type: bool}
      day: {type: date, min: 2000-01-01, max: 2030-12-31}
      at: {type: datetime}
      data: {type: json}
      rows: {type: table, of: row}
  row:
    child: true
    fields:
      n: {type: int, required: true}
      note: {type: string, max_length: 4}
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    root: Path = tmp_path_factory.mktemp("fastload")
    (root / "modules").mkdir()
    (root / "modules" / "m.yaml").write_text(YAML)
    return load(root)


TEXT = st.text(max_size=10) | st.sampled_from(["\x00", "\ud800", "AB12", "A", "ab", "ABC1x"])
NUMBERS = (st.integers(-10**20, 10**20) | st.floats(allow_nan=True, allow_infinity=True)
           | st.decimals(allow_nan=False, places=3).map(str) | st.sampled_from(
               ["1.5", "-0", "12.345", " 1", "1e2", "1234.5", "9999.00", "abc", 10**400]))
DATES = st.dates().map(dt.date.isoformat) | st.sampled_from(["2024-02-30", "20240101", "2024-1-1"])
TIMES = (st.datetimes(timezones=st.sampled_from([None, dt.UTC,
                                                 dt.timezone(dt.timedelta(hours=-3))]))
         .map(dt.datetime.isoformat)
         | st.sampled_from(["2024-01-01T00:00Z", "2024-01-01 10:00", "2024-01-01T10:00:00.5+01:00",
                            "0001-01-01T00:00:00+01:00", "2024-01-01T25:00"]))
ANY = st.none() | st.booleans() | TEXT | NUMBERS | DATES | TIMES | st.lists(st.integers(),
                                                                           max_size=2)
NEAR_TEXT = st.text(alphabet="AB1a\x00 ", max_size=9)
VALUES: dict[str, Any] = {
    "code": TEXT | st.from_regex(r"[A-Z]{1,4}[0-9]{0,3}", fullmatch=True) | NEAR_TEXT,
    "label": TEXT | NEAR_TEXT, "notes": TEXT | st.none() | st.just(""),
    "kind": st.sampled_from(["a", "b", "c", None]),
    "count": st.integers(-7, 52) | NUMBERS, "other": st.integers(-1, 3) | NUMBERS,
    "amount": (st.decimals(-11, 10000, places=2, allow_nan=False).map(str)
               | st.sampled_from(["-10.01", "-10", "9999.01", "9999", "10000", -11, 10000,
                                  "1.234", "1.230"]) | st.integers(-11, 10000) | NUMBERS),
    "ratio": st.floats(-0.5, 1.5) | st.integers(-1, 2) | NUMBERS,
    "flag": st.booleans() | ANY,
    "day": (st.dates(dt.date(1999, 12, 30), dt.date(2031, 1, 2)).map(dt.date.isoformat)
            | st.sampled_from(["1999-12-31", "2000-01-01", "2030-12-31", "2031-01-01"]) | ANY),
    "at": TIMES | ANY, "data": st.recursive(ANY, lambda x: st.lists(x, max_size=2)
                                             | st.dictionaries(TEXT, x, max_size=2)),
    "version": st.integers() | ANY, "id": ANY, "created_at": ANY, "zzz": ANY,
    "rows": st.lists(st.dictionaries(st.sampled_from(["n", "note", "id", "idx", "x"]),
                                     st.integers(-3, 3) | TEXT | st.none(), max_size=3),
                     max_size=3) | ANY,
}
BODIES = st.fixed_dictionaries({}, optional={k: v for k, v in VALUES.items()})
def _same(a: Any, b: Any) -> bool:
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        return type(a) is type(b) and str(a) == str(b) and (a == b or a.is_nan())
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN equals nothing, not even itself; both sides agree on it
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def loaders(model: Model) -> tuple[Any, ma.Schema, tuple[str, ...]]:
    ent = model.entity("m.thing")
    return compile_loader(model, ent), input_schema(model, ent)(), tuple(ent.fields)


def _check(loaders: tuple[Any, ma.Schema, tuple[str, ...]], body: Any, partial: bool) -> None:
    loader, schema, names = loaders
    fast = loader(body, partial)
    if fast is None:
        return
    try:
        slow = schema.load(body, partial=names if partial else False)
    except ma.ValidationError as err:
        raise AssertionError(f"fast path accepted what marshmallow refuses: {err.messages}") \
            from None
    assert _same(fast, slow), (fast, slow)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, partial=st.booleans())
def test_fast_answers_match_marshmallow(loaders: Any, body: dict[str, Any],
                                        partial: bool) -> None:
    _check(loaders, body, partial)


@pytest.mark.parametrize("name", sorted(VALUES))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), partial=st.booleans())
def test_fast_answers_match_marshmallow_field_by_field(loaders: Any, name: str, data: Any,
                                                       partial: bool) -> None:
    _check(loaders, {"code": "AB1", name: data.draw(VALUES[name])}, partial)


def test_typical_valid_bodies_take_the_fast_path(model: Model) -> None:
    ent = model.entity("m.thing")
    loader = compile_loader(model, ent)
    body = {"code": "AB12", "label": "xy", "kind": "b", "count": 3, "other": 1,
            "amount": "12.5", "ratio": 0.25, "flag": True, "day": "2024-05-01",
            "at": "2024-05-01T10:00:00-03:00", "data": {"k": [1, "x"]}, "version": 3,
            "id": 9, "created_at": "ignored", "rows": [{"n": 1, "note": "ab", "id": 4}]}
    fast = loader(body, False)
    assert fast is not None
    assert fast["amount"] == decimal.Decimal("12.5")
    assert fast["at"] == dt.datetime(2024, 5, 1, 13, 0, tzinfo=dt.UTC)
    assert "id" not in fast and "created_at" not in fast and fast["rows"][0]["id"] == 4
    assert loader({"label": "xy"}, True) == {"label": "xy"}
    assert loader({"label": "xy"}, False) is None          # code is required
    assert loader({"code": "AB", "zzz": 1}, False) is None  # unknown key: marshmallow decides
