"""Uneven edges made consistent (issue 8.15): a single-record GET takes ``fields``/``expand``
and refuses other parameters like lists do; DELETE refuses an empty or repeated
``version``; a body without a JSON Content-Type is a 415; strict parses (``sort=--x``,
``x__=1``, empty ``count=``, compact dates); ``PATCH {}`` does not make a new version;
``count=estimated`` is never smaller than the page it comes with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.api import PLANT_YAML, make_env

pytestmark = pytest.mark.integration


@pytest.fixture
def env(project: Any, db_url: str) -> Any:
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url)
    yield e
    e.engine.dispose()


def _seed(env: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    site = env.create("site", {"name": "Pad 7", "region": "north"})
    eq = env.create("equipment", {"tag": "P-1", "name": "Pump", "site": site["id"],
                                  "installed_on": "2020-01-02",
                                  "readings": [{"taken_on": "2024-01-01", "pressure": 1.5}]})
    return site, eq


def _bad(r: Any, status: int, where: str, param: str) -> None:
    assert r.status_code == status, (param, r.status_code, r.json)
    assert param in r.json["errors"][where] and r.json["message"], r.json


def test_one_record_takes_fields_and_expand_like_lists(env: Any) -> None:
    c = env.client
    site, eq = _seed(env)
    url = f"/api/plant/equipment/{eq['id']}"
    full = c.get(url).json
    assert full["readings"] and "notes" in full
    r = c.get(f"{url}?fields=tag,site")
    assert r.status_code == 200 and set(r.json) == {"id", "tag", "site"}, r.json
    r = c.get(f"{url}?expand=site")
    assert r.status_code == 200 and r.json["_expanded"]["site"]["name"] == "Pad 7"
    assert r.json["readings"] == full["readings"]  # without fields=, the whole record
    r = c.get(f"{url}?fields=tag,readings&expand=site")
    assert set(r.json) == {"id", "tag", "readings", "_expanded"}, r.json
    for query, param in (("colour=red", "colour"), ("limit=5", "limit"), ("tag=P-1", "tag"),
                         ("fields=nope", "fields"), ("expand=name", "expand")):
        _bad(c.get(f"{url}?{query}"), 400, "query", param)
    assert c.get(f"/api/plant/equipment/{eq['id'] + 99}?fields=tag").status_code == 404


def test_delete_needs_a_single_numeric_version(env: Any) -> None:
    c = env.client
    _site, eq = _seed(env)
    url = f"/api/plant/equipment/{eq['id']}"
    _bad(c.delete(f"{url}?version="), 400, "query", "version")
    _bad(c.delete(f"{url}?version=1&version=1"), 400, "query", "version")
    _bad(c.delete(f"{url}?version=\u0661"), 400, "query", "version")
    assert c.get(url).status_code == 200  # still there
    assert c.delete(f"{url}?version=1").status_code == 204


def test_bodies_need_a_json_content_type(env: Any) -> None:
    c = env.client
    _site, eq = _seed(env)
    body = json.dumps({"name": "Pad 9"})
    for method, url in (("POST", "/api/plant/site"), ("POST", "/api/plant/site/bulk"),
                        ("PUT", f"/api/plant/equipment/{eq['id']}"),
                        ("PATCH", f"/api/plant/equipment/{eq['id']}")):
        r = c.open(url, method=method, data=body)  # no Content-Type at all
        assert r.status_code == 415 and "Content-Type" in r.json["message"], (method, url)
        r = c.open(url, method=method, data=body, content_type="text/plain")
        assert r.status_code == 415, (method, url)
    r = c.post("/api/plant/site", data=body, content_type="application/json")
    assert r.status_code == 201


def test_strict_query_parses(env: Any) -> None:
    c = env.client
    _seed(env)
    for query, param in (("sort=--tag", "sort"), ("sort=%2B-tag", "sort"), ("tag__=P-1", "tag__"),
                         ("count=", "count"), ("limit=", "limit"), ("offset=", "offset"),
                         ("installed_on=20200102", "installed_on"),
                         ("installed_on__gte=20200102", "installed_on__gte")):
        _bad(c.get(f"/api/plant/equipment?{query}"), 400, "query", param)
    assert c.get("/api/plant/equipment?sort=-tag&count=exact").json["count"] == 1
    assert len(c.get("/api/plant/equipment?installed_on=2020-01-02").json["items"]) == 1
    r = c.post("/api/plant/equipment", json={"tag": "P-2", "name": "x",
                                             "installed_on": "20200102"})
    assert r.status_code == 422 and "installed_on" in r.json["errors"]["json"]


def test_an_empty_patch_changes_nothing(env: Any) -> None:
    c = env.client
    _site, eq = _seed(env)
    url = f"/api/plant/equipment/{eq['id']}"
    for body in ({}, {"version": 1}):
        r = c.patch(url, json=body)
        assert r.status_code == 200 and r.json["version"] == 1, r.json
        assert r.json["updated_at"] == eq["updated_at"] and r.json["readings"]
    assert c.patch(url, json={"version": 7}).status_code == 409
    assert c.patch("/api/plant/equipment/999", json={}).status_code == 404
    r = c.patch(url, json={"name": "Pump 2"})
    assert r.json["version"] == 2


def test_estimated_counts_are_never_smaller_than_the_page(env: Any) -> None:
    c = env.client
    r = c.post("/api/plant/site/bulk", json=[{"name": f"S{i:02}"} for i in range(30)])
    assert r.status_code == 201
    if env.engine.dialect.name == "postgresql":  # statistics now say 30 rows...
        with env.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE plant_site")
    r = c.post("/api/plant/site/bulk", json=[{"name": f"T{i:02}"} for i in range(30)])
    assert r.status_code == 201  # ...while there are 60
    for query in ("limit=50", "limit=10&offset=45", "limit=5&name__gte=S1"):
        page = c.get(f"/api/plant/site?count=estimated&{query}").json
        offset = int(query.split("offset=")[1].split("&")[0]) if "offset=" in query else 0
        more = 1 if page["next_cursor"] else 0
        assert page["count"] >= offset + len(page["items"]) + more, (query, page["count"])


def test_auth_free_app_answers_bad_parameters_with_a_message(env: Any, tmp_path: Path) -> None:
    r = env.client.get("/api/plant/site?limit=abc")
    assert r.status_code == 400 and r.json["message"] and "limit" in r.json["errors"]["query"]
