"""The served OpenAPI document validates (openapi-spec-validator), and an OpenAPI-driven
fuzzer (schemathesis) run against the app of this repository's modules, on SQLite and
PostgreSQL, gets no 5xx and no answer that breaks the document — per operation, and
statefully: each record created is followed through the create answer's OpenAPI links to
get, put (the record sent back as read), patch, actions, transitions and delete.
Bounded: a few examples per operation (``CAMPO_FUZZ_EXAMPLES``, default 4).

(Schemathesis' own hypothesis state machine is not used: its rule preconditions depend on
feedback gathered during the run, which hypothesis reports as a flaky strategy.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate as validate_spec
from schemathesis import checks
from support.auth import PASSWORD, bearer, build_settings

from engine.api import create_app
from engine.auth import api_hooks, auth_init_hook
from engine.auth.users import create_user
from engine.bus import InProcessBus
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project
from engine.wiring.edge import EdgePlugin
from metamodel.tags import load_tags

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
#: examples per operation; the whole module stays within a few minutes on both databases
EXAMPLES = int(os.environ.get("CAMPO_FUZZ_EXAMPLES", "4"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance,
          checks.response_headers_conformance]
#: operations that would end the fuzzer's own session or change its password
SKIP = {("POST", "/api/auth/logout"), ("POST", "/api/auth/password"),
        ("DELETE", "/api/auth/sessions/{session_id}")}


@dataclass
class Target:
    app: Flask
    headers: dict[str, str]
    spec: dict[str, Any]


@pytest.fixture
def target(db_url: str, tmp_path: Path) -> Iterator[Target]:
    """The app of the repository's modules behind real auth, and an admin's header."""
    model = load_project(REPO)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    conf = build_settings(tmp_path, api_rate_limit="1000000 per minute",
                          login_rate_limit="1000000 per minute")
    tags = load_tags(REPO, roles=list(model.roles))
    live = EdgePlugin(tags, InProcessBus(), engine, run_runtime=False)  # /api/tags, no polling
    app = create_app(model, engine, conf, **api_hooks(),
                     on_init=[auth_init_hook(engine, conf, model), live.init_app])
    state = app.extensions["campo_auth"]
    with engine.begin() as conn:
        create_user(conn, model, username="ada", now=state.now(), roles=["admin"],
                    password_hash=state.passwords.hash(PASSWORD), sites=["*"])
    c = app.test_client()
    r = c.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert r.status_code == 200, r.json
    yield Target(app, bearer(r.json["access_token"]), c.get("/api/openapi.json").json)
    engine.dispose()


def test_the_served_document_is_valid_openapi(target: Target) -> None:
    spec = target.spec
    validate_spec(spec)  # raises on any violation
    schemas = spec["components"]["schemas"]
    # PATCH bodies have no required fields; derived and system fields are read-only
    patch = spec["paths"]["/api/maintenance/work_order/{record_id}"]["patch"]
    ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "required" not in schemas[ref.rsplit("/", 1)[1]]
    assert schemas["MaintenanceWorkOrderInput"]["required"]
    out = schemas["MaintenanceWorkOrder"]["properties"]
    for name in ("id", "created_at", "total", "status", "number"):
        assert out[name].get("readOnly") is True, name
    inp = schemas["MaintenanceWorkOrderInput"]["properties"]
    assert inp["total"]["readOnly"] is True and inp["id"]["readOnly"] is True
    # expression defaults are not published as values
    text = str(spec)
    assert "'default': '=" not in text and "x-default-expression" in text
    # the password rule is the server's
    pw = schemas["PasswordChange"]["properties"]["new_password"]
    assert pw["minLength"] == 8
    # /api/health is public; /api/tags documents its answers
    assert spec["paths"]["/api/health"]["get"]["security"] == []
    for path in ("/api/tags", "/api/tags/{path}", "/api/tags/{path}/write"):
        op = next(iter(v for k, v in spec["paths"][path].items() if k in ("get", "post")))
        assert "content" in op["responses"]["200"], path
    # a create links to the record's operations (what the stateful fuzzer follows)
    created = spec["paths"]["/api/maintenance/work_order"]["post"]["responses"]["201"]
    assert {"GetRecord", "PatchRecord", "DeleteRecord", "ActionsRecord"} <= set(
        created["links"])


def test_method_not_allowed_says_allow_and_no_content_has_no_type(target: Target) -> None:
    c = target.app.test_client()
    r = c.put("/api/showcase/asset", headers=target.headers, json={})
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert r.json["code"] == 405 and r.json["message"]
    r = c.post("/api/audit", headers=target.headers, json={})
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    r = c.post("/api/showcase/field_area", headers=target.headers,
               json={"name": "North"})
    assert r.status_code == 201, r.json
    r = c.delete(f"/api/showcase/field_area/{r.json['id']}", headers=target.headers)
    assert r.status_code == 204 and "Content-Type" not in r.headers and r.data == b""


def _operations(schema: Any) -> list[Any]:
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) not in SKIP:
            ops.append(op)
    return ops


@pytest.mark.slow
def test_fuzz_every_operation(target: Target) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", target.app)
    failures: list[str] = []
    ops = _operations(schema)
    assert len(ops) > 60  # every entity's operations, auth, audit, meta, health
    by_id = {op.definition.raw.get("operationId"): op for op in ops}
    followed: list[str] = []

    def check(op: Any, case: Any, response: Any) -> None:
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as err:  # collected: report every operation that fails
            failures.append(f"{op.method.upper()} {op.path}: {str(err)[:500]}")

    def follow(op: Any, response: Any) -> None:
        """Stateful step: from a created record, every operation its links name, in order,
        sending back the record as read with PUT; DELETE last."""
        links = op.definition.raw["responses"]["201"].get("links", {})
        record = response.json()
        order = sorted(links.values(), key=lambda link: link["operationId"].endswith(
            "_delete"))
        for link in order:
            nxt = by_id[link["operationId"]]
            kw: dict[str, Any] = {"path_parameters": {"record_id": record["id"]}}
            if nxt.method.upper() == "PUT":
                kw.update(body=record, media_type="application/json")
            elif nxt.method.upper() == "PATCH":
                kw.update(body={}, media_type="application/json")
            case = nxt.Case(**kw)
            check(nxt, case, case.call(headers=target.headers))
            followed.append(link["operationId"])

    def fuzz(op: Any) -> None:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def run(case: Any) -> None:
            response = case.call(headers=target.headers)
            check(op, case, response)
            if response.status_code == 201 and "links" in \
                    op.definition.raw["responses"].get("201", {}):
                follow(op, response)

        run()

    for op in ops:
        fuzz(op)
    assert failures == []
    assert any(f.endswith("_put") for f in followed)  # created records were followed
