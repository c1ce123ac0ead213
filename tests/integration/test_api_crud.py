"""Generated CRUD on SQLite and PostgreSQL: records, child tables, links, locking, deletes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from support.api import PLANT_YAML, ApiEnv, assert_error, make_env

pytestmark = pytest.mark.integration


@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url)
    yield e
    e.engine.dispose()


def _aware(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
    return value


def test_create_applies_defaults_system_columns_and_types(env: ApiEnv) -> None:
    site = env.create("site", {"name": "Pad 7"})
    r = env.client.post("/api/plant/equipment", json={
        "tag": "P-1", "name": "Pump 1", "site": site["id"], "depth_m": "1234.5",
        "rate": 10, "installed_on": "2020-05-01", "inspected_at": "2024-01-02T03:04:05-03:00",
        "attrs": {"vendor": "ACME", "stages": [1, 2]}})
    assert r.status_code == 201, r.json
    item = r.json
    assert r.headers["Location"] == f"/api/plant/equipment/{item['id']}"
    assert item["version"] == 1 and item["created_by"] is None and item["updated_by"] is None
    assert _aware(item["created_at"]) == _aware(item["updated_at"])
    assert item["kind"] == "pump" and item["run_hours"] == 0 and item["active"] is True
    assert item["depth_m"] == "1234.50"            # exact decimal, declared scale
    assert item["rate"] == 10.0
    assert item["inspected_at"] == "2024-01-02T06:04:05+00:00"   # stored and served in UTC
    assert item["installed_on"] == "2020-05-01"
    assert item["attrs"] == {"vendor": "ACME", "stages": [1, 2]}
    assert item["readings"] == [] and item["notes"] is None and item["parent"] is None
    got = env.client.get(f"/api/plant/equipment/{item['id']}")
    assert got.status_code == 200 and got.json == item


def test_naive_datetime_is_taken_as_utc(env: ApiEnv) -> None:
    item = env.create("equipment", {"tag": "N-1", "name": "n", "inspected_at":
                                    "2024-06-01T12:00:00"})
    assert item["inspected_at"] == "2024-06-01T12:00:00+00:00"


def test_get_missing_is_404_json(env: ApiEnv) -> None:
    body = assert_error(env.client.get("/api/plant/equipment/999"), 404)
    assert "plant.equipment 999 not found" in body["message"]


def test_put_replaces_and_patch_changes_only_given_fields(env: ApiEnv) -> None:
    item = env.create("equipment", {"tag": "P-1", "name": "Pump", "notes": "old",
                                    "run_hours": 5, "kind": "tank"})
    url = f"/api/plant/equipment/{item['id']}"
    r = env.client.patch(url, json={"notes": "new", "version": 1})
    assert r.status_code == 200, r.json
    assert r.json["notes"] == "new" and r.json["run_hours"] == 5 and r.json["version"] == 2
    assert _aware(r.json["updated_at"]) >= _aware(item["updated_at"])
    assert r.json["created_at"] == item["created_at"]
    # PUT: fields left out take their default (as on create) or null
    r = env.client.put(url, json={"tag": "P-1", "name": "Pump B", "version": 2})
    assert r.status_code == 200, r.json
    assert r.json["name"] == "Pump B" and r.json["notes"] is None
    assert r.json["run_hours"] == 0 and r.json["kind"] == "pump" and r.json["version"] == 3


def test_read_only_fields_sent_back_are_ignored(env: ApiEnv) -> None:
    item = env.create("equipment", {"tag": "R-1", "name": "round trip"})
    url = f"/api/plant/equipment/{item['id']}"
    body = env.client.get(url).json
    body["name"] = "changed"
    r = env.client.put(url, json=body)
    assert r.status_code == 200, r.json
    assert r.json["name"] == "changed" and r.json["id"] == item["id"]


def test_stale_version_is_409(env: ApiEnv) -> None:
    item = env.create("equipment", {"tag": "P-1", "name": "Pump"})
    url = f"/api/plant/equipment/{item['id']}"
    assert env.client.patch(url, json={"name": "A", "version": 1}).status_code == 200
    body = assert_error(env.client.patch(url, json={"name": "B", "version": 1}), 409)
    assert "version" in body["errors"]["json"]
    assert_error(env.client.put(url, json={"tag": "P-1", "name": "B", "version": 1}), 409)
    assert_error(env.client.delete(url + "?version=1"), 409)
    assert env.client.get(url).json["name"] == "A"
    assert_error(env.client.patch("/api/plant/equipment/999", json={"name": "x"}), 404)
    assert env.client.delete(url + "?version=2").status_code == 204
    assert_error(env.client.get(url), 404)
    assert_error(env.client.delete(url), 404)


def test_validation_errors_are_422_per_field(env: ApiEnv) -> None:
    r = env.client.post("/api/plant/equipment", json={
        "tag": "bad tag", "name": "x" * 61, "kind": "rocket", "depth_m": "1.234",
        "run_hours": -1, "rate": "fast", "active": "yes", "installed_on": "1900-01-01",
        "inspected_at": "yesterday", "site": True, "unknown": 1})
    body = assert_error(r, 422)
    errors = body["errors"]["json"]
    assert set(errors) == {"tag", "name", "kind", "depth_m", "run_hours", "rate", "active",
                           "installed_on", "inspected_at", "site", "unknown"}
    assert "pattern" in errors["tag"][0]
    assert "2 digits after the decimal point" in errors["depth_m"][0]
    r = env.client.post("/api/plant/equipment", json={"depth_m": "123456.0"})
    errors = assert_error(r, 422)["errors"]["json"]
    assert set(errors) == {"tag", "name", "depth_m"}        # required fields named
    assert "5 digits before the decimal point" in errors["depth_m"][0]
    r = env.client.post("/api/plant/equipment", json={"tag": "A", "name": "a", "depth_m": 12001})
    assert "depth_m" in assert_error(r, 422)["errors"]["json"]
    r = env.client.post("/api/plant/equipment", json={"tag": "A", "name": "a", "run_hours": 1.5})
    assert "run_hours" in assert_error(r, 422)["errors"]["json"]
    r = env.client.post("/api/plant/equipment", json={"tag": "A", "name": None})
    assert "name" in assert_error(r, 422)["errors"]["json"]


def test_child_rows_inline_replaced_and_ordered(env: ApiEnv) -> None:
    item = env.create("equipment", {"tag": "P-1", "name": "Pump", "readings": [
        {"taken_on": "2024-01-01", "pressure": 10.5},
        {"taken_on": "2024-01-02", "pressure": 11, "comment": "b"},
        {"taken_on": "2024-01-03"}]})
    rows = item["readings"]
    assert [r["idx"] for r in rows] == [0, 1, 2]
    assert [r["taken_on"] for r in rows] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    url = f"/api/plant/equipment/{item['id']}"
    # reorder, drop the first row, edit the kept ones, add a new one
    new_rows = [dict(rows[2], comment="third"), rows[1], {"taken_on": "2024-02-01"}]
    r = env.client.patch(url, json={"readings": new_rows})
    assert r.status_code == 200, r.json
    got = r.json["readings"]
    assert [g["id"] for g in got[:2]] == [rows[2]["id"], rows[1]["id"]]
    assert got[2]["id"] not in {x["id"] for x in rows}
    assert [g["idx"] for g in got] == [0, 1, 2] and got[0]["comment"] == "third"
    assert env.client.get(url).json["readings"] == got
    # PATCH without the table keeps it; PUT without it empties it
    assert env.client.patch(url, json={"notes": "x"}).json["readings"] == got
    r = env.client.put(url, json={"tag": "P-1", "name": "Pump"})
    assert r.json["readings"] == []
    t = env.model.entity("plant.reading").table
    with env.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() == 0


def test_child_row_validation_names_the_row(env: ApiEnv) -> None:
    r = env.client.post("/api/plant/equipment", json={"tag": "P-1", "name": "Pump", "readings": [
        {"taken_on": "2024-01-01"}, {"pressure": -1}]})
    errors = assert_error(r, 422)["errors"]["json"]
    assert set(errors["readings"]["1"]) == {"taken_on", "pressure"}


def test_links_to_missing_records_are_422(env: ApiEnv) -> None:
    site = env.create("site", {"name": "S"})
    r = env.client.post("/api/plant/equipment", json={"tag": "P-1", "name": "P", "site": 999})
    body = assert_error(r, 422)
    assert body["errors"]["json"] == {"site": ["plant.site 999 does not exist"]}
    r = env.client.post("/api/plant/equipment", json={"tag": "P-1", "name": "P", "readings": [
        {"taken_on": "2024-01-01", "witness_site": site["id"]},
        {"taken_on": "2024-01-01", "witness_site": 998}]})
    body = assert_error(r, 422)
    assert list(body["errors"]["json"]) == ["readings.1.witness_site"]
    item = env.create("equipment", {"tag": "P-1", "name": "P", "site": site["id"]})
    r = env.client.patch(f"/api/plant/equipment/{item['id']}", json={"parent": 12345})
    assert "parent" in assert_error(r, 422)["errors"]["json"]
    with env.engine.connect() as conn:   # nothing half-written
        assert conn.execute(sa.text("SELECT count(*) FROM plant_equipment")).scalar() == 1


def test_unique_violations_are_409_naming_fields(env: ApiEnv) -> None:
    site = env.create("site", {"name": "S"})
    env.create("equipment", {"tag": "P-1", "name": "Pump", "site": site["id"]})
    body = assert_error(env.post("/api/plant/equipment", {"tag": "P-1", "name": "Other"}), 409)
    assert list(body["errors"]["json"]) == ["tag"] and "tag" in body["message"]
    body = assert_error(env.post("/api/plant/equipment",
                                 {"tag": "P-2", "name": "Pump", "site": site["id"]}), 409)
    assert sorted(body["errors"]["json"]) == ["name", "site"]


def test_delete_restrict_names_referencing_records(env: ApiEnv) -> None:
    site = env.create("site", {"name": "S"})
    a = env.create("equipment", {"tag": "A", "name": "a", "site": site["id"]})
    b = env.create("equipment", {"tag": "B", "name": "b", "site": site["id"]})
    body = assert_error(env.client.delete(f"/api/plant/site/{site['id']}"), 409)
    assert body["errors"]["references"] == {"plant.equipment": [a["id"], b["id"]]}
    assert f"plant.equipment {a['id']}, {b['id']}" in body["message"]
    # a child row's restrict link names the parent record
    other = env.create("site", {"name": "W"})
    c = env.create("equipment", {"tag": "C", "name": "c", "readings": [
        {"taken_on": "2024-01-01", "witness_site": other["id"]}]})
    body = assert_error(env.client.delete(f"/api/plant/site/{other['id']}"), 409)
    assert body["errors"]["references"] == {"plant.equipment": [c["id"]]}
    assert env.client.get(f"/api/plant/site/{site['id']}").status_code == 200


def test_delete_cascades_and_sets_null(env: ApiEnv) -> None:
    parent = env.create("equipment", {"tag": "P", "name": "parent", "readings": [
        {"taken_on": "2024-01-01"}]})
    child = env.create("equipment", {"tag": "C", "name": "child", "parent": parent["id"]})
    insp = env.create("inspection", {"equipment": parent["id"], "done_on": "2024-03-01"})
    assert insp["result"] == "ok"
    assert env.client.delete(f"/api/plant/equipment/{parent['id']}").status_code == 204
    assert env.client.get(f"/api/plant/inspection/{insp['id']}").status_code == 404
    assert env.client.get(f"/api/plant/equipment/{child['id']}").json["parent"] is None
    with env.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM plant_reading")).scalar() == 0


def test_bulk_create_is_all_or_nothing(env: ApiEnv) -> None:
    site = env.create("site", {"name": "S"})
    rows = [{"tag": f"B-{i}", "name": f"b{i}", "site": site["id"],
             "readings": [{"taken_on": "2024-01-01", "pressure": i}]} for i in range(5)]
    r = env.post("/api/plant/equipment/bulk", rows)
    assert r.status_code == 201, r.json
    items = r.json["items"]
    assert [i["tag"] for i in items] == [f"B-{i}" for i in range(5)]
    assert [i["readings"][0]["pressure"] for i in items] == [0, 1, 2, 3, 4]

    def count() -> int:
        with env.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM plant_equipment")).scalar())

    bad = [{"tag": "C-0", "name": "ok"}, {"tag": "c 1", "name": "x"}, {"name": "no tag"}]
    body = assert_error(env.post("/api/plant/equipment/bulk", bad), 422)
    assert sorted(body["errors"]["json"]) == ["1", "2"]
    assert "tag" in body["errors"]["json"]["2"]
    missing = [{"tag": "C-0", "name": "a"}, {"tag": "C-1", "name": "b", "site": 424242}]
    body = assert_error(env.post("/api/plant/equipment/bulk", missing), 422)
    assert body["errors"]["json"] == {"1": {"site": ["plant.site 424242 does not exist"]}}
    dupes = [{"tag": "D-0", "name": "a"}, {"tag": "D-1", "name": "b"}, {"tag": "D-0", "name": "c"}]
    body = assert_error(env.post("/api/plant/equipment/bulk", dupes), 409)
    assert body["errors"]["json"] == {"0": {"tag": [body["errors"]["json"]["0"]["tag"][0]]},
                                      "2": {"tag": [body["errors"]["json"]["2"]["tag"][0]]}}
    taken = [{"tag": "E-0", "name": "a"}, {"tag": "B-1", "name": "b"}]
    body = assert_error(env.post("/api/plant/equipment/bulk", taken), 409)
    assert list(body["errors"]["json"]) == ["1"] and "tag" in body["errors"]["json"]["1"]
    pair = [{"tag": "F-0", "name": "b0", "site": site["id"]}, {"tag": "F-1", "name": "new"}]
    body = assert_error(env.post("/api/plant/equipment/bulk", pair), 409)
    assert body["errors"]["json"] == {"0": {"site": body["errors"]["json"]["0"]["site"],
                                            "name": body["errors"]["json"]["0"]["name"]}}
    assert count() == 5
    assert_error(env.post("/api/plant/equipment/bulk", {"tag": "x"}), 422)
    assert env.post("/api/plant/equipment/bulk", []).json == {"items": []}


def test_current_user_and_authorize_hooks(project, db_url: str) -> None:  # type: ignore[no-untyped-def]
    def authorize(entity, action):  # type: ignore[no-untyped-def]
        return not (entity.name == "site" and action == "delete")

    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url, authorize=authorize,
                 current_user=lambda: "ana")
    try:
        site = e.create("site", {"name": "S"})
        assert site["created_by"] == "ana" and site["updated_by"] == "ana"
        body = assert_error(e.client.delete(f"/api/plant/site/{site['id']}"), 403)
        assert "missing permission: delete on plant.site" in body["message"]
        assert e.client.get(f"/api/plant/site/{site['id']}").status_code == 200
    finally:
        e.engine.dispose()
