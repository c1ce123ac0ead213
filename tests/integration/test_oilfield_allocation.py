"""Allocation of a facility's measured totals back to its wells (``allocations:`` in
modules/production), through the REST API with real logins, on SQLite and PostgreSQL,
checked against a hand calculation that includes the rounding."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.oilfield import signed_in_field, small_field

from engine.api.allocation import largest_remainder
from engine.audit import audit_table

pytestmark = pytest.mark.integration

# Three wells on one facility, one day. Theoretical volume = test rate x hours on / 24:
#           test oil  gas  water   hours   theo oil  gas  water
#   A         300    150   100      24       300    150   100
#   B         300     90   200      12       150     45   100
#   C         300     60   700      24       300     60   700
# B ran 12 h, so its oil weight is 150. Sums: oil 750, gas 255, water 900.
#
# Oil: measured 1000.00 (0.01 bbl steps: 100000 units). Exact shares in units:
#   A 100000*300/750 = 40000, B 20000, C 40000 -> 400.00, 200.00, 400.00 (no remainder).
# Gas: measured 200.000 (0.001 Mscf steps: 200000 units):
#   A 200000*150/255 = 117647.0588 -> 117647 (.0588)
#   B 200000*45/255  =  35294.1176 ->  35294 (.1176)
#   C 200000*60/255  =  47058.8235 ->  47058 (.8235)   floors 199999, 1 unit left -> C
#   = 117.647, 35.294, 47.059 (sum 200.000; plain rounding gives the same here)
# Water: measured 850.00 (85000 units):
#   A 85000*100/900 = 9444.444 -> 9444 (.444)
#   B 85000*100/900 = 9444.444 -> 9444 (.444)
#   C 85000*700/900 = 66111.111 -> 66111 (.111)       floors 84999, 1 unit left: A and B
#   tie on remainder and weight -> the earlier row, A = 94.45, 94.44, 661.11 (sum 850.00;
#   rounding each share would give 94.44 + 94.44 + 661.11 = 849.99).
# Factors (measured / theoretical, 6 decimals): oil 1000/750 = 1.333333,
#   gas 200/255 = 0.784314, water 850/900 = 0.944444.
EXPECTED = {"A": ("400.00", "117.647", "94.45"), "B": ("200.00", "35.294", "94.44"),
            "C": ("400.00", "47.059", "661.11")}
TESTS = {"A": (300, 150, 100, 24), "B": (300, 90, 200, 12), "C": (300, 60, 700, 24)}


def test_largest_remainder_by_hand() -> None:
    assert largest_remainder(Decimal("100.00"), [Decimal(1)] * 3, 2) == [
        Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    assert largest_remainder(Decimal("850"), [Decimal(100), Decimal(100), Decimal(700)], 2) \
        == [Decimal("94.45"), Decimal("94.44"), Decimal("661.11")]
    # a larger weight wins a tie of remainders; zero weights get nothing
    assert largest_remainder(Decimal("1"), [Decimal(1), Decimal(0), Decimal(2)], 0) == [
        Decimal(0), Decimal(0), Decimal(1)]
    assert largest_remainder(Decimal("10"), [Decimal("1.5"), Decimal("1.5")], 0) == [
        Decimal(5), Decimal(5)]
    with pytest.raises(ValueError, match="zero"):
        largest_remainder(Decimal(1), [Decimal(0)], 2)
    with pytest.raises(ValueError, match="negative"):
        largest_remainder(Decimal(1), [Decimal(-1), Decimal(2)], 2)


def test_allocation_through_the_api(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    rows = {}
    for name, (oil, gas, water, hours) in TESTS.items():
        well = setup["wells"][name]
        test = f.ok("sam", "/api/production/well_test", {
            "well": well["id"], "test_date": "2025-03-01", "oil_rate": str(oil),
            "gas_rate": str(gas), "water_rate": str(water)})
        body = {"well": well["id"], "prod_date": "2025-03-02", "hours_on": str(hours),
                "oil": "0", "gas": "0", "water": "0", "well_test": test["id"]}
        if hours < 24:
            body["downtime_reason"] = "esp_trip"
        rows[name] = f.ok("otto", "/api/production/daily_production", body)
        assert rows[name]["facility"] == setup["facility"]["id"]
    assert rows["B"]["theoretical_oil"] == "150.0000"
    m = f.ok("otto", "/api/production/facility_measurement", {
        "facility": setup["facility"]["id"], "prod_date": "2025-03-02",
        "oil_measured": "1000.00", "gas_measured": "200.000", "water_measured": "850.00"})
    url = f"/api/production/facility_measurement/{m['id']}/allocations/volumes"

    # the operator may record the measurement but not allocate it
    assert f.post("otto", url).status_code == 403
    # the engineer of pad_a does not see well C's row: a partial allocation is refused
    r = f.post("eva", url)
    assert r.status_code == 403 and "1 of the 3" in r.json["message"], r.json

    dry = f.ok("sam", url + "?dry_run=true", status=200)
    assert dry["dry_run"] is True
    by_id = {row["id"]: row for row in dry["rows"]}
    for name, (oil, gas, water) in EXPECTED.items():
        got = by_id[rows[name]["id"]]
        assert (got["allocated_oil"], got["allocated_gas"], got["allocated_water"]) == (
            oil, gas, water), name
    assert f.get("sam", f"/api/production/daily_production/{rows['A']['id']}").json[
        "allocated_oil"] is None                                   # a dry run writes nothing

    done = f.ok("sam", url, status=200)
    assert [(s["total"], s["allocated"], s["factor"]) for s in done["splits"]] == [
        ("oil_measured", "1000.00", "1.333333"), ("gas_measured", "200.000", "0.784314"),
        ("water_measured", "850.00", "0.944444")]
    for name, (oil, gas, water) in EXPECTED.items():
        row = f.get("vera" if name == "C" else "eva",
                    f"/api/production/daily_production/{rows[name]['id']}").json
        assert (row["allocated_oil"], row["allocated_gas"], row["allocated_water"]) == (
            oil, gas, water), name
    agg = f.get("sam", "/api/production/daily_production/aggregate?prod_date=2025-03-02"
                       "&sum=allocated_oil,allocated_gas,allocated_water").json["items"][0]
    assert agg["sum"] == {"allocated_oil": "1000.00", "allocated_gas": "200.000",
                          "allocated_water": "850.00"}
    meas = f.get("sam", f"/api/production/facility_measurement/{m['id']}").json
    assert (meas["oil_factor"], meas["wells_allocated"]) == ("1.333333", 3)

    # nobody but an admin may type over an allocated value
    r = f.patch("sam", f"/api/production/daily_production/{rows['A']['id']}",
                {"allocated_oil": "1.00"})
    assert r.status_code == 403
    with f.engine.connect() as conn:
        audited = conn.execute(sa.select(sa.func.count()).select_from(audit_table).where(
            audit_table.c.action == "allocation.volumes")).scalar_one()
    assert audited == 4                                            # three rows + the record

    # closing the day needs the allocation; a closed day cannot be allocated again
    f.ok("sam", f"/api/production/facility_measurement/{m['id']}/actions/close", status=200)
    r = f.post("sam", url)
    assert r.status_code == 422 and "_guard" in r.json["errors"]["json"]
    f.engine.dispose()


def test_allocation_without_rows_or_weights(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    m = f.ok("sam", "/api/production/facility_measurement", {
        "facility": setup["facility"]["id"], "prod_date": "2025-03-05",
        "oil_measured": "10", "gas_measured": "1", "water_measured": "1"})
    url = f"/api/production/facility_measurement/{m['id']}/allocations/volumes"
    r = f.post("sam", url)
    assert r.status_code == 422 and "_rows" in r.json["errors"]["json"]
    f.ok("sam", "/api/production/daily_production", {
        "well": setup["wells"]["A"]["id"], "prod_date": "2025-03-05", "hours_on": "0",
        "downtime_reason": "power_failure"})
    r = f.post("sam", url)                                         # all weights are zero
    assert r.status_code == 422 and "oil_measured" in r.json["errors"]["json"], r.json
    assert f.post("sam", url.replace("volumes", "nope")).status_code == 404
    f.engine.dispose()
