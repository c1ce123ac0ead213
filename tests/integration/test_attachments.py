"""``type: attachment`` fields through the real API with real logins, on SQLite and
PostgreSQL: upload (``POST …/<id>/files/<field>``) through the write gate, download with the
read rules of ``GET …/<id>``, limits on size and type judged from the content, files stored
once per content under ``<data_dir>/files``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.auth import FAST_HASHER, PASSWORD, bearer, build_settings

from engine.api import create_app
from engine.auth.hooks import api_hooks, auth_init_hook
from engine.auth.users import create_user
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project

pytestmark = pytest.mark.integration

YAML = """
module: pads
entities:
  well:
    scope: self.site in user.sites
    fields:
      name: {type: string, max_length: 40, required: true}
      site: {type: string, max_length: 20}
      report: {type: attachment, max_size: 20KB, accept: [application/pdf, image/*, .csv]}
      anything: {type: attachment}
      secret_doc: {type: attachment, hidden_for: [viewer]}
      sealed: {type: attachment, readonly_for: [operator]}
    permissions:
      operator: [read, update]
      viewer: [read]
"""
PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 40 + b"%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
CSV = "pozo,caudal\nPZ-12,12.5\nPZ-13,ñandú\n".encode()
EXE = b"MZ\x90\x00" + bytes(500)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path / "project"
    (root / "modules").mkdir(parents=True)
    (root / "modules" / "pads.yaml").write_text(YAML, encoding="utf-8")
    model = load_project(root)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    settings = build_settings(tmp_path, max_body_bytes=1 << 20, max_upload_bytes=50_000)
    app = create_app(model, engine, settings, **api_hooks(),
                     on_init=[auth_init_hook(engine, settings, model, hasher=FAST_HASHER)])
    state = app.extensions["campo_auth"]
    users = (("ada", "admin", []), ("olga", "operator", ["sim_pad"]),
             ("otto", "operator", ["pad_b"]), ("vic", "viewer", ["sim_pad"]))
    with engine.begin() as conn:
        for name, role, sites in users:
            create_user(conn, model, username=name, now=state.now(), roles=[role],
                        password_hash=state.passwords.hash(PASSWORD), sites=sites)
    c = app.test_client()
    tokens = {}
    for name, _, _ in users:
        r = c.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.json
        tokens[name] = bearer(r.json["access_token"])
    wells = {}
    for site in ("sim_pad", "pad_b"):
        r = c.post("/api/pads/well", headers=tokens["ada"], json={"name": site, "site": site})
        assert r.status_code == 201, r.json
        wells[site] = r.json
    yield {"c": c, "t": tokens, "wells": wells, "files": tmp_path / "data" / "files",
           "engine": engine}
    engine.dispose()


def _up(c: Any, who: dict[str, str], well: int, field: str, body: bytes, name: str,
        **query: Any) -> Any:
    return c.post(f"/api/pads/well/{well}/files/{field}", headers=who, data=body,
                  query_string={"name": name, **query},
                  content_type="application/octet-stream")


def _ok_download(c: Any, who: dict[str, str], well: int, field: str) -> None:
    r = c.get(f"/api/pads/well/{well}/files/{field}", headers=who)
    assert r.status_code == 200 and r.data
    r.close()


def _stored(files: Path) -> list[Path]:
    return sorted(p for p in files.rglob("*") if p.is_file())


def test_upload_download_round_trip_with_checksum_and_headers(env: dict[str, Any]) -> None:
    c, t, a = env["c"], env["t"], env["wells"]["sim_pad"]
    r = _up(c, t["olga"], a["id"], "report", PDF, "../../etc/Informe de pozo.pdf",
            version=a["version"])
    assert r.status_code == 200, r.json
    sha = hashlib.sha256(PDF).hexdigest()
    assert r.json["report"] == {"name": "Informe de pozo.pdf", "size": len(PDF),
                                "type": "application/pdf", "sha256": sha,
                                "key": f"{sha[:2]}/{sha}"}
    assert r.json["version"] == a["version"] + 1
    assert _stored(env["files"]) == [env["files"] / sha[:2] / sha]
    assert (env["files"] / sha[:2] / sha).read_bytes() == PDF
    # the record as read says the same
    got = c.get(f"/api/pads/well/{a['id']}", headers=t["vic"]).json
    assert got["report"] == r.json["report"]
    # a viewer downloads it: bytes, checksum and headers
    d = c.get(f"/api/pads/well/{a['id']}/files/report", headers=t["vic"])
    assert d.status_code == 200
    assert hashlib.sha256(d.data).hexdigest() == sha and d.data == PDF
    assert d.headers["Content-Type"] == "application/pdf"
    assert d.headers["Content-Length"] == str(len(PDF))
    assert d.headers["X-Content-Type-Options"] == "nosniff"
    # the download's own sandboxing policy, not replaced by the API's default one
    assert d.headers.getlist("Content-Security-Policy") == ["default-src 'none'; sandbox"]
    assert d.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert d.headers["Content-Disposition"].startswith("attachment;")
    assert "Informe" in d.headers["Content-Disposition"]
    assert d.headers["ETag"] == f'"{sha}"'
    again = c.get(f"/api/pads/well/{a['id']}/files/report",
                  headers={**t["vic"], "If-None-Match": f'"{sha}"'})
    assert again.status_code == 304 and again.data == b""
    d.close()
    again.close()
    # the upload is an audited update by olga
    trail = c.get(f"/api/audit?record={a['id']}&entity=pads.well", headers=t["ada"]).json
    uploads = [i for i in trail["items"] if i["action"] == "update"]
    assert len(uploads) == 1 and uploads[0]["username"] == "olga", trail
    assert uploads[0]["after"]["report"]["sha256"] == sha


def test_same_content_is_stored_once(env: dict[str, Any]) -> None:
    c, t, w = env["c"], env["t"], env["wells"]
    for well, field in ((w["sim_pad"], "report"), (w["pad_b"], "report"),
                        (w["sim_pad"], "anything")):
        r = _up(c, t["ada"], well["id"], field, PDF, f"{field}.pdf")
        assert r.status_code == 200, r.json
    assert len(_stored(env["files"])) == 1
    assert _up(c, t["ada"], w["pad_b"]["id"], "anything", PNG, "x.png").status_code == 200
    assert len(_stored(env["files"])) == 2
    assert not list(env["files"].glob(".upload-*"))  # no temporary file left behind


def test_roles_scopes_and_field_rules(env: dict[str, Any]) -> None:
    c, t, w = env["c"], env["t"], env["wells"]
    a, b = w["sim_pad"]["id"], w["pad_b"]["id"]
    for well in (a, b):
        for field in ("report", "secret_doc", "sealed"):
            assert _up(c, t["ada"], well, field, PDF, "x.pdf").status_code == 200
    # a viewer reads but cannot upload
    _ok_download(c, t["vic"], a, "report")
    r = _up(c, t["vic"], a, "report", PNG, "p.png")
    assert r.status_code == 403 and r.json["message"]
    # an operator of another site: the record is not there for them
    for call in (lambda: c.get(f"/api/pads/well/{a}/files/report", headers=t["otto"]),
                 lambda: _up(c, t["otto"], a, "report", PNG, "p.png")):
        r = call()
        assert r.status_code == 404, r.json
    _ok_download(c, t["otto"], b, "report")
    # a hidden field is not in the record and not downloadable (nor uploadable)
    assert "secret_doc" not in c.get(f"/api/pads/well/{a}", headers=t["vic"]).json
    r = c.get(f"/api/pads/well/{a}/files/secret_doc", headers=t["vic"])
    assert r.status_code == 404 and "secret_doc" in r.json["message"]
    _ok_download(c, t["olga"], a, "secret_doc")
    # a read-only field cannot be replaced by an operator (403, audited), others can
    r = _up(c, t["olga"], a, "sealed", PNG, "p.png")
    assert r.status_code == 403 and "sealed" in r.json["message"]
    assert _up(c, t["olga"], a, "report", PNG, "p.png").status_code == 200
    denials = c.get("/api/audit?action=permission.denied", headers=t["ada"]).json["items"]
    assert any(i["username"] == "olga" and "sealed" in str(i) for i in denials), denials
    # nothing stored by the refused uploads beyond what the accepted ones stored
    assert len(_stored(env["files"])) == 2


def test_limits_refuse_by_size_and_content(env: dict[str, Any]) -> None:
    c, t, a = env["c"], env["t"], env["wells"]["sim_pad"]["id"]
    big = b"%PDF-1.4\n" + b"x" * (20 * 1024)
    r = _up(c, t["ada"], a, "report", big, "big.pdf")
    assert r.status_code == 413 and list(r.json["errors"]["json"]) == ["report"], r.json
    # the field without max_size takes the setting (50,000 bytes here)
    assert _up(c, t["ada"], a, "anything", big, "big.pdf").status_code == 200
    r = _up(c, t["ada"], a, "anything", b"%PDF-" + bytes(50_000), "huge.pdf")
    assert r.status_code == 413 and "anything" in r.json["errors"]["json"], r.json
    # the name does not decide the type: text named .pdf, a program named .csv or .png
    for body, name in ((b"just some text\n", "fake.pdf"), (EXE, "data.csv"),
                       (EXE, "photo.png"), (b"\x00\x01binary", "blob.csv")):
        r = _up(c, t["ada"], a, "report", body, name)
        assert r.status_code == 415, (name, r.json)
        assert list(r.json["errors"]["json"]) == ["report"]
    # content that agrees: an image under any name, a real CSV named .csv
    r = _up(c, t["ada"], a, "report", PNG, "scan.bin")
    assert r.status_code == 200 and r.json["report"]["type"] == "image/png"
    r = _up(c, t["ada"], a, "report", CSV, "caudales.csv")
    assert r.status_code == 200 and r.json["report"]["type"] == "text/csv"
    # an empty file, no name, an unknown parameter
    r = _up(c, t["ada"], a, "report", b"", "empty.pdf")
    assert r.status_code == 422 and "report" in r.json["errors"]["json"]
    r = c.post(f"/api/pads/well/{a}/files/report", headers=t["ada"], data=PDF)
    assert r.status_code == 400 and "name" in r.json["errors"]["query"]
    assert _up(c, t["ada"], a, "report", PDF, "a.pdf", sha="x").status_code == 400
    assert _up(c, t["ada"], 999_999, "report", PDF, "a.pdf").status_code == 404
    # the refused files left nothing on disk (the PNG, the CSV and 'big' were kept)
    assert len(_stored(env["files"])) == 3


def test_version_clear_and_json_writes(env: dict[str, Any]) -> None:
    c, t, w = env["c"], env["t"], env["wells"]["sim_pad"]
    a = w["id"]
    r = _up(c, t["ada"], a, "report", PDF, "a.pdf", version=w["version"] + 5)
    assert r.status_code == 409, r.json
    rec = _up(c, t["ada"], a, "report", PDF, "a.pdf", version=w["version"]).json
    # a PUT sending the value as served keeps it; a forged value is refused naming the field
    body = {k: rec[k] for k in ("name", "site", "report", "version")}
    r = c.put(f"/api/pads/well/{a}", headers=t["ada"], json=body)
    assert r.status_code == 200 and r.json["report"] == rec["report"], r.json
    forged = {**rec["report"], "sha256": "0" * 64, "key": "00/" + "0" * 64}
    r = c.patch(f"/api/pads/well/{a}", headers=t["ada"], json={"report": forged})
    assert r.status_code == 422 and list(r.json["errors"]["json"]) == ["report"], r.json
    r = c.patch(f"/api/pads/well/{a}", headers=t["ada"], json={"anything": rec["report"]})
    assert r.status_code == 422 and list(r.json["errors"]["json"]) == ["anything"], r.json
    r = c.post("/api/pads/well", headers=t["ada"], json={"name": "n", "site": "sim_pad",
                                                         "report": rec["report"]})
    assert r.status_code == 422 and list(r.json["errors"]["json"]) == ["report"], r.json
    r = c.patch(f"/api/pads/well/{a}", headers=t["ada"], json={"report": "a.pdf"})
    assert r.status_code == 422 and "report" in r.json["errors"]["json"], r.json
    # filters: only __isnull
    assert c.get("/api/pads/well?report__isnull=false", headers=t["ada"]).json["items"][0][
        "id"] == a
    r = c.get("/api/pads/well?report=a.pdf", headers=t["ada"])
    assert r.status_code == 400 and "report" in str(r.json["errors"])
    # clearing: PATCH null, then the download is a 404 naming the field
    r = c.patch(f"/api/pads/well/{a}", headers=t["ada"], json={"report": None})
    assert r.status_code == 200 and r.json["report"] is None
    r = c.get(f"/api/pads/well/{a}/files/report", headers=t["ada"])
    assert r.status_code == 404 and "report" in r.json["message"]
    assert c.get("/api/pads/well?report__isnull=true", headers=t["ada"]).json["items"][0][
        "id"] == a


def test_openapi_and_meta_describe_the_field(env: dict[str, Any]) -> None:
    c, t = env["c"], env["t"]
    spec = c.get("/api/openapi.json", headers=t["ada"]).json
    path = spec["paths"]["/api/pads/well/{record_id}/files/report"]
    assert set(path) >= {"get", "post"}
    assert "application/octet-stream" in path["post"]["requestBody"]["content"]
    assert {"413", "415"} <= set(path["post"]["responses"])
    assert "/api/pads/well/{record_id}/files/name" not in spec["paths"]
    meta = c.get("/api/meta", headers=t["ada"]).json
    well = next(e for m in meta["modules"] for e in m["entities"] if e["name"] == "well")
    fields = {f["name"]: f for f in well["fields"]}
    assert fields["report"]["attachment"] == {
        "accept": ["application/pdf", "image/*", ".csv"], "max_size": 20 * 1024}
    assert fields["anything"]["attachment"] == {"accept": None, "max_size": None}


def test_a_json_file_passes_the_units_layer_untouched(env: dict[str, Any]) -> None:
    """``X-Units`` (the desk sends it once a user picks a unit system) converts JSON bodies
    and answers of entity URLs; a file is bytes, neither its upload nor its download is
    rewritten, while the upload's answer (a record) still is."""
    c, t, a = env["c"], env["t"], env["wells"]["sim_pad"]["id"]
    body = '{"a":1,"ñ":"x"}'.encode()
    units = {**t["ada"], "X-Units": "metric"}
    r = c.post(f"/api/pads/well/{a}/files/anything", headers=units, data=body,
               query_string={"name": "data.json"}, content_type="application/json")
    assert r.status_code == 200, r.json
    assert r.json["anything"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert r.headers.get("X-Units") == "metric"
    d = c.get(f"/api/pads/well/{a}/files/anything", headers=units)
    assert d.status_code == 200 and d.data == body
    assert d.headers["Content-Type"].startswith("application/json")
    assert d.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    d.close()
