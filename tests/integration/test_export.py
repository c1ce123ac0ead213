"""``GET /api/<module>/<entity>/export``: CSV and JSON with the list's filters, sort and
fields, the caller's row scope and field rules, formula-safe CSV cells, streaming."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from support.api import PLANT_YAML, make_env
from support.rbac import FIELD_YAML, secured_app, seed_field

from engine.settings import Settings

pytest_plugins = ("support.auth",)
pytestmark = pytest.mark.integration


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_export_follows_scope_filters_and_field_rules(project: Any, db_url: str,
                                                       tmp_path: Path) -> None:
    s = secured_app(project({"modules/field.yaml": FIELD_YAML}), db_url, tmp_path)
    seed_field(s)
    north = s.ids["north"]
    r = s.call("supervisor", "POST", "/api/field/asset/bulk", [
        {"tag": f"X-{i:02d}", "area": north, "cost": f"{i}.25", "status": "retired"
         if i % 2 else "active", "notes": "=HYPERLINK(\"http://x\")" if i == 1 else f"n{i}"}
        for i in range(1, 6)])
    assert r.status_code == 201

    r = s.call("supervisor", "GET", "/api/field/asset/export?status=retired&sort=-tag"
                                    "&fields=tag,cost,notes")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == 'attachment; filename="field_asset.csv"'
    rows = _csv(r.data)
    assert [row["tag"] for row in rows] == ["X-05", "X-03", "X-01"]
    assert list(rows[0]) == ["id", "tag", "cost", "notes"]
    assert rows[0]["cost"] == "5.25"
    assert rows[2]["notes"] == "'=HYPERLINK(\"http://x\")"  # not a formula in a spreadsheet

    # the viewer (export allowed; scope north; cost hidden) gets the same rows minus the rest
    r = s.call("viewer", "GET", "/api/field/asset/export?format=json&sort=tag")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    items = json.loads(r.data)
    assert [i["tag"] for i in items] == ["N-1", "X-01", "X-02", "X-03", "X-04", "X-05"]
    assert all("cost" not in i for i in items)
    assert items[1]["notes"] == "=HYPERLINK(\"http://x\")"  # JSON keeps values as they are
    r = s.call("viewer", "GET", "/api/field/asset/export?cost__gt=1")
    assert r.status_code == 400 and "cost" in r.json["message"]
    assert "S-1" not in {row["tag"] for row in _csv(
        s.call("viewer", "GET", "/api/field/asset/export").data)}

    # the operator has read but not export; scada has neither export
    for role in ("operator", "scada"):
        r = s.call(role, "GET", "/api/field/asset/export")
        assert r.status_code == 403
        assert r.json["message"] == "missing permission: export on field.asset"
    denied = s.audit(action="permission.denied")
    assert [(d["username"], d["detail"]["action"]) for d in denied[-2:]] == [
        ("otto", "export"), ("rtu", "export")]

    # mistakes are 400s naming the parameter
    for query, param in (("format=xml", "format"), ("limit=5", "limit"),
                         ("expand=area", "expand"), ("fields=parts", "fields"),
                         ("nope=1", "nope")):
        r = s.call("admin", "GET", f"/api/field/asset/export?{query}")
        assert r.status_code == 400 and param in r.json["errors"]["query"], query
    s.engine.dispose()


def test_export_streams_every_row_without_auth(project: Any, db_url: str) -> None:
    env = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url,
                   settings=Settings(max_page_size=1000))
    n = 2500  # more than two batches
    body = [{"name": f"site {i:04d}", "region": "north" if i % 3 else None} for i in range(n)]
    for start in range(0, n, 1000):
        assert env.client.post("/api/plant/site/bulk",
                               json=body[start:start + 1000]).status_code == 201
    r = env.client.get("/api/plant/site/export?format=csv&sort=name", buffered=False)
    assert r.status_code == 200 and r.is_streamed
    rows = _csv(r.get_data())
    assert len(rows) == n
    assert rows[0]["name"] == "site 0000" and rows[0]["region"] == ""
    assert rows[1]["region"] == "north"
    items = json.loads(env.client.get("/api/plant/site/export?format=json&region__isnull=true"
                                      ).data)
    assert len(items) == len([b for b in body if b["region"] is None])
    spec = env.client.get("/api/openapi.json").json
    assert "/api/plant/site/export" in spec["paths"]
    env.engine.dispose()
