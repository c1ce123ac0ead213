"""``campo demo load``: data sets (``demo/*.yaml``) created through the REST API's own write
path (rules, workflows, audit), idempotent. The language on both databases with a small
data set; the repository's whole oil-field demo once, on SQLite, with its WITSML and PRODML
exports checked against their schemas."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import xmlschema
from test_oilfield_exports import SCHEMAS, witsml_errors

from engine.audit import audit_table
from engine.cli import main
from engine.db import create_engine_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SMALL = """
label: small
x-let: &let
  code: "=concat('P', string(n))"
steps:
  - entity: wells.oil_field
    key: code
    records:
      - {code: LA, name: Loma Alta}
  - entity: wells.pad
    key: code
    for: {n: {range: [1, 2]}}
    values: {code: "=concat('pad_', string(n))", name: "=concat('Pad ', string(n))", oil_field: LA}
  - entity: wells.well
    key: uwi
    for: {n: {range: [1, 3]}}
    let: *let
    when: "n != 2"
    values:
      uwi: "=concat('AR-T-000', string(n))"
      name: "=code"
      pad: "=concat('pad_', string(1 + n % 2))"
      spud_date: "=add_days(date('2024-01-01'), 10 * n)"
      lift_method: ESP
      td_md: "=round(1000 + 100 * pseudo_random('td', n), 2)"
      completion_date: 2024-06-01
    actions: [spud, complete]
    actions_if: "n == 1"
  - entity: production.daily_production
    key: [well, prod_date]
    for: {n: [1, 3], day: {dates: {from: 2024-07-01, days: 3}}}
    values:
      well: "=concat('AR-T-000', string(n))"
      prod_date: "=day"
      oil: "=round(100 * exp(-0.01 * days_between(date('2024-07-01'), day)), 2)"
  - entity: drilling.rig
    key: code
    records: [{code: R-1, name: Rig one}]
  - entity: drilling.drilling_report
    key: [well, report_date]
    for: {k: [1, 2]}
    values:
      well: AR-T-0001
      rig: R-1
      report_date: "=add_days(date('2024-02-01'), k)"
      report_number: "=k"
      depth_from_md: 0
      depth_to_md: 100
      summary: Drilled
      mud_weight: 9
      activities:
        - {hours: 24, code: drill, description: Drill}
      npt_events:
        - {_if: "=k == 2", hours: 2, cause: weather, responsible: force_majeure, description: Wind}
    actions: [submit]
"""


def load(root: Path, url: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["demo", "load", "--project", str(root), "--database-url", url])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    assert "[##############################]" in out.err                   # the progress bar
    return out.out


def project_with(tmp_path: Path, demo: str | None) -> Path:
    root = tmp_path / "project"
    for part in ("modules", "screens", "tags"):
        shutil.copytree(REPO / part, root / part)
    if demo is None:
        shutil.copytree(REPO / "demo", root / "demo")
    else:
        (root / "demo").mkdir()
        (root / "demo" / "small.yaml").write_text(demo, encoding="utf-8")
    return root


def test_demo_language_through_the_api(db_url: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = project_with(tmp_path, SMALL)
    out = load(root, db_url, capsys)
    assert "14 records created, 0 already there, 4 workflow actions run" in out, out
    eng = create_engine_for(db_url)
    with eng.connect() as conn:
        wells = conn.execute(sa.text("SELECT uwi, name, status, site FROM wells_well "
                                     "ORDER BY uwi")).all()
        assert [tuple(w) for w in wells] == [("AR-T-0001", "P1", "completed", "pad_2"),
                                             ("AR-T-0003", "P3", "planned", "pad_2")]
        oil = conn.execute(sa.text("SELECT oil FROM production_daily_production p JOIN "
                                   "wells_well w ON w.id = p.well WHERE w.uwi = 'AR-T-0003' "
                                   "ORDER BY prod_date")).scalars().all()
        assert [Decimal(str(v)) for v in oil] == [Decimal(100), Decimal(99),
                                                  Decimal("98.02")]          # 100 e^(-0.01 t)
        npt = conn.execute(sa.text("SELECT count(*) FROM drilling_npt_event")).scalar_one()
        assert npt == 1                                                        # the _if row
        states = conn.execute(sa.text("SELECT status FROM drilling_drilling_report")
                              ).scalars().all()
        assert states == ["submitted", "submitted"]
        audited = conn.execute(sa.select(sa.func.count()).select_from(audit_table).where(
            audit_table.c.username == "campo-demo")).scalar_one()
        assert audited == 14 + 4                                # every create and action
    out = load(root, db_url, capsys)                                          # idempotent
    assert "0 records created, 14 already there, 0 workflow actions run" in out, out
    eng.dispose()


def test_demo_mistakes_are_messages(tmp_path: Path, sqlite_url: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = project_with(tmp_path, SMALL.replace("name: \"=code\"", "name: \"=cod\""))
    code = main(["demo", "load", "--project", str(root), "--database-url", sqlite_url])
    err = capsys.readouterr().err
    assert code == 1 and "steps[2] (wells.well): values.name: cod" in err, err[-500:]
    root = project_with(tmp_path / "b", SMALL.replace("oil_field: LA}", "oil_field: XX}"))
    other = f"sqlite:///{tmp_path / 'b.db'}"
    assert main(["demo", "load", "--project", str(root), "--database-url", other]) == 1
    assert "no wells.oil_field named 'XX'" in capsys.readouterr().err


def test_the_oilfield_demo(tmp_path: Path, sqlite_url: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """The repository's demo: counts, decline, downtime, workflows; its exports validate;
    a second load creates nothing."""
    root = project_with(tmp_path, None)
    out = load(root, sqlite_url, capsys)
    assert "3509 records created, 2 already there" in out, out
    eng = create_engine_for(sqlite_url)
    with eng.connect() as conn:
        def one(sql: str) -> object:
            return conn.execute(sa.text(sql)).scalar_one()
        assert one("SELECT count(*) FROM wells_oil_field") == 2
        assert one("SELECT count(*) FROM wells_pad") == 6
        assert one("SELECT count(*) FROM wells_well") == 40
        assert one("SELECT count(*) FROM reservoir_pvt_analysis WHERE status = 'validated'") == 3
        assert one("SELECT count(DISTINCT prod_date) FROM production_daily_production") == 90
        assert one("SELECT count(*) FROM production_daily_production WHERE hours_on < 24") > 50
        assert one("SELECT count(*) FROM production_daily_production WHERE hours_on < 24 "
                   "AND downtime_reason IS NULL") == 0
        first, last = (one(f"SELECT sum(oil) FROM production_daily_production "
                           f"WHERE prod_date = '{d}'") for d in ("2026-09-01", "2026-11-29"))
        assert float(last) < 0.9 * float(first)                                 # decline
        assert one("SELECT count(DISTINCT well) FROM drilling_drilling_report") == 2
        assert one("SELECT count(*) FROM drilling_drilling_report") == 60
        assert one("SELECT count(*) FROM drilling_drilling_report WHERE status = 'approved'") \
            == 56
        assert one("SELECT count(*) FROM interventions_intervention") == 5
        assert one("SELECT count(*) FROM wells_well WHERE status = 'shut_in'") == 2
    eng.dispose()
    # the exports of the demo data pass their schema checks (through the API, as admin)
    from support.oilfield import signed_in_export
    witsml, prodml = signed_in_export(root, sqlite_url, tmp_path)
    count, err = witsml_errors(witsml)
    assert (count, err) == (30, "")
    xmlschema.XMLSchema(SCHEMAS / "prodml_volumes.xsd").validate(prodml)
    out = load(root, sqlite_url, capsys)
    assert "0 records created, 3511 already there, 0 workflow actions run" in out, out
