"""Bad input always gets a 4xx in the common error shape, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.api import PLANT_YAML, ApiEnv, assert_error, make_env

pytestmark = pytest.mark.integration


@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url)
    e.create("equipment", {"tag": "P-1", "name": "Pump"})
    yield e
    e.engine.dispose()


@pytest.fixture
def sqlite_env(project, sqlite_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), sqlite_url)
    e.create("equipment", {"tag": "P-1", "name": "Pump"})
    yield e
    e.engine.dispose()


def test_malformed_json_is_400(env: ApiEnv) -> None:
    for raw in (b"{", b"{'tag': 1}", b"[1,", b"NaN", b'{"rate": Infinity}', b"\xff\xfe"):
        r = env.client.post("/api/plant/equipment", data=raw, content_type="application/json")
        body = assert_error(r, 400)
        assert "JSON" in body["message"]
    assert_error(env.client.post("/api/plant/equipment", data=b"",
                                 content_type="application/json"), 400)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_error(env.client.post("/api/plant/equipment", data=deep,
                                 content_type="application/json"), 400)


def test_body_over_16_mb_is_413(env: ApiEnv) -> None:
    big = b'{"tag": "' + b"A" * (17 * 1024 * 1024) + b'"}'
    assert_error(env.client.post("/api/plant/equipment", data=big,
                                 content_type="application/json"), 413)


def test_wrong_content_type_is_415(env: ApiEnv) -> None:
    r = env.client.post("/api/plant/equipment", data="tag=P-2&name=x",
                        content_type="application/x-www-form-urlencoded")
    assert "application/json" in assert_error(r, 415)["message"]


@pytest.mark.parametrize("body", [[], [1, 2], "text", 42, None, True])
def test_body_that_is_not_an_object_is_422(env: ApiEnv, body: Any) -> None:
    r = env.client.post("/api/plant/equipment", data=json.dumps(body),
                        content_type="application/json")
    assert_error(r, 422)
    r = env.client.patch("/api/plant/equipment/1", data=json.dumps(body),
                         content_type="application/json")
    assert_error(r, 422)


@pytest.mark.parametrize("query", [
    "nope=1", "tag__like=x", "active__gt=true", "attrs=1", "run_hours=abc",
    "run_hours__in=1,x", "depth_m__gt=NaN", "installed_on=2024-13-01",
    "inspected_at__gte=noon", "kind=rocket", "active=maybe", "notes__isnull=perhaps",
    "sort=nope", "sort=attrs", "sort=name,name", "limit=-1", "limit=1e3", "offset=x",
    "limit=100000", "count=all", "fields=", "fields=,,", "expand=notes", "cursor=%%%",
    "readings=1", "limit=1&limit=2", "run_hours__in=", "tag=%00", "name__contains=a%00",
    "depth_m__gt=1e400", "depth_m__in=1e1000000", "depth_m=1.0000000000000000000000000000000001",
    "inspected_at=9999-12-31T23:59:59-01:00", "inspected_at__lt=0001-01-01T00:00:00%2B01:00",
    "id=99999999999999999999999", "rate__gt=1e309",
])
def test_bad_queries_are_400_naming_the_parameter(env: ApiEnv, query: str) -> None:
    r = env.client.get(f"/api/plant/equipment?{query}")
    if query in ("fields=", "fields=,,"):   # an empty selection means just the id
        assert r.status_code == 200 and set(r.json["items"][0]) == {"id"}
        return
    body = assert_error(r, 400)
    assert body["errors"]["query"], body


def test_unknown_routes_and_methods_are_json(env: ApiEnv) -> None:
    assert_error(env.client.get("/api/plant/nothing"), 404)
    assert_error(env.client.get("/api/plant/equipment/abc"), 404)
    assert_error(env.client.get("/api/plant/equipment/-1"), 404)
    assert_error(env.client.delete("/api/plant/equipment"), 405)
    assert_error(env.client.put("/api/plant/equipment/bulk", json=[]), 405)


def test_oversized_bulk_is_400(env: ApiEnv) -> None:
    rows = [{"tag": f"B-{i}", "name": "b"} for i in range(101)]
    assert "at most 100" in assert_error(env.post("/api/plant/equipment/bulk", rows),
                                         400)["message"]


def test_values_the_database_cannot_store_are_422(env: ApiEnv) -> None:
    for body in ({"tag": "A", "name": "a", "run_hours": 10**30},
                 {"tag": "A", "name": "a\x00"}, {"tag": "A", "name": "\ud800"},
                 {"tag": "A", "name": "a", "notes": "nul \x00"},
                 {"tag": "A", "name": "a", "attrs": {"k": "\udfff"}},
                 {"tag": "A", "name": "a", "inspected_at": "9999-12-31T23:59:59-01:00"},
                 {"tag": "A", "name": "a", "inspected_at": "0001-01-01T00:00:00+01:00"},
                 {"tag": "A", "name": "a", "depth_m": "1e-400"},
                 {"tag": "A", "name": "a", "site": 2**63},
                 {"tag": "A" * 10_000, "name": "a"},
                 {"tag": "A", "name": "a", "depth_m": "1e400"},
                 {"tag": "A", "name": "a", "readings": {"taken_on": "2024-01-01"}}):
        assert_error(env.post("/api/plant/equipment", body), 422)
    body = assert_error(env.client.get("/api/plant/equipment?id=99999999999999999999999"), 400)
    assert "out of range" in body["message"]
    r = env.client.post("/api/plant/equipment", data=b'{"tag": "A", "name": "\\ud800"}',
                        content_type="application/json")
    assert_error(r, 422)


NASTY = st.sampled_from(["\x00", "\ud800", "a\udfffb", "9999-12-31T23:59:59-01:00", "1e400",
                         "-0", "", "2024-02-30", "NaN", "1" * 40, 2**64, -(2**63) - 1, 1e308])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20) | NASTY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=8)
FIELDS = ["tag", "name", "notes", "site", "parent", "kind", "depth_m", "run_hours", "rate",
          "active", "installed_on", "inspected_at", "attrs", "readings", "version", "id", "x"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6))
def test_fuzzed_bodies_never_500(sqlite_env: ApiEnv, body: dict[str, Any]) -> None:
    for method, url in (("post", "/api/plant/equipment"), ("patch", "/api/plant/equipment/1"),
                        ("put", "/api/plant/equipment/1")):
        r = getattr(sqlite_env.client, method)(url, json=body)
        assert r.status_code < 500, (method, body, r.json)
        if r.status_code >= 400:
            assert_error(r, r.status_code)
    r = sqlite_env.post("/api/plant/equipment/bulk", [body, body])
    assert r.status_code < 500, r.json


QUERY_KEYS = st.sampled_from(["tag", "run_hours", "depth_m", "rate", "active", "installed_on",
                              "inspected_at", "kind", "site", "attrs", "id", "sort", "limit",
                              "offset", "cursor", "count", "fields", "expand", "zz"])
QUERY_OPS = st.sampled_from(["", "__eq", "__ne", "__gt", "__gte", "__lt", "__lte", "__in",
                             "__contains", "__icontains", "__isnull", "__bogus"])


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(QUERY_KEYS, QUERY_OPS, st.text(max_size=12) | NASTY.map(str)),
                       max_size=4))
def test_fuzzed_queries_never_500(sqlite_env: ApiEnv, params: list[tuple[str, str, str]]) -> None:
    # encode as a client would: a lone surrogate becomes bytes that are not UTF-8
    query = urlencode([(k + op, v) for k, op, v in params], errors="surrogatepass")
    r = sqlite_env.client.get("/api/plant/equipment?" + query)
    assert r.status_code in (200, 400), (query, r.status_code, r.data[:300])
    if r.status_code == 400:
        assert_error(r, 400)
