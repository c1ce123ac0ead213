"""The desk's API (``/api/desk``) on SQLite and PostgreSQL: the public shell, global
search, saved views, server-evaluated form rules, CSV import with a dry run, the record
timeline and comments, one's own sessions, the effective definition and layouts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.desk import Desk, desk_app

pytestmark = pytest.mark.integration


@pytest.fixture
def make_desk(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Desk]]:
    made: list[Desk] = []

    def make(**kw: Any) -> Desk:
        made.append(desk_app(db_url, tmp_path, **kw))
        return made[-1]

    yield make
    for d in made:
        d.close()


@pytest.fixture
def desk(make_desk: Callable[..., Desk]) -> Desk:
    return make_desk()


def _pads(desk: Desk, h: dict[str, str], *codes: str) -> dict[str, int]:
    out = {}
    for code in codes:
        r = desk.client.post("/api/field/pad", json={"code": code, "site": f"s-{code}"}, headers=h)
        assert r.status_code == 201, r.json
        out[code] = r.json["id"]
    return out


def test_shell_is_public_and_compressed_but_data_is_not(desk: Desk) -> None:
    c = desk.client
    r = c.get("/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Cache-Control"] == "no-cache"
    r = c.get("/ui/js/app.js")
    assert r.status_code == 200 and r.mimetype == "application/javascript"
    etag = r.headers["ETag"]
    assert c.get("/ui/js/app.js", headers={"If-None-Match": etag}).status_code == 304
    assert c.get("/ui/vendor/preact/LICENSE").status_code == 200
    assert c.get("/sw.js").headers["Service-Worker-Allowed"] == "/"
    assert c.get("/ui/../engine/cli.py").status_code == 404
    assert c.get("/ui/%2e%2e/pyproject.toml").status_code == 404
    assert c.get("/api/desk/config").status_code == 401
    assert c.get("/api/desk/search?q=x").status_code == 401


def test_search_is_typo_tolerant_scoped_and_permission_checked(desk: Desk) -> None:
    ada = desk.token("ada")
    pads = _pads(desk, ada, "PZ-12", "PZ-120", "QX-1")
    r = desk.client.post("/api/field/well", json={"name": "Pozo Norte 7", "pad": pads["QX-1"]},
                         headers=ada)
    assert r.status_code == 201
    found = desk.client.get("/api/desk/search?q=pz12", headers=ada).json["items"]
    assert [i["title"] for i in found][:2] == ["PZ-12", "PZ-120"]      # exact first
    assert {i["entity"] for i in found} == {"field.pad"}
    found = desk.client.get("/api/desk/search?q=norte%207", headers=desk.token("vic")).json
    assert [(i["entity"], i["title"]) for i in found["items"]] == [("field.well", "Pozo Norte 7")]
    assert desk.client.get("/api/desk/search?q=", headers=ada).status_code == 400


def test_saved_views_belong_to_their_user(desk: Desk) -> None:
    sam, otto = desk.token("sam"), desk.token("otto")
    body = {"entity": "field.well", "name": "Injectors", "config": {"filters": [
        {"field": "kind", "type": "enum", "values": ["injector"]}], "sort": "-name"}}
    r = desk.client.post("/api/desk/views", json=body, headers=sam)
    assert r.status_code == 201 and r.json["config"]["sort"] == "-name"
    body["config"]["sort"] = "name"
    r2 = desk.client.post("/api/desk/views", json=body, headers=sam)      # same name: replaced
    assert r2.json["id"] == r.json["id"] and r2.json["config"]["sort"] == "name"
    assert desk.client.get("/api/desk/views?entity=field.well", headers=otto).json["items"] == []
    mine = desk.client.get("/api/desk/views?entity=field.well", headers=sam).json["items"]
    assert [v["name"] for v in mine] == ["Injectors"]
    assert desk.client.delete(f"/api/desk/views/{r.json['id']}", headers=otto).status_code == 404
    assert desk.client.delete(f"/api/desk/views/{r.json['id']}", headers=sam).status_code == 204
    bad = desk.client.post("/api/desk/views", json={"entity": "field.nope", "name": "x",
                                                     "config": {}}, headers=sam)
    assert bad.status_code == 404
    bad = desk.client.post("/api/desk/views", json={"entity": "field.well", "name": "",
                                                     "config": []}, headers=sam)
    assert bad.status_code == 422 and set(bad.json["errors"]["json"]) == {"name", "config"}


def test_evaluate_gives_the_servers_answers_for_a_draft(desk: Desk) -> None:
    ada = desk.token("ada")
    pads = _pads(desk, ada, "P-1")
    url = "/api/desk/evaluate/field/well"
    draft: dict[str, Any] = {"name": "W", "pad": pads["P-1"], "kind": "injector",
                             "tests": [{"day": "2024-01-01", "oil": 10.5},
                                       {"day": "2024-01-02", "oil": 2}]}
    r = desk.client.post(url, json={"record": draft}, headers=ada)
    assert r.status_code == 200, r.json
    out = r.json
    assert out["values"]["total_oil"] == 12.5
    assert out["values"]["pad_site"] == "s-P-1"                 # fetched through the link
    assert out["values"]["status"] == "planned"
    assert out["visible"]["injection_rate"] is True and out["required"]["injection_rate"] is True
    draft["kind"] = "oil"
    draft["depth_m"] = "12."                                    # mid-typing: left out, no error
    out = desk.client.post(url, json={"record": draft}, headers=ada).json
    assert out["visible"]["injection_rate"] is False
    # the server agrees: an injector without a rate is refused at that field
    r = desk.client.post("/api/field/well", json={**draft, "kind": "injector", "depth_m": "5"},
                         headers=ada)
    assert r.status_code == 422 and "injection_rate" in r.json["errors"]["json"]
    r = desk.client.post("/api/field/well", json={**draft, "depth_m": "5"}, headers=ada)
    assert r.status_code == 201 and r.json["total_oil"] == 12.5
    stored = desk.client.post(url, json={"record": {"tests": []}, "id": r.json["id"]},
                              headers=ada).json
    assert stored["values"]["total_oil"] == 0
    assert desk.client.post(url, json={"record": {}, "id": 999}, headers=ada).status_code == 404


def test_csv_import_reports_every_row_then_imports_all_or_nothing(desk: Desk) -> None:
    sam = desk.token("sam")
    pads = _pads(desk, sam, "PZ-12")
    csv_bad = ("name,Pad,kind,depth_m,id\n"
               "W-1,PZ-12,oil,100,77\n"
               "W-2,PZ-99,oil,abc,\n"          # unknown pad, bad decimal
               "W-1,PZ-12,gas,5,\n"            # duplicate name (within the file)
               "W-4,PZ-12,injector,5,\n")      # required_if rule
    url = "/api/desk/import/field/well"
    r = desk.client.post(url + "?dry_run=true", data=csv_bad.encode(), headers={
        **sam, "Content-Type": "text/csv", "Accept-Language": "es"})
    assert r.status_code == 200, r.json
    rep = r.json
    assert rep["dry_run"] and not rep["ok"] and rep["valid"] == 1 and rep["created"] == 0
    by_line = {e["line"]: e["errors"] for e in rep["errors"]}
    assert set(by_line) == {3, 4, 5}
    assert "pad" in by_line[3] and "no hay field.pad llamado 'PZ-99'" in by_line[3]["pad"][0]
    assert "name" in by_line[4]
    assert "injection_rate" in by_line[5]
    assert rep["ignored_columns"] == ["se ignora la columna 'id'"]
    assert desk.client.get("/api/field/well", headers=sam).json["items"] == []   # dry run
    r = desk.client.post(url, data=csv_bad.encode(), headers={**sam, "Content-Type": "text/csv"})
    assert r.status_code == 422 and r.json["created"] == 0
    assert desk.client.get("/api/field/well", headers=sam).json["items"] == []   # all or nothing
    good = f"name,pad,kind,depth_m\nW-1,PZ-12,oil,100\nW-2,{pads['PZ-12']},gas,\n"
    r = desk.client.post(url, data=good.encode(), headers={**sam, "Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json["created"] == 2, r.json
    names = sorted(w["name"] for w in desk.client.get("/api/field/well", headers=sam).json["items"])
    assert names == ["W-1", "W-2"]
    audit = desk.client.get("/api/audit?entity=field.well&action=create", headers=sam).json
    assert audit["total"] == 2                                   # written like any create
    viewer = desk.client.post(url + "?dry_run=true", data=good.encode(),
                              headers={**desk.token("vic"), "Content-Type": "text/csv"})
    assert viewer.status_code == 403
    bad_header = desk.client.post(url, data=b"name,colour\nx,red\n",
                                  headers={**sam, "Content-Type": "text/csv"})
    assert bad_header.status_code == 422 and "colour" in bad_header.json["message"]


def test_timeline_merges_audit_transitions_and_comments(desk: Desk) -> None:
    sam = desk.token("sam")
    pads = _pads(desk, sam, "P-1")
    r = desk.client.post("/api/field/well", json={"name": "W", "pad": pads["P-1"],
                                                  "secret_cost": "5.00"}, headers=sam)
    wid = r.json["id"]
    desk.client.patch(f"/api/field/well/{wid}", json={"depth_m": "10", "secret_cost": "7.00"},
                      headers=sam)
    assert desk.client.post(f"/api/field/well/{wid}/actions/start", headers=sam).status_code == 200
    r = desk.client.post(f"/api/desk/comments/field/well/{wid}", json={"body": "  looks good "},
                         headers=desk.token("vic"))
    assert r.status_code == 201 and r.json["body"] == "looks good"
    items = desk.client.get(f"/api/desk/timeline/field/well/{wid}", headers=sam).json["items"]
    kinds = [i["kind"] for i in items]
    assert set(kinds) == {"audit", "transition", "comment"} and len(items) == 5
    update = next(i for i in items if i["kind"] == "audit" and i["action"] == "update")
    assert update["after"]["depth_m"] == "10.00" and update["user"] == "sam"
    assert "secret_cost" in update["after"]
    seen = desk.client.get(f"/api/desk/timeline/field/well/{wid}",
                           headers=desk.token("vic")).json["items"]
    assert all("secret_cost" not in (i.get("after") or {}) for i in seen)   # hidden from viewer
    assert desk.client.get("/api/desk/timeline/field/well/999", headers=sam).status_code == 404
    assert desk.client.post(f"/api/desk/comments/field/well/{wid}", json={"body": ""},
                            headers=sam).status_code == 422


def test_my_sessions_and_definition_and_layouts(desk: Desk) -> None:
    otto = desk.token("otto")
    other = desk.token("otto")
    mine = desk.client.get("/api/desk/account/sessions", headers=otto).json["items"]
    assert len(mine) == 2 and sum(s["current"] for s in mine) == 1
    victim = next(s for s in mine if not s["current"])
    ada = desk.token("ada")
    admin_session = desk.client.get("/api/desk/account/sessions", headers=ada).json["items"][0]
    assert desk.client.delete(f"/api/desk/account/sessions/{admin_session['id']}",
                              headers=otto).status_code == 404        # not his
    assert desk.client.delete(f"/api/desk/account/sessions/{victim['id']}",
                              headers=otto).status_code == 204
    assert desk.client.get("/api/desk/config", headers=other).status_code == 401
    d = desk.client.get("/api/desk/definition/field/well", headers=desk.token("vic")).json
    assert d["entity"] == "field.well" and "modules/field.yaml:" in d["sources"]["fields.name"]
    assert "secret_cost" not in d["definition"]["fields"] and "secret_cost" not in d["text"]
    assert desk.client.get("/api/desk/layouts", headers=otto).json == {"forms": {}, "lists": {}}


LAYOUT = """
forms:
  field.well:
    tabs:
      - label: {es: General, en: General}
        sections:
          - {label: Pozo, columns: 3, fields: [name, pad, kind]}
      - label: Producción
        sections:
          - {collapsible: true, fields: [tests, secret_cost]}
lists:
  field.well:
    columns: [name, kind, secret_cost]
    sort: -name
    group_by: [kind]
"""


def test_layouts_are_served_without_hidden_fields(make_desk: Callable[..., Desk]) -> None:
    desk = make_desk(files={"screens/layouts/field.yaml": LAYOUT})
    out = desk.client.get("/api/desk/layouts", headers=desk.token("vic")).json
    tabs = out["forms"]["field.well"]["tabs"]
    assert tabs[0]["label"] == {"es": "General", "en": "General"}
    assert tabs[0]["sections"][0]["columns"] == 3
    assert tabs[1]["sections"][0]["fields"] == ["tests"]          # secret_cost hidden
    assert out["lists"]["field.well"] == {"columns": ["name", "kind"], "sort": "-name",
                                          "group_by": ["kind"]}


ZONED_YAML = """
module: field
entities:
  log:
    naming: {field: number, series: "L-{YYYY}{MM}{DD}-{###}"}
    fields:
      number: {type: string, max_length: 30}
      day: {type: date, default: "=today()"}
      note: {type: string, max_length: 20}
"""


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_site_time_zone_gives_today_and_series_dates(make_desk: Callable[..., Desk],
                                                     zone: str) -> None:
    import datetime as dt
    import zoneinfo

    desk = make_desk(yaml=ZONED_YAML, timezone=zone)
    ada = desk.token("ada")
    # UTC+14 and UTC-11: at any hour one of the two dates differs from the UTC date
    local = dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
    r = desk.client.post("/api/field/log", json={"note": "x"}, headers=ada)
    assert r.status_code == 201, r.json
    assert r.json["day"] == local.isoformat()
    assert r.json["number"] == f"L-{local:%Y%m%d}-001"
    assert desk.client.get("/api/desk/config", headers=ada).json["timezone"] == zone


PLAIN_YAML = """
module: field
entities:
  visit:
    fields:
      note: {type: string, max_length: 20}
      day: {type: date, default: today}
      checks: {type: table, of: visit_check}
  visit_check:
    child: true
    fields:
      what: {type: string, max_length: 20}
      done_on: {type: date, default: today}
"""


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_default_today_is_the_site_date_on_an_entity_without_rules(
        make_desk: Callable[..., Desk], zone: str) -> None:
    import datetime as dt
    import zoneinfo

    from engine.api import api_context

    desk = make_desk(yaml=PLAIN_YAML, timezone=zone)
    # the plain write path (no model rules), where codecs' default_value fills `today`
    assert api_context(desk.app).resources["field.visit"].behaviour is None
    ada = desk.token("ada")
    local = dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
    r = desk.client.post("/api/field/visit", json={"note": "x", "checks": [{"what": "pump"}]},
                         headers=ada)
    assert r.status_code == 201, r.json
    assert r.json["day"] == local.isoformat()
    assert r.json["checks"][0]["done_on"] == local.isoformat()
    # bulk create takes the same path
    r = desk.client.post("/api/field/visit/bulk", json=[{"note": "y"}], headers=ada)
    assert r.status_code in (200, 201), r.json
    rid = r.json["items"][0]["id"] if "items" in r.json else r.json[0]["id"]
    assert desk.client.get(f"/api/field/visit/{rid}", headers=ada).json["day"] == \
        local.isoformat()
