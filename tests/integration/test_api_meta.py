"""/api/meta, /api/health, /api/openapi.json and the offline /api/docs page."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.api import PLANT_YAML, ApiEnv, assert_error, make_env

from engine.api import create_app
from engine.db import create_engine_for
from engine.mqtt import probe
from engine.settings import Settings
from metamodel import DefinitionError, load

pytestmark = pytest.mark.integration

@pytest.fixture
def env(project, db_url: str) -> Iterator[ApiEnv]:  # type: ignore[no-untyped-def]
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), db_url)
    yield e
    e.engine.dispose()


def test_meta_lists_modules_entities_and_fields(env: ApiEnv) -> None:
    body = env.client.get("/api/meta").json
    plant = next(m for m in body["modules"] if m["name"] == "plant")
    assert plant["label"] == {"es": "Planta", "en": "Plant"}
    names = [e["name"] for e in plant["entities"]]
    assert names == ["site", "equipment", "inspection"]          # child entities are inline
    eq = next(e for e in plant["entities"] if e["name"] == "equipment")
    assert eq["url"] == "/api/plant/equipment" and eq["title"] == "{tag} {name}"
    fields = {f["name"]: f for f in eq["fields"]}
    assert fields["tag"]["label"] == {"es": "Etiqueta", "en": "Tag"}
    assert fields["tag"]["help"] == {"es": "Código único", "en": "Unique code"}
    assert fields["tag"]["required"] and fields["tag"]["unique"]
    assert fields["tag"]["max_length"] == 16 and fields["tag"]["pattern"] == "^[A-Z0-9-]+$"
    assert fields["name"]["label"] == {"es": "Name", "en": "Name"}  # default from the name
    assert fields["depth_m"]["unit"] == "m" and fields["depth_m"]["precision"] == 7
    assert fields["depth_m"]["scale"] == 2 and fields["depth_m"]["max"] == 12000
    assert fields["kind"]["values"] == [
        {"value": "pump", "label": {"es": "Bomba", "en": "Pump"}},
        {"value": "tank", "label": {"es": "Tanque", "en": "Tank"}},
        {"value": "valve", "label": {"es": "Valve", "en": "Valve"}}]
    assert fields["kind"]["default"] == "pump"
    assert fields["site"]["link"] == {"entity": "plant.site", "url": "/api/plant/site",
                                      "on_delete": "restrict", "title": "{name}",
                                      "naming": "name"}
    assert fields["installed_on"]["min"] == "1950-01-01"
    table = fields["readings"]["table"]
    assert table["entity"] == "plant.reading"
    assert [f["name"] for f in table["fields"]] == ["taken_on", "pressure", "comment",
                                                   "witness_site"]
    assert table["fields"][3]["link"]["entity"] == "plant.site"


def test_meta_of_one_entity(env: ApiEnv) -> None:
    body = env.client.get("/api/meta/plant/site").json
    assert body["qualname"] == "plant.site" and body["naming"] == "name"
    assert body["permissions"]["admin"] == ["create", "delete", "export", "read", "update"]
    child = env.client.get("/api/meta/plant/reading").json
    assert child["child"] is True and child["parent"] == "plant.equipment" and child["url"] is None
    assert "plant.nope" in assert_error(env.client.get("/api/meta/plant/nope"), 404)["message"]


def test_meta_never_asks_authorize_but_views_do(project, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    asked: list[tuple[str, str]] = []

    def authorize(ent, action):  # type: ignore[no-untyped-def]
        asked.append((ent.name, action))
        return ent.name != "site"

    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), sqlite_url, authorize=authorize)
    names = [x["name"] for x in e.client.get("/api/meta").json["modules"][0]["entities"]]
    assert names == ["site", "equipment", "inspection"]
    assert e.client.get("/api/meta/plant/site").status_code == 200
    assert asked == []
    assert_error(e.client.get("/api/plant/site"), 403)
    assert_error(e.client.get("/api/plant/equipment?expand=site"), 403)
    assert asked == [("site", "read"), ("equipment", "read"), ("site", "read")]


def test_health_reports_database_and_unconfigured_mqtt(env: ApiEnv) -> None:
    r = env.client.get("/api/health")
    assert r.status_code == 200
    body = r.json
    assert list(body) == ["status", "version", "database", "mqtt", "uptime_seconds"]
    assert (body["status"], body["database"], body["mqtt"]) == (
        "healthy", "connected", "not_configured")
    assert body["version"] == "0.1.0" or re.match(r"^\d+\.\d+", body["version"])
    assert isinstance(body["uptime_seconds"], float) and body["uptime_seconds"] >= 0


def test_health_with_a_real_broker(project, sqlite_url: str, mqtt_url: str) -> None:  # type: ignore[no-untyped-def]
    assert probe(mqtt_url) == (True, "connected")
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), sqlite_url,
                 settings=Settings(mqtt_url=mqtt_url))
    r = e.client.get("/api/health")
    assert r.status_code == 200
    assert r.json == {"status": "healthy", "version": r.json["version"],
                      "database": "connected", "mqtt": "connected",
                      "uptime_seconds": r.json["uptime_seconds"]}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_degraded_when_broker_down_and_cached(project, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    port = _closed_port()
    e = make_env(project({"modules/plant.yaml": PLANT_YAML}), sqlite_url,
                 settings=Settings(mqtt_url=f"mqtt://127.0.0.1:{port}"))
    r = e.client.get("/api/health")
    assert r.status_code == 200
    assert (r.json["status"], r.json["database"], r.json["mqtt"]) == (
        "degraded", "connected", "disconnected")
    # a broker that appears within the cache window is not seen until the cache expires
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert e.client.get("/api/health").json["mqtt"] == "disconnected"


def test_broker_that_never_answers_times_out_quickly() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        done: list[tuple[bool, str]] = []
        t = threading.Thread(target=lambda: done.append(
            probe(f"mqtt://127.0.0.1:{port}", timeout=0.3)))
        t.start()
        t.join(timeout=3)
        assert done == [(False, f"the MQTT broker at mqtt://127.0.0.1:{port} did not answer "
                                "within 0.3 s")]


def test_health_503_when_database_is_down(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = load(project({"modules/plant.yaml": PLANT_YAML}))
    engine = create_engine_for(f"sqlite:///{tmp_path}/missing/dir/campo.db")
    app = create_app(model, engine, Settings())
    r = app.test_client().get("/api/health")
    assert r.status_code == 503
    assert list(r.json) == ["status", "version", "database", "mqtt", "uptime_seconds"]
    assert (r.json["status"], r.json["database"], r.json["mqtt"]) == (
        "unhealthy", "disconnected", "not_configured")
    body = assert_error(app.test_client().get("/api/plant/site"), 503)
    assert "database" in body["message"]


def test_health_answers_match_the_published_schema(project, sqlite_url: str,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    import jsonschema

    model = load(project({"modules/plant.yaml": PLANT_YAML}))
    answers = []
    for db, mqtt in ((sqlite_url, ""), (sqlite_url, f"mqtt://127.0.0.1:{_closed_port()}"),
                     (f"sqlite:///{tmp_path}/missing/dir/campo.db", "")):
        app = create_app(model, create_engine_for(db), Settings(mqtt_url=mqtt))
        c = app.test_client()
        r = c.get("/api/health")
        op = c.get("/api/openapi.json").json["paths"]["/api/health"]["get"]
        schema = op["responses"][str(r.status_code)]["content"]["application/json"]["schema"]
        jsonschema.validate(r.json, schema)
        answers.append((r.status_code, r.json["status"], r.json["mqtt"]))
    assert answers == [(200, "healthy", "not_configured"), (200, "degraded", "disconnected"),
                       (503, "unhealthy", "not_configured")]
    props = schema["properties"]
    assert props["status"]["enum"] == ["healthy", "degraded", "unhealthy"]
    assert props["mqtt"]["enum"] == ["connected", "disconnected", "not_configured"]
    with pytest.raises(jsonschema.ValidationError):  # the old words no longer pass
        jsonschema.validate({"status": "ok", "version": "1", "database": "ok",
                             "mqtt": "disabled", "uptime_seconds": 1.0}, schema)


def test_openapi_document(env: ApiEnv) -> None:
    spec = env.client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in ("/api/plant/equipment", "/api/plant/equipment/{record_id}",
                 "/api/plant/equipment/bulk", "/api/meta", "/api/health"):
        assert path in paths
    assert set(paths["/api/plant/equipment/{record_id}"]) >= {"get", "put", "patch", "delete"}
    assert "/api/plant/reading" not in paths                     # child rows live inline
    schemas = spec["components"]["schemas"]
    body = schemas["PlantEquipmentInput"]
    assert sorted(body["required"]) == ["name", "tag"]
    assert body["properties"]["tag"]["pattern"] == "^[A-Z0-9-]+$"
    assert body["properties"]["kind"]["enum"] == ["pump", "tank", "valve"]
    assert body["properties"]["depth_m"]["maximum"] == 12000
    assert body["properties"]["readings"]["items"]["$ref"].endswith("PlantReadingInput")
    params = {p["name"] for p in paths["/api/plant/equipment"]["get"]["parameters"]}
    assert {"sort", "limit", "offset", "cursor", "count", "fields", "expand", "tag"} <= params
    page = schemas["PlantEquipmentPage"]["properties"]
    assert set(page) == {"items", "next_cursor", "count"}


def test_openapi_document_is_built_on_first_demand(env: ApiEnv) -> None:
    """The routes answer at once; the document (and the schemas only it needs) is made by
    the first GET /api/openapi.json, once, and a blueprint added later joins it."""
    from flask_smorest import Blueprint

    from engine.api.docs import LazyDoc

    api = env.app.extensions["campo"]["api"]
    assert "/api/plant/equipment" not in api.spec.to_dict().get("paths", {})
    docs = api._pending[0][0]._docs
    assert any(isinstance(info, LazyDoc) for m in docs.values() for info in m.values())
    api.document()
    first = api.spec.to_dict()
    assert first["paths"]["/api/plant/equipment"]["post"]["summary"].startswith("Create a ")
    assert api._pending == []
    late = Blueprint("late", __name__, url_prefix="/api/late")
    late.route("")(lambda: {"ok": True})
    api.register_blueprint(late)  # after the document was made: joins it on demand
    assert env.client.get("/api/plant/equipment").status_code == 200
    second = env.client.get("/api/openapi.json").json
    assert "/api/late" in second["paths"] and second["paths"]["/api/plant/equipment"] == \
        first["paths"]["/api/plant/equipment"]


def test_docs_page_is_served_without_external_urls(env: ApiEnv) -> None:
    r = env.client.get("/api/docs")
    assert r.status_code == 200 and b"swagger-ui" in r.data
    html = r.data.decode()
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 3
    for url in assets:
        assert url.startswith("/api/docs/static/")
        asset = env.client.get(url)
        assert asset.status_code == 200 and len(asset.data) > 1000
        asset.close()
    assert '"validatorUrl": null' in html       # no call to the online validator
    assert '"/api/openapi.json"' in html


def test_module_named_like_a_builtin_url_is_refused(project, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    root = project({"modules/meta.yaml": "module: meta\nentities:\n  thing:\n    fields:\n"
                    "      name: {type: string}\n"})
    # the loader refuses it first (campo validate reports it at file:line:col) ...
    with pytest.raises(DefinitionError, match="module name 'meta' is reserved"):
        make_env(root, sqlite_url)
    # ... and create_app still refuses a model that reaches it by another way
    ok = load(project({"modules/meta.yaml": PLANT_YAML}))
    renamed = dataclasses.replace(ok, modules={"meta": next(iter(ok.modules.values()))})
    with pytest.raises(ValueError, match="meta"):
        create_app(renamed, create_engine_for(sqlite_url), Settings())
