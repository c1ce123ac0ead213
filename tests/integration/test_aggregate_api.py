"""``GET /api/<module>/<entity>/aggregate`` on SQLite and PostgreSQL: grouping, typed sums,
averages, minima and maxima, list filters, 400s, read permission and row scope, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.api import assert_error
from support.rules import RulesEnv, make_rules_env

pytestmark = pytest.mark.integration

METERS = [
    {"area": "north", "kind": "oil", "volume": "10.50", "hours": 2, "rate": 1.5,
     "read_on": "2025-01-03", "read_at": "2025-01-03T10:00:00Z"},
    {"area": "north", "kind": "oil", "volume": "20.25", "hours": 4, "rate": 2.5,
     "read_on": "2025-01-01", "read_at": "2025-01-01T08:00:00+00:00"},
    {"area": "north", "kind": "gas", "volume": "1.00", "hours": 1, "rate": None,
     "read_on": "2025-02-01"},
    {"area": "south", "kind": "oil", "volume": "5.00", "hours": 10, "rate": 4.0,
     "read_on": "2025-03-01"},
    {"area": None, "kind": "oil", "volume": None, "hours": 3, "rate": 1.0},
]


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> RulesEnv:
    e = make_rules_env(tmp_path / "project", db_url)
    r = e.post("meter/bulk", METERS)
    assert r.status_code == 201, r.json
    yield e
    e.engine.dispose()


def agg(env: RulesEnv, query: str) -> dict[str, object]:
    r = env.get(f"meter/aggregate?{query}")
    assert r.status_code == 200, r.json
    return dict(r.json)


def test_group_by_with_typed_results(env: RulesEnv) -> None:
    got = agg(env, "group_by=area&sum=volume,hours&avg=volume,hours,rate&min=read_on,volume"
                   "&max=read_at,hours&count")
    assert got["truncated"] is False
    items = got["items"]
    assert [i["group"] for i in items] == [{"area": "north"}, {"area": "south"},
                                           {"area": None}]        # nulls last
    north = items[0]
    assert north["count"] == 3
    assert north["sum"] == {"volume": "31.75", "hours": 7}         # decimal string, int
    assert north["avg"]["volume"] == "10.58" and north["avg"]["hours"] == pytest.approx(7 / 3)
    assert north["avg"]["rate"] == pytest.approx(2.0)              # nulls skipped
    assert north["min"] == {"read_on": "2025-01-01", "volume": "1.00"}
    assert north["max"]["hours"] == 4
    assert north["max"]["read_at"].startswith("2025-01-03T10:00:00")
    assert north["max"]["read_at"].endswith("+00:00")
    empty = items[2]
    assert empty["sum"]["volume"] is None and empty["sum"]["hours"] == 3
    assert empty["min"]["read_on"] is None


def test_filters_multiple_groups_totals_and_limit(env: RulesEnv) -> None:
    got = agg(env, "group_by=area,kind&count&area__isnull=false&hours__gte=2")
    assert [(i["group"]["area"], i["group"]["kind"], i["count"]) for i in got["items"]] == [
        ("north", "oil", 2), ("south", "oil", 1)]
    # no group_by: one row over everything that matches; count is the default
    assert agg(env, "") == {"items": [{"group": {}, "count": 5}], "truncated": False}
    total = agg(env, "sum=volume&kind=oil")["items"]
    assert total == [{"group": {}, "sum": {"volume": "35.75"}}]
    assert agg(env, "sum=volume&kind=water")["items"] == [{"group": {}, "sum": {"volume": None}}]
    limited = agg(env, "group_by=kind&limit=1")
    assert limited["truncated"] is True and len(limited["items"]) == 1
    assert limited["items"][0]["group"] == {"kind": "gas"}


def test_bad_aggregate_requests_are_400_naming_the_parameter(env: RulesEnv) -> None:
    cases = {
        "sum=kind": "sum", "avg=read_on": "avg", "sum=nope": "sum", "group_by=nope": "group_by",
        "group_by=meta": "group_by", "min=meta": "min", "max=area": "max",
        "group_by=area&sort=area": "sort", "limit=0": "limit", "limit=x": "limit",
        "count=5": "count", "nope=1": "nope", "hours__gt=x": "hours__gt",
        "sum=volume&sum=hours": "sum",
    }
    for query, param in cases.items():
        body = assert_error(env.get(f"meter/aggregate?{query}"), 400)
        assert param in body["errors"]["query"], (query, body)
    assert "did you mean 'volume'" in assert_error(env.get("meter/aggregate?sum=volum"),
                                                    400)["message"]


def test_aggregate_applies_read_permission_and_row_scope(env: RulesEnv) -> None:
    env.hooks.scopes["works.meter"] = "works_meter.area = 'south'"
    assert agg(env, "sum=hours")["items"] == [{"group": {}, "sum": {"hours": 10}}]
    assert [i["group"] for i in agg(env, "group_by=area")["items"]] == [{"area": "south"}]
    env.hooks.denied = {("works.meter", "read")}
    assert_error(env.get("meter/aggregate?count"), 403)


def test_aggregate_is_in_openapi(env: RulesEnv) -> None:
    spec = env.client.get("/api/openapi.json").json
    op = spec["paths"]["/api/works/meter/aggregate"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"group_by", "sum", "avg", "min", "max", "count", "limit", "area"} <= names
    assert "items" in op["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]
