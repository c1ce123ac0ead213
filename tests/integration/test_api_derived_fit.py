"""Values the server derives fit their columns (issue 8.11).

``999999999.999 × 999999999999.99`` computed into a ``decimal(24, 4)`` was stored with
other digits on SQLite (a REAL) and refused on PostgreSQL with a 422 naming no field. A
derived value (computed, ``'='`` default, fetched) that does not fit is a 422 naming the
field, on both databases, in records, child rows, bulk bodies and updates.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from support.api import ApiEnv, assert_error, make_env

pytestmark = pytest.mark.integration

YAML = """
module: calc
entities:
  purchase:
    fields:
      code: {type: string, max_length: 10, required: true}
      qty: {type: decimal, precision: 12, scale: 3}
      price: {type: decimal, precision: 14, scale: 2}
      total: {type: decimal, precision: 24, scale: 4, computed: "self.qty * self.price"}
      lines: {type: table, of: line}
  gauge:
    fields:
      code: {type: string, max_length: 10}
      x: {type: float}
      n: {type: int}
      ratio: {type: float, computed: "self.x * 1e300"}
      count: {type: int, computed: "self.n * 10"}
      label: {type: string, max_length: 12, computed: "self.code + '-' + self.code"}
  line:
    child: true
    fields:
      qty: {type: decimal, precision: 12, scale: 3}
      price: {type: decimal, precision: 14, scale: 2}
      amount: {type: decimal, precision: 24, scale: 4, computed: "self.qty * self.price"}
"""

BIG_QTY, BIG_PRICE = "999999999.999", "999999999999.99"


@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/calc.yaml": YAML}), db_url)
    yield e
    e.engine.dispose()


def _rows(env: ApiEnv, table: str) -> int:
    with env.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def test_a_computed_decimal_that_does_not_fit_is_422_naming_it(env: ApiEnv) -> None:
    r = env.client.post("/api/calc/purchase", json={"code": "A", "qty": BIG_QTY,
                                                 "price": BIG_PRICE})
    body = assert_error(r, 422)
    assert "total" in body["errors"]["json"], body
    assert "20 digits before the decimal point" in body["errors"]["json"]["total"][0]
    assert _rows(env, "calc_purchase") == 0
    # a product that fits is stored (digits as SQLite's REAL keeps them: docs/modeling.md)
    ok = env.client.post("/api/calc/purchase", json={"code": "B", "qty": "123456.789",
                                                     "price": "1000.25"})
    assert ok.status_code == 201, ok.json
    assert ok.json["total"] == "123487653.1973"
    assert env.client.get(f"/api/calc/purchase/{ok.json['id']}").json["total"] == \
        "123487653.1973"


def test_updates_child_rows_and_bulk_are_checked_too(env: ApiEnv) -> None:
    rec = env.client.post("/api/calc/purchase", json={"code": "A", "qty": "2", "price": "3"}).json
    r = env.client.patch(f"/api/calc/purchase/{rec['id']}",
                         json={"qty": BIG_QTY, "price": BIG_PRICE, "version": rec["version"]})
    assert "total" in assert_error(r, 422)["errors"]["json"]
    assert env.client.get(f"/api/calc/purchase/{rec['id']}").json["total"] == "6.0000"
    r = env.client.post("/api/calc/purchase", json={
        "code": "C", "lines": [{"qty": "1", "price": "1"},
                               {"qty": BIG_QTY, "price": BIG_PRICE}]})
    assert "lines.1.amount" in assert_error(r, 422)["errors"]["json"]
    r = env.client.post("/api/calc/purchase/bulk", json=[
        {"code": "D", "qty": "1", "price": "1"}, {"code": "E", "qty": BIG_QTY,
                                                  "price": BIG_PRICE}])
    assert "total" in assert_error(r, 422)["errors"]["json"]["1"]
    assert _rows(env, "calc_purchase") == 1 and _rows(env, "calc_line") == 0


@pytest.mark.parametrize("body, field", [
    ({"x": 1e10}, "ratio"),                             # a float beyond a double
    ({"n": 2**62}, "count"),                            # an int beyond 64 bits
    ({"code": "ABCDEFGH"}, "label"),                    # text beyond max_length
])
def test_other_derived_kinds_that_do_not_fit(env: ApiEnv, body: dict[str, Any],
                                             field: str) -> None:
    errors = assert_error(env.client.post("/api/calc/gauge", json=body), 422)["errors"]
    assert list(errors["json"]) == [field], errors
    assert _rows(env, "calc_gauge") == 0
    small = {k: (v if isinstance(v, str) else 1) for k, v in body.items()}
    small = {k: v[:2] if isinstance(v, str) else v for k, v in small.items()}
    assert env.client.post("/api/calc/gauge", json=small).status_code == 201
