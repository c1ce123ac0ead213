"""ERP rollups: daily records from tag history (integral of a rate over the production day,
run hours from a run-state tag), idempotent per day, through the API's write path; the
rule checks; ``campo history rollup`` with its progress bar."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from history_support import close

from engine.cli import main
from engine.db import create_engine_for
from engine.historian import Catalog, History, Sample, open_store
from engine.historian.catalog import policies_from
from engine.historian.erp import ErpRollups, load_rules, production_day
from engine.historian.samples import US
from engine.historian.spool import Spool
from engine.historian.writer import Historian
from engine.settings import Settings
from engine.wiring.history_erp import ApiRecordWriter, internal_app
from engine.wiring.startup import prepare_database
from metamodel import DefinitionError, load
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration

MODULE = """\
module: prod
entities:
  asset:
    fields:
      code: {type: string, max_length: 10, unique: true}
  well_day:
    fields:
      well: {type: link, to: asset, required: true}
      day: {type: date, required: true}
      volume: {type: decimal, precision: 12, scale: 2}
      hours: {type: decimal, precision: 5, scale: 2}
      pip: {type: float}
      source: {type: string, max_length: 16}
      note: {type: string, max_length: 40, default: none}
    unique_together: [[well, day]]
history_rollups:
  daily:
    entity: well_day
    template: well
    link: well
    date: day
    set: {source: historian}
    values:
      volume: {integral: rate, per: d}
      hours: {hours_on: running}
      pip: {twa: pip}
"""
TAGS = {
    "tags/scan_classes.yaml": "scan_classes: {fast: {period: 1s}}\n",
    "tags/templates/well.yaml": """\
template: well
scan_class: fast
tags:
  rate: {address: "hr:40001", type: float32, unit: bbl/d}
  running: {address: "co:00001", type: bool}
  pip: {address: "hr:40003", type: float32, unit: psi}
""",
}
SITE = """\
site: pad
history: {day_start_hour: 6, timezone: %s}
devices: {plc: {type: modbus_tcp, host: 127.0.0.1, port: 1}}
instances:
  w1: {template: well, device: plc, unit_id: 1, bind: {entity: prod.asset, key: code, value: W1}}
  w2: {template: well, device: plc, unit_id: 2, bind: {entity: prod.asset, key: code, value: W2}}
  w3: {template: well, device: plc, unit_id: 3, bind: {entity: prod.asset, key: code, value: W3}}
"""
DAY = dt.date.today() - dt.timedelta(days=3)


def _project(project: Any, zone: str = "America/Argentina/Buenos_Aires",
             module: str = MODULE) -> Path:
    return project({"modules/prod.yaml": module, **TAGS, "tags/sites/pad.yaml": SITE % zone})


def _feed(root: Path, url: str, tmp: Path, seed: int) -> dict[str, list[tuple[int, Any]]]:
    """Random samples over three days for w1 and w2, stored through the historian."""
    tags = load_tags(root)
    engine = create_engine_for(url)
    hist = Historian(lambda: open_store(engine), Spool(tmp / "spool", 1 << 26),
                     policies_from(tags), flush_seconds=0.05)
    hist.start()
    rng = random.Random(seed)
    start, _ = production_day(tags, "pad", DAY - dt.timedelta(days=1))
    _, end = production_day(tags, "pad", DAY + dt.timedelta(days=1))
    series: dict[str, list[tuple[int, Any]]] = {}
    for well in ("w1", "w2"):
        for name, gap in (("rate", 600), ("running", 5400), ("pip", 900)):
            path = f"pad.{well}.{name}"
            t, v, out = start + rng.randrange(gap * US), 1000.0, []
            while t < end:
                v = rng.random() < 0.6 if name == "running" else max(0.0, v + rng.gauss(0, 40))
                out.append((t, v))
                t += rng.randrange(1, 2 * gap) * US
            series[path] = out
            hist.publish([Sample(path, dt.datetime.fromtimestamp(t / US, dt.UTC), v, 2)
                          for t, v in out])
    assert hist.wait_stored(60)
    hist.stop()
    engine.dispose()
    return series


def _integral(samples: list[tuple[int, Any]], start: int, end: int) -> tuple[float, float]:
    """(value x seconds, seconds covered) of the held value over [start, end)."""
    area = cov = 0.0
    for i, (t, v) in enumerate(samples):
        nxt = samples[i + 1][0] if i + 1 < len(samples) else end
        lo, hi = max(t, start), min(nxt, end)
        if hi > lo:
            area += float(v) * (hi - lo) / US
            cov += (hi - lo) / US
    return area, cov


def _runner(root: Path, url: str) -> tuple[ErpRollups, Any]:
    model = load(root)
    tags = load_tags(root)
    engine = create_engine_for(url)
    prepare_database(engine, model, root)
    app = internal_app(model, engine, Settings(project=root))
    client = app.test_client()
    for code in ("W1", "W2"):
        assert client.post("/api/prod/asset", json={"code": code}).status_code == 201
    store = open_store(engine)
    catalog = Catalog(store)
    catalog.load()
    return ErpRollups(load_rules(root, model, tags), tags, History(store, catalog),
                      ApiRecordWriter(app)), engine


@pytest.mark.parametrize("zone", ["America/Argentina/Buenos_Aires", "Asia/Kolkata"])
def test_daily_records_match_brute_force_and_rerun_replaces(project: Any, tmp_path: Path,
                                                             db_url: str, zone: str) -> None:
    root = _project(project, zone)
    series = _feed(root, db_url, tmp_path, seed=len(zone))
    rollups, engine = _runner(root, db_url)
    start, end = production_day(rollups.tags, "pad", DAY)
    assert (end - start) == 86400 * US
    assert (start % (3600 * US) == 0) == (zone != "Asia/Kolkata")  # 06:00 IST is xx:30 UTC
    outcomes = rollups.run_days(DAY, DAY)
    assert {(o.instance, o.action) for o in outcomes} == {
        ("pad.w1", "created"), ("pad.w2", "created"), ("pad.w3", "skipped")}
    assert next(o for o in outcomes if o.instance == "pad.w3").reason == \
        "no prod.asset[code=W3] record"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT a.code, d.volume, d.hours, d.pip, d.source, d.note, d.created_by, d.day "
            "FROM prod_well_day d JOIN prod_asset a ON a.id = d.well ORDER BY a.code")).all()
        audited = conn.execute(sa.text(
            "SELECT count(*) FROM campo_audit WHERE entity = 'prod.well_day' "
            "AND username = 'campo.history'")).scalar()
    assert len(rows) == 2 and audited == 2
    for code, volume, hours, pip, source, note, by, day in rows:
        well = f"pad.w{code[1]}"
        area, _ = _integral(series[f"{well}.rate"], start, end)
        assert float(volume) == pytest.approx(round(area / 86400, 2), abs=0.011)
        on, _ = _integral(series[f"{well}.running"], start, end)
        assert float(hours) == pytest.approx(round(on / 3600, 2), abs=0.011)
        p_area, p_cov = _integral(series[f"{well}.pip"], start, end)
        assert close(pip, p_area / p_cov, 1e-9)
        assert (source, note, by, str(day)) == ("historian", "none", "campo.history",
                                                 DAY.isoformat())
    # a second run of the same day replaces the records: same ids, no new rows
    again = rollups.run_days(DAY, DAY)
    assert sorted(o.record_id for o in again if o.record_id) == \
        sorted(o.record_id for o in outcomes if o.record_id)
    assert {o.action for o in again if o.record_id} == {"updated"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM prod_well_day")).scalar() == 2
        runs = conn.execute(sa.text("SELECT count(*) FROM campo_history_rollup_run")).scalar()
    assert runs == 2
    # days before the history: nothing written
    empty = rollups.run_days(DAY - dt.timedelta(days=9), DAY - dt.timedelta(days=9))
    assert {o.action for o in empty} == {"skipped"}
    engine.dispose()


def test_schedule_finds_the_closed_days(project: Any, tmp_path: Path) -> None:
    root = _project(project)
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    _feed(root, url, tmp_path, seed=3)
    rollups, engine = _runner(root, url)
    now = dt.datetime.combine(DAY + dt.timedelta(days=2), dt.time(8, 59), dt.UTC)  # 05:59 local
    due = {d for _r, d in rollups.due(now)}
    assert DAY in due and DAY + dt.timedelta(days=1) not in due  # its day has not closed yet
    rollups.run_days(DAY, DAY)
    assert DAY not in {d for _r, d in rollups.due(now)}
    later = now + dt.timedelta(minutes=2)  # 06:01 local: the day after closes
    assert DAY + dt.timedelta(days=1) in {d for _r, d in rollups.due(later)}
    engine.dispose()


def test_rules_are_checked(project: Any) -> None:
    bad = MODULE.replace("{integral: rate, per: d}", "{integral: rat, per: d}").replace(
        "link: well\n", "link: day\n").replace("template: well\n", "template: well\n")
    root = _project(project, module=bad)
    with pytest.raises(DefinitionError) as err:
        load_rules(root, load(root), load_tags(root))
    text = err.value.format()
    assert "modules/prod.yaml:20:11: history_rollups.daily.link: 'day' is not a link field " \
           "of prod.well_day" in text
    assert "modules/prod.yaml:24:26: history_rollups.daily.values.volume.integral: template " \
           "'well' has no tag 'rat'" in text and "did you mean 'rate'" in text
    shape = MODULE.replace("{hours_on: running}", "{hours_on: running, twa: running}")
    with pytest.raises(DefinitionError) as err:
        load(_project(project, module=shape))
    assert "history_rollups.daily.values.hours: give exactly one of" in err.value.format()


def test_cli_rollup_with_progress(project: Any, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(project)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    _feed(root, url, tmp_path, seed=9)
    _runner(root, url)[1].dispose()  # the assets W1, W2
    argv = ["history", "rollup", "--project", str(root), "--database-url", url,
            "--from", (DAY - dt.timedelta(days=1)).isoformat(), "--to", DAY.isoformat()]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "4 created, 2 skipped"
    assert "[" + "#" * 30 + "] 2/2 day(s)" in err
    assert main(argv) == 0
    assert capsys.readouterr()[0].strip() == "2 skipped, 4 updated"
    assert main(argv[:-4] + ["--from", "2024-01-02", "--to", "2024-01-01"]) == 1
    assert "is before --from" in capsys.readouterr()[1]


def test_scheduler_writes_due_days_once(project: Any, tmp_path: Path, pg_url: str) -> None:
    """The daily scheduler writes the closed days; while another web process holds the
    rollups' lock it writes nothing (several workers never write a day twice)."""
    from engine.wiring.history_erp import RollupScheduler

    root = _project(project)
    _feed(root, pg_url, tmp_path, seed=5)
    rollups, engine = _runner(root, pg_url)
    scheduler = RollupScheduler(rollups)
    now = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(10), dt.UTC)  # 07:00 local
    other = create_engine_for(pg_url)
    with other.connect() as conn:
        assert conn.exec_driver_sql("SELECT pg_try_advisory_lock(7211002)").scalar()
        assert scheduler.tick(now) == []
        conn.exec_driver_sql("SELECT pg_advisory_unlock(7211002)")
    done = scheduler.tick(now)
    written = [(o.instance, o.day) for o in done if o.record_id]
    assert {o.action for o in done if o.record_id} == {"created"}
    assert sorted(written) == sorted({(i, d) for i in ("pad.w1", "pad.w2")
                                      for d in (DAY - dt.timedelta(days=1), DAY)})
    assert [o for o in scheduler.tick(now) if o.record_id] == []  # nothing due any more
    other.dispose()
    engine.dispose()


def test_the_served_app_writes_as_the_engine(project: Any, tmp_path: Path) -> None:
    """In ``campo serve`` the rollups write through the served, authenticated app (no
    second copy of the API) as the engine: every permission (admin may only read the daily
    records here), never throttled, audited as ``campo.history`` without a user id. No HTTP
    client can claim the engine's principal."""
    from support.auth import FAST_HASHER, build_settings

    from engine.api import create_app
    from engine.auth.hooks import api_hooks, auth_init_hook
    from engine.wiring.history_erp import make_rollups

    module = MODULE.replace("    unique_together: [[well, day]]\n",
                            "    unique_together: [[well, day]]\n"
                            "    permissions: {admin: [read]}\n")
    root = _project(project, module=module)
    url = f"sqlite:///{tmp_path / 'served.db'}"
    _feed(root, url, tmp_path, seed=11)
    model, tags, engine = load(root), load_tags(root), create_engine_for(url)
    prepare_database(engine, model, root)
    settings = build_settings(tmp_path, project=root, api_rate_limit="2 per minute")
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model, hasher=FAST_HASHER)])
    c = app.test_client()
    for headers in ({}, {"campo.engine_principal": "1"}, {"Campo-Engine-Principal": "1"}):
        assert c.get("/api/prod/well_day", headers=headers).status_code == 401
    rollups = make_rollups(settings, model, tags, engine, app)
    assert rollups is not None
    writer = rollups.writer
    assert isinstance(writer, ApiRecordWriter) and writer.app is app  # no second app
    for code in ("W1", "W2"):
        writer.create("prod.asset", {"code": code})
    outcomes = rollups.run_days(DAY - dt.timedelta(days=1), DAY)  # far over 2 per minute
    assert sorted((o.instance, o.action) for o in outcomes if o.record_id) == [
        ("pad.w1", "created"), ("pad.w1", "created"), ("pad.w2", "created"),
        ("pad.w2", "created")]
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT entity, user_id, username FROM campo_audit "
            "WHERE entity IN ('prod.asset', 'prod.well_day')")).all()
        by = {r[0] for r in conn.execute(sa.text("SELECT created_by FROM prod_well_day"))}
    assert len(rows) == 6 and {(u, n) for _e, u, n in rows} == {(None, "campo.history")}
    assert by == {"campo.history"}
    engine.dispose()
