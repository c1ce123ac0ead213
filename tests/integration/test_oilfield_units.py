"""Quantities in the caller's unit system (``X-Units: field|metric`` or ``?units=``), stored
in each field's own unit, through the REST API with real logins, on SQLite and PostgreSQL;
conversions by pint with the oil barrel (engine.units)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from support.oilfield import signed_in_field, small_field

from engine.units import check_conversion, convert, display_unit

pytestmark = pytest.mark.integration


def test_conversions() -> None:
    assert convert(Decimal(1), "bbl", "m3").quantize(Decimal("0.000001")) == Decimal("0.158987")
    assert round(convert(212.0, "degF", "degC"), 6) == 100.0
    assert round(convert(1.0, "Mscf", "m3"), 4) == 28.3168
    assert round(convert(1.0, "mD", "m**2") * 1e15, 5) == 0.98692      # millidarcy, not debye
    assert round(convert(9.6, "ppg", "kg/m3"), 1) == 1150.3
    assert display_unit("bbl/d", "metric") == "m3/d" and display_unit("m", "field") == "ft"
    assert display_unit("USD", "metric") == "USD" and display_unit("psi", None) == "psi"
    with pytest.raises(ValueError, match="cannot"):
        check_conversion("psi", "m")
    with pytest.raises(ValueError):
        check_conversion("USD", "EUR")


def test_api_in_field_and_metric_units(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    a = setup["wells"]["A"]
    url = f"/api/wells/well/{a['id']}"
    assert f.patch("eva", url, {"td_md": "2000.00", "kb_elevation": "412.50"}).status_code == 200
    field = f.client.get(url, headers={**f.headers["eva"], "X-Units": "field"})
    assert field.headers["X-Units"] == "field"
    assert (field.json["td_md"], field.json["kb_elevation"]) == ("6561.68", "1353.35")
    near = f.get("eva", "/api/wells/well?units=field&td_md__gte=6561&td_md__lt=6562").json
    assert [w["name"] for w in near["items"]] == ["A"]            # 6561 ft = 1999.79 m
    assert f.get("eva", "/api/wells/well?units=metric&td_md__gte=2001").json["items"] == []
    stored = f.get("eva", url).json
    assert stored["td_md"] == "2000.00"                                  # no header: stored

    # writes in metric are stored in the field's unit (bbl/d, Mscf/d, psi)
    metric = {**f.headers["otto"], "X-Units": "metric"}
    r = f.client.post("/api/production/well_test", headers=metric, json={
        "well": a["id"], "test_date": "2025-03-01", "oil_rate": "100", "gas_rate": "28.3168",
        "water_rate": "0", "thp": "1000"})
    assert r.status_code == 201, r.json
    # the answer is the stored value shown in metric: 145.0 psi (scale 1) is 999.7 kPa
    assert (r.json["oil_rate"], r.json["gas_rate"], r.json["thp"]) == ("100.00", "28.317",
                                                                        "999.7")
    raw = f.get("otto", f"/api/production/well_test/{r.json['id']}").json
    assert (raw["oil_rate"], raw["gas_rate"], raw["thp"]) == ("628.98", "1.000", "145.0")
    assert raw["liquid_rate"] == "628.98"                     # computed from stored values

    # child rows, lists with ?units=, aggregates, and the units /api/meta announces
    rig = f.ok("sam", "/api/drilling/rig", {"code": "R-1", "name": "Rig"})
    ddr = f.client.post("/api/drilling/drilling_report", headers={**f.headers["otto"],
                                                                   "X-Units": "field"}, json={
        "well": a["id"], "rig": rig["id"], "report_date": "2025-04-01", "report_number": 1,
        "depth_from_md": "3280.84", "depth_to_md": "3608.92", "summary": "Drilled",
        "activities": [{"hours": "24", "code": "drill", "md_end": "3608.92",
                        "description": "Drill"}]})
    assert ddr.status_code == 201, ddr.json
    back = f.get("otto", f"/api/drilling/drilling_report/{ddr.json['id']}").json
    assert (back["depth_from_md"], back["depth_to_md"], back["progress"]) == (
        "1000.00", "1100.00", "100.00")
    assert back["activities"][0]["md_end"] == "1100.00"
    listed = f.get("otto", "/api/drilling/drilling_report?units=field").json["items"][0]
    assert listed["progress"] == "328.08"
    f.ok("otto", "/api/production/daily_production", {
        "well": a["id"], "prod_date": "2025-03-02", "oil": "629.00", "water": "0", "gas": "0"})
    agg = f.get("otto", "/api/production/daily_production/aggregate?sum=oil&units=metric").json
    assert agg["items"][0]["sum"]["oil"] == "100.00"
    meta = f.client.get("/api/meta/production/well_test?units=metric",
                        headers=f.headers["otto"]).json
    assert "m3/d" in str(meta) and "bbl/d" not in str(meta)
    f.engine.dispose()
