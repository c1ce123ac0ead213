"""Template exports (``exports:`` in YAML) of the oil-field modules, through the REST API
with real logins: the daily drilling report as a WITSML 1.4.1.1 ``drillReports`` document,
checked against the published WITSML data schema (komle-plus ships it compiled to PyXB
bindings: element order, required elements and attributes, enumerations, unit codes), and
daily production as a PRODML-shaped volumes document checked against
``tests/fixtures/schemas/prodml_volumes.xsd`` (written from PRODML's ProductVolume)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from support.oilfield import Field, signed_in_field, small_field

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "schemas"

# PyXB parses and validates the whole document against the compiled WITSML 1.4.1.1 schema
# (the "write" bindings keep the schema's required elements and attributes). It runs in a
# child process: the bindings take seconds to import and PyXB's warnings are not ours.
_WITSML_CHECK = """
import sys
from komle.bindings.v1411.write import witsml
doc = witsml.CreateFromDocument(sys.stdin.buffer.read())
print(len(doc.drillReport))
"""


def witsml_errors(xml: bytes) -> tuple[int, str]:
    """(reports parsed, error text) of a drillReports document."""
    p = subprocess.run([sys.executable, "-W", "ignore", "-c", _WITSML_CHECK], input=xml,
                       capture_output=True, timeout=240)
    if p.returncode != 0:
        return 0, p.stderr.decode()[-2000:]
    return int(p.stdout.decode().strip()), ""


def drilling_report(f: Field, well: dict[str, Any], day: int, **extra: Any) -> dict[str, Any]:
    """A complete daily drilling report for ``well`` (created by the operator)."""
    rig = f.get("sam", "/api/drilling/rig?code=R-101").json["items"]
    rig = rig[0] if rig else f.ok("sam", "/api/drilling/rig", {"code": "R-101", "name": "Rig 101"})
    depth = 1000 + 120 * day
    body = {
        "well": well["id"], "rig": rig["id"], "report_date": f"2025-04-{day:02d}",
        "report_number": day, "depth_from_md": str(depth), "depth_to_md": str(depth + 120),
        "drilling_hours": "16", "hole_size": "8.5", "mud_weight": "9.6",
        "mud_type": "water_based", "mud_viscosity": 48, "summary": "Drilled 8 1/2 in hole",
        "bha": "PDC bit, mud motor, MWD",
        "activities": [
            {"start_time": "00:00", "end_time": "16:00", "hours": "16", "code": "drill",
             "md_end": str(depth + 120), "description": "Drill ahead <8½ in> & survey"},
            {"start_time": "16:00", "end_time": "20:00", "hours": "4", "code": "circulate",
             "description": "Circulate hole clean"},
            {"start_time": "20:00", "end_time": "24:00", "hours": "4", "code": "rig_repair",
             "productive": False, "description": "Repair top drive"}],
        "bits": [{"bit_number": "3", "size": "8.5", "bit_type": "PDC", "iadc_code": "M323",
                  "manufacturer": "Acme", "md_in": "900", "md_out": str(depth + 120),
                  "hours": "40"}],
        "npt_events": [{"hours": "4", "cause": "rig_equipment",
                        "responsible": "drilling_contractor", "description": "Top drive"}],
        "costs": [{"category": "rig", "amount": "28000"}, {"category": "mud", "amount": "3500"}],
        **extra}
    return f.ok("otto", "/api/drilling/drilling_report", body)


def test_drilling_report_exports_valid_witsml(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    a = setup["wells"]["A"]
    f.patch("sam", f"/api/wells/well/{a['id']}", {"kb_elevation": "412.5",
                                                    "ground_elevation": "405"})
    first = drilling_report(f, a, 1)
    assert (first["total_hours"], first["npt_hours"], first["day_cost"], first["rop"]) == (
        "24.00", "4.00", "31500.00", "7.50")
    drilling_report(f, a, 2)
    r = f.get("eva", f"/api/drilling/drilling_report/{first['id']}/exports/witsml")
    assert r.status_code == 200, r.json
    assert r.headers["Content-Type"].startswith("application/xml")
    xml = r.data
    assert b"Drill ahead &lt;8\xc2\xbd in&gt; &amp; survey" in xml           # escaped
    assert b'<density uom="kg/m3">1150.3</density>' in xml                   # 9.6 ppg
    assert b'<elevation uom="m" datum="SL">412.50</elevation>' in xml        # expanded well
    count, err = witsml_errors(xml)
    assert (count, err) == (1, "")
    many = f.get("sam", "/api/drilling/drilling_report/exports/witsml?well="
                        f"{a['id']}&sort=report_date")
    assert many.status_code == 200
    count, err = witsml_errors(many.data)
    assert (count, err) == (2, "")
    # a document the schema refuses is caught (an unknown version kind)
    bad = xml.replace(b"<versionKind>preliminary</versionKind>", b"<versionKind>x</versionKind>")
    assert witsml_errors(bad)[0] == 0
    # permissions and scope: the operator has no export right, the viewer of pad_b does not
    # see pad_a's report
    assert f.get("otto", f"/api/drilling/drilling_report/{first['id']}/exports/witsml"
                 ).status_code == 403
    assert f.get("vera", f"/api/drilling/drilling_report/{first['id']}/exports/witsml"
                 ).status_code == 404
    assert f.get("sam", f"/api/drilling/drilling_report/{first['id']}/exports/nope"
                 ).status_code == 404
    f.engine.dispose()


def test_daily_production_exports_prodml_volumes(db_url: str, tmp_path: Path) -> None:
    f = signed_in_field(db_url, tmp_path)
    setup = small_field(f)
    for name, oil in (("A", "412.30"), ("B", "0"), ("C", "128.75")):
        body = {"well": setup["wells"][name]["id"], "prod_date": "2025-03-02", "oil": oil,
                "gas": "35.125", "water": "88.10", "hours_on": "24" if name != "B" else "0",
                "thp": "210.5", "choke": 32}
        if name == "B":
            body |= {"downtime_reason": "esp_trip", "gas": "0", "water": "0"}
        f.ok("otto", "/api/production/daily_production", body)
    r = f.get("sam", "/api/production/daily_production/exports/prodml?prod_date=2025-03-02"
                     "&sort=well_name")
    assert r.status_code == 200, r.json
    schema = xmlschema.XMLSchema(SCHEMAS / "prodml_volumes.xsd")
    schema.validate(r.data)                                     # raises when invalid
    doc = schema.to_dict(r.data)
    units = doc["facility"]
    assert [u["name"]["$"] for u in units] == ["A", "B", "C"]
    a_oil = units[0]["flow"][0]["product"][0]["period"][0]["volume"]
    assert a_oil == {"@uom": "m3", "$": pytest.approx(65.550, abs=0.0005)}  # 412.30 bbl x 0.158987
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        schema.validate(r.data.replace(b"<kind>oil</kind>", b"<kind>milk</kind>"))
    f.engine.dispose()
