"""List endpoints on SQLite and PostgreSQL: filters, sort, pagination, counts, fields, expand."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from support.api import PLANT_YAML, ApiEnv, assert_error, count_queries, make_env

pytestmark = pytest.mark.integration

N = 24


def _row(i: int, sites: list[int]) -> dict[str, Any]:
    return {
        "tag": f"T-{i:02d}", "name": f"{'Pump' if i % 2 else 'tank'} {i}",
        "notes": None if i % 4 == 0 else f"note {i} 50%_off" if i == 5 else f"note {i}",
        "site": sites[i % 3] if i % 5 else None,
        "kind": ["pump", "tank", "valve"][i % 3],
        "depth_m": None if i % 6 == 0 else f"{i * 10}.{i:02d}",
        "run_hours": i * 100, "rate": None if i % 7 == 0 else i * 1.5,
        "active": i % 2 == 0, "installed_on": (dt.date(2020, 1, 1) + dt.timedelta(days=i))
        .isoformat(),
        "inspected_at": (dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i))
        .isoformat(),
        "attrs": None if i % 2 else {"i": i},
        "readings": [{"taken_on": "2024-01-01", "pressure": float(j)} for j in range(i % 3)],
    }


@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url)
    sites = [e.create("site", {"name": f"S{k}", "region": "north" if k else None})["id"]
             for k in range(3)]
    r = e.post("/api/plant/equipment/bulk", [_row(i, sites) for i in range(N)])
    assert r.status_code == 201, r.json
    e.rows = r.json["items"]  # type: ignore[attr-defined]
    yield e
    e.engine.dispose()


def ids(env: ApiEnv, query: str) -> list[int]:
    r = env.client.get(f"/api/plant/equipment?limit=100&{query}")
    assert r.status_code == 200, r.json
    return [item["id"] for item in r.json["items"]]


def expected(env: ApiEnv, pred: Any) -> list[int]:
    return [r["id"] for r in env.rows if pred(r)]  # type: ignore[attr-defined]


def test_default_page_shape(env: ApiEnv) -> None:
    r = env.client.get("/api/plant/equipment")
    body = r.json
    assert set(body) == {"items", "next_cursor", "count"}
    assert len(body["items"]) == 20 and body["count"] is None and body["next_cursor"]
    first = body["items"][0]
    assert first == {k: v for k, v in env.rows[0].items() if k != "readings"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("query", "pred"), [
    ("kind=tank", lambda r: r["kind"] == "tank"),
    ("kind__eq=tank", lambda r: r["kind"] == "tank"),
    ("kind__ne=tank", lambda r: r["kind"] != "tank"),
    ("run_hours__gt=1500", lambda r: r["run_hours"] > 1500),
    ("run_hours__gte=1500", lambda r: r["run_hours"] >= 1500),
    ("run_hours__lt=300", lambda r: r["run_hours"] < 300),
    ("run_hours__lte=300", lambda r: r["run_hours"] <= 300),
    ("run_hours__in=100,300,2000", lambda r: r["run_hours"] in (100, 300, 2000)),
    ("kind__in=valve&kind__in=tank", lambda r: r["kind"] in ("valve", "tank")),
    ("name__contains=Pump", lambda r: "Pump" in r["name"]),
    ("name__contains=ank", lambda r: "ank" in r["name"]),
    ("name__icontains=PUMP", lambda r: "pump" in r["name"].lower()),
    ("notes__contains=50%_", lambda r: r["notes"] and "50%_" in r["notes"]),
    ("notes__isnull=true", lambda r: r["notes"] is None),
    ("notes__isnull=false", lambda r: r["notes"] is not None),
    ("site__isnull=true", lambda r: r["site"] is None),
    ("attrs__isnull=false", lambda r: r["attrs"] is not None),
    ("active=true", lambda r: r["active"]),
    ("active__ne=true", lambda r: not r["active"]),
    ("depth_m__gte=100.5", lambda r: r["depth_m"] is not None
     and decimal.Decimal(r["depth_m"]) >= decimal.Decimal("100.5")),
    ("depth_m=50.05", lambda r: r["depth_m"] == "50.05"),
    ("rate__lt=6", lambda r: r["rate"] is not None and r["rate"] < 6),
    ("rate__ne=3", lambda r: r["rate"] != 3),
    ("installed_on__gt=2020-01-20", lambda r: r["installed_on"] > "2020-01-20"),
    ("inspected_at__gte=2024-01-01T05:00:00Z",
     lambda r: r["inspected_at"] >= "2024-01-01T05:00:00+00:00"),
    ("inspected_at__lt=2024-01-01T02:00:00-03:00",     # 05:00 UTC
     lambda r: r["inspected_at"] < "2024-01-01T05:00:00+00:00"),
    ("inspected_at__lt=2024-01-01T08:00:00 03:00",     # '+' decoded to ' ' by the URL
     lambda r: r["inspected_at"] < "2024-01-01T05:00:00+00:00"),
    ("id__in=2,4", lambda r: r["id"] in (2, 4)),
    ("version=1", lambda r: True),
    ("kind=pump&active=false&run_hours__gt=500",
     lambda r: r["kind"] == "pump" and not r["active"] and r["run_hours"] > 500),
])
def test_filter_operators(env: ApiEnv, query: str, pred: Any) -> None:
    want = expected(env, pred)
    assert want, "the case should select something"
    assert ids(env, query) == want


def test_contains_is_case_sensitive_and_icontains_is_not(env: ApiEnv) -> None:
    assert ids(env, "name__contains=pump") == []
    assert ids(env, "name__icontains=pump") == expected(env, lambda r: "Pump" in r["name"])


def test_filter_by_link_and_created_at(env: ApiEnv) -> None:
    site = env.rows[1]["site"]  # type: ignore[attr-defined]
    assert ids(env, f"site={site}") == expected(env, lambda r: r["site"] == site)
    stamp = env.rows[0]["created_at"].replace("+00:00", "Z")  # type: ignore[attr-defined]
    assert len(ids(env, f"created_at__gte={stamp}")) == N


def test_sort(env: ApiEnv) -> None:
    rows = env.rows  # type: ignore[attr-defined]
    got = ids(env, "sort=-run_hours")
    assert got == [r["id"] for r in sorted(rows, key=lambda r: -r["run_hours"])]
    got = ids(env, "sort=kind,-name")
    want = sorted(rows, key=lambda r: r["name"], reverse=True)
    want = sorted(want, key=lambda r: r["kind"])
    assert got == [r["id"] for r in want]
    got = ids(env, "sort=rate")   # nulls last on both databases
    with_rate = sorted((r for r in rows if r["rate"] is not None), key=lambda r: r["rate"])
    assert got == [r["id"] for r in with_rate] + [r["id"] for r in rows if r["rate"] is None]
    got = ids(env, "sort=-rate")
    assert got[:len(with_rate)] == [r["id"] for r in reversed(with_rate)]


def test_offset_pagination(env: ApiEnv) -> None:
    everything = ids(env, "sort=-id")
    page = env.client.get("/api/plant/equipment?sort=-id&limit=5&offset=10").json
    assert [i["id"] for i in page["items"]] == everything[10:15]
    last = env.client.get(f"/api/plant/equipment?limit=5&offset={N - 2}").json
    assert len(last["items"]) == 2 and last["next_cursor"] is None
    assert env.client.get("/api/plant/equipment?offset=500").json["items"] == []


@pytest.mark.parametrize("sort", ["", "-id", "rate,-name", "-depth_m", "notes", "active,-rate",
                                  "installed_on", "-inspected_at"])
def test_cursor_pagination_walks_every_row_once(env: ApiEnv, sort: str) -> None:
    everything = ids(env, f"sort={sort}")
    seen: list[int] = []
    url = f"/api/plant/equipment?limit=5&sort={sort}"
    cursor = None
    for _ in range(20):
        r = env.client.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.json
        seen += [i["id"] for i in r.json["items"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_cursor_with_filters_and_fields(env: ApiEnv) -> None:
    everything = ids(env, "kind__ne=valve&sort=-rate")
    r = env.client.get("/api/plant/equipment?kind__ne=valve&sort=-rate&limit=4&fields=tag").json
    assert set(r["items"][0]) == {"id", "tag"}   # the sort key is read but not served
    r2 = env.client.get("/api/plant/equipment?kind__ne=valve&sort=-rate&limit=100&fields=tag"
                        f"&cursor={r['next_cursor']}").json
    assert [i["id"] for i in r["items"] + r2["items"]] == everything


def test_bad_cursors_are_400(env: ApiEnv) -> None:
    cursor = env.client.get("/api/plant/equipment?limit=2&sort=name").json["next_cursor"]
    body = assert_error(env.client.get(f"/api/plant/equipment?cursor={cursor}&sort=tag"), 400)
    assert "cursor" in body["errors"]["query"]
    assert_error(env.client.get("/api/plant/equipment?cursor=not-a-token"), 400)
    assert_error(env.client.get(f"/api/plant/equipment?cursor={cursor}&sort=name&offset=3"),
                 400)


def test_page_size_limits(env: ApiEnv) -> None:
    body = assert_error(env.client.get("/api/plant/equipment?limit=101"), 400)
    assert "maximum page size 100" in body["message"] and "limit" in body["errors"]["query"]
    assert_error(env.client.get("/api/plant/equipment?limit=0"), 400)
    assert_error(env.client.get("/api/plant/equipment?limit=ten"), 400)
    assert_error(env.client.get("/api/plant/equipment?offset=-1"), 400)
    assert len(env.client.get("/api/plant/equipment?limit=100").json["items"]) == N


def test_counts(env: ApiEnv) -> None:
    get = env.client.get
    assert get("/api/plant/equipment?limit=1&count=exact").json["count"] == N
    assert get("/api/plant/equipment?count=exact&kind=tank").json["count"] == len(
        expected(env, lambda r: r["kind"] == "tank"))
    assert get("/api/plant/equipment?count=none").json["count"] is None
    with env.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE plant_equipment")
    estimated = get("/api/plant/equipment?limit=1&count=estimated").json["count"]
    assert estimated == N          # reltuples after ANALYZE; exact on SQLite
    filtered = get("/api/plant/equipment?limit=1&count=estimated&kind=tank").json["count"]
    assert isinstance(filtered, int) and 1 <= filtered <= N
    assert_error(get("/api/plant/equipment?count=maybe"), 400)


def test_fields_selection(env: ApiEnv) -> None:
    r = env.client.get("/api/plant/equipment?fields=tag,rate&limit=3").json
    assert [set(i) for i in r["items"]] == [{"id", "tag", "rate"}] * 3
    r = env.client.get("/api/plant/equipment?fields=tag,readings&limit=3").json
    assert set(r["items"][2]) == {"id", "tag", "readings"}
    assert len(r["items"][2]["readings"]) == 2
    body = assert_error(env.client.get("/api/plant/equipment?fields=tag,nope"), 400)
    assert "nope" in body["message"]


def test_expand_costs_one_query_per_link_whatever_the_page_size(env: ApiEnv) -> None:
    for child, parent in ((2, 1), (20, 2)):
        assert env.client.patch(f"/api/plant/equipment/{child}",
                                json={"parent": parent}).status_code == 200
    url = "/api/plant/equipment?expand=site,parent,readings&limit="
    with count_queries(env.engine) as small:
        r = env.client.get(url + "3")
    with count_queries(env.engine) as large:
        r = env.client.get(url + "24")
    assert r.status_code == 200, r.json
    assert len(small) == len(large) == 4       # rows + 2 links + 1 child table
    items = r.json["items"]
    with_site = next(i for i in items if i["site"] is not None)
    assert with_site["_expanded"]["site"]["id"] == with_site["site"]
    assert with_site["_expanded"]["site"]["name"].startswith("S")
    no_site = next(i for i in items if i["site"] is None)
    assert no_site["_expanded"]["site"] is None and no_site["_expanded"]["parent"] is None
    assert items[19]["_expanded"]["parent"]["tag"] == "T-01"
    assert [len(i["readings"]) for i in items] == [i % 3 for i in range(N)]
    # expanding a link that is not among fields= still works, with one more query
    r = env.client.get("/api/plant/equipment?fields=tag&expand=site&limit=24").json
    assert set(r["items"][1]) == {"id", "tag", "_expanded"}
    assert r["items"][1]["_expanded"]["site"]["id"] == env.rows[1]["site"]  # type: ignore[attr-defined]
    assert_error(env.client.get("/api/plant/equipment?expand=name"), 400)


def test_list_without_expand_is_one_query(env: ApiEnv) -> None:
    with count_queries(env.engine) as seen:
        env.client.get("/api/plant/equipment?limit=24&kind=pump&sort=-rate")
    assert len(seen) == 1
    with count_queries(env.engine) as seen:
        env.client.get("/api/plant/equipment/3")
    assert len(seen) == 2                     # the record + its one child table


def test_large_table_keyset_uses_the_primary_key(env: ApiEnv) -> None:
    """Walk 1,000 more rows by cursor: every page is one bounded query."""
    with env.engine.begin() as conn:
        now = dt.datetime.now(dt.UTC)
        conn.execute(sa.text(
            "INSERT INTO plant_equipment (tag, name, kind, run_hours, active, created_at, "
            "updated_at, version) VALUES (:tag, :name, 'pump', 0, true, :now, :now, 1)"),
            [{"tag": f"X-{i}", "name": f"x{i}", "now": now} for i in range(1000)])
    cursor, pages, total = None, 0, 0
    while True:
        with count_queries(env.engine) as seen:
            r = env.client.get("/api/plant/equipment?limit=100"
                               + (f"&cursor={cursor}" if cursor else "")).json
        assert len(seen) == 1 and (cursor is None or "id >" in seen[0].replace('"', ""))
        total += len(r["items"])
        pages += 1
        cursor = r["next_cursor"]
        if cursor is None:
            break
    assert total == N + 1000 and pages == 11
