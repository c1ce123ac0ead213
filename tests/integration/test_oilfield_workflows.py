"""Workflows, validations and row scopes of the oil-field modules through the REST API with
real logins (supervisor sam: every site; engineer eva: pad_a; operator otto: pad_a and
pad_b; viewer vera: pad_b), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.oilfield import signed_in_field, small_field
from test_oilfield_exports import drilling_report

pytestmark = pytest.mark.integration


def errors(r: object) -> dict[str, object]:
    return r.json["errors"]["json"]  # type: ignore[attr-defined, no-any-return]


def test_well_life_cycle_and_rules(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    a = setup["wells"]["A"]
    url = f"/api/wells/well/{a['id']}"
    assert (a["status"], a["site"], a["oil_field"]) == ("planned", "pad_a",
                                                        setup["oil_field"]["id"])
    # validations: TVD below MD, KB under ground, an injector with an ESP, a bad API number
    r = f.patch("eva", url, {"td_md": "2000", "td_tvd": "2100"})
    assert r.status_code == 422 and "td_tvd" in errors(r)
    r = f.patch("eva", url, {"kb_elevation": "400", "ground_elevation": "405"})
    assert r.status_code == 422 and errors(r)["kb_elevation"] == [
        "The kelly bushing is above ground level"]
    r = f.patch("eva", url, {"well_type": "water_injector"})
    assert r.status_code == 422 and "lift_method" in errors(r)
    r = f.patch("eva", url, {"api_number": "4250120130"})
    assert r.status_code == 422 and "api_number" in errors(r)
    r = f.client.patch(url, json={"td_md": "2000", "td_tvd": "2100"},
                       headers={**f.headers["eva"], "Accept-Language": "es"})
    assert errors(r)["td_tvd"] == ["La TVD no puede superar la profundidad medida"]
    # the life-cycle: requires, roles, and the actions offered
    act = url + "/actions/"
    r = f.post("eva", act + "spud")
    assert r.status_code == 422 and "spud_date" in errors(r)
    assert f.patch("eva", url, {"spud_date": "2024-01-10"}).status_code == 200
    assert f.post("otto", act + "spud").status_code == 403            # operators do not spud
    assert f.ok("eva", act + "spud", status=200)["status"] == "drilling"
    assert f.patch("eva", url, {"td_md": "2450", "td_tvd": "2400",
                                "completion_date": "2024-02-20"}).status_code == 200
    r = f.patch("eva", url, {"completion_date": "2024-01-01"})        # before the spud date
    assert r.status_code == 422 and "completion_date" in errors(r)
    f.ok("eva", act + "complete", status=200)
    r = f.post("eva", act + "put_on_production")
    assert r.status_code == 422 and "first_production_date" in errors(r)
    f.patch("eva", url, {"first_production_date": "2024-03-01"})
    assert f.ok("eva", act + "put_on_production", status=200)["status"] == "producing"
    assert f.ok("otto", act + "shut_in", status=200)["status"] == "shut_in"
    offered = {x["action"]: x["allowed"] for x in f.get("otto", url + "/actions").json["actions"]}
    assert offered == {"reopen": True, "abandon": False}
    assert f.post("otto", act + "abandon").status_code == 403          # supervisors only
    f.patch("sam", url, {"abandonment_date": "2025-01-01"})
    assert f.ok("sam", act + "abandon", status=200)["status"] == "abandoned"
    r = f.patch("sam", url, {"name": "A2"})                            # read-only but notes
    assert r.status_code == 422
    history = f.get("vera" if False else "eva", url + "/transitions").json["items"]
    assert [(h["action"], h["user"]) for h in history] == [
        ("spud", "eva"), ("complete", "eva"), ("put_on_production", "eva"),
        ("shut_in", "otto"), ("abandon", "sam")]
    f.engine.dispose()


def test_scopes_by_site(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    names = {u: sorted(w["name"] for w in f.get(u, "/api/wells/well").json["items"])
             for u in ("sam", "eva", "otto", "vera")}
    assert names == {"sam": ["A", "B", "C"], "eva": ["A", "B"], "otto": ["A", "B", "C"],
                     "vera": ["C"]}
    c = setup["wells"]["C"]
    assert f.get("eva", f"/api/wells/well/{c['id']}").status_code == 404    # reads as missing
    # a record for a well outside the caller's sites cannot be written
    r = f.post("eva", "/api/production/well_test", {
        "well": c["id"], "test_date": "2025-03-01", "oil_rate": "10", "gas_rate": "1",
        "water_rate": "1"})
    assert r.status_code == 422 and "well" in errors(r)
    # the viewer reads but never writes; the pad list is scoped by its own code
    assert f.post("vera", "/api/wells/oil_field", {"code": "X", "name": "X"}).status_code == 403
    assert [p["code"] for p in f.get("vera", "/api/wells/pad").json["items"]] == ["pad_b"]
    # a daily production row inherits the well's site, and its scope follows
    row = f.ok("otto", "/api/production/daily_production", {
        "well": c["id"], "prod_date": "2025-03-02", "oil": "10", "water": "5", "gas": "1"})
    assert (row["site"], row["bsw"], row["gor"], row["prod_month"]) == (
        "pad_b", "33.33", "100.0", "2025-03")
    assert f.get("eva", f"/api/production/daily_production/{row['id']}").status_code == 404
    assert f.get("vera", f"/api/production/daily_production/{row['id']}").status_code == 200
    f.engine.dispose()


def test_daily_reports_and_interventions(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    a = setup["wells"]["A"]
    # a day needs 24 hours to be submitted; NPT cannot exceed the hours reported
    short = drilling_report(f, a, 1, activities=[
        {"hours": "20", "code": "drill", "description": "Drill"}], npt_events=[])
    r = f.post("otto", f"/api/drilling/drilling_report/{short['id']}/actions/submit")
    assert r.status_code == 422 and "_guard" in errors(r)
    r = f.patch("otto", f"/api/drilling/drilling_report/{short['id']}", {"npt_events": [
        {"hours": "21", "cause": "weather", "responsible": "force_majeure", "description": "x"}]})
    assert r.status_code == 422 and "npt_events" in errors(r)
    ddr = drilling_report(f, a, 2)
    url = f"/api/drilling/drilling_report/{ddr['id']}"
    f.ok("otto", url + "/actions/submit", status=200)
    assert f.patch("otto", url, {"summary": "changed"}).status_code == 422   # submitted: locked
    assert f.post("otto", url + "/actions/approve").status_code == 403
    assert f.ok("sam", url + "/actions/approve", status=200)["status"] == "approved"
    dup = f.post("otto", "/api/drilling/drilling_report", {
        "well": a["id"], "rig": ddr["rig"], "report_date": ddr["report_date"],
        "report_number": 9, "depth_from_md": "1", "depth_to_md": "2", "summary": "dup"})
    assert dup.status_code == 409                                  # one report per well and day

    job = f.ok("eva", "/api/interventions/intervention", {
        "well": a["id"], "kind": "workover", "objective": "esp_replacement",
        "description": "Replace ESP", "planned_start": "2025-05-01", "oil_before": "0",
        "afe_number": "AFE-1", "afe_amount": "100000", "services_cost": "60000",
        "materials": [{"item": "ESP", "quantity": "1", "unit_cost": "45000"}]})
    assert job["number"].startswith("INT-") and job["total_cost"] == "105000.00"
    assert job["afe_used"] == "105.0"
    iurl = f"/api/interventions/intervention/{job['id']}"
    r = f.patch("eva", iurl, {"services_cost": "70000"})                   # > AFE + 10 %
    assert r.status_code == 422 and "total_cost" in errors(r)
    f.ok("eva", iurl + "/actions/submit", status=200)
    assert f.post("eva", iurl + "/actions/approve").status_code == 403
    f.ok("sam", iurl + "/actions/approve", status=200)
    r = f.post("otto", iurl + "/actions/start")
    assert r.status_code == 422 and "started_at" in errors(r)
    assert f.patch("otto", iurl, {"started_at": "2025-05-01T07:00:00Z"}).status_code == 200
    f.ok("otto", iurl + "/actions/start", status=200)
    f.patch("otto", iurl, {"finished_at": "2025-05-02T19:00:00Z", "job_log": [
        {"at": "2025-05-01T07:00:00Z", "hours": "12", "operation": "Pull ESP"}]})
    f.ok("eva", iurl + "/actions/complete", status=200)
    r = f.post("sam", iurl + "/actions/close")
    assert r.status_code == 422                                    # oil after and result
    done = f.patch("eva", iurl, {"oil_after": "180", "result": "successful"}).json
    assert (done["oil_gain"], done["duration_hours"]) == ("180.00", "36.0")
    assert f.ok("sam", iurl + "/actions/close", status=200)["status"] == "closed"
    f.engine.dispose()
