"""Adding a field kind is one file (issue 9 item 5): ``tests/support/percent_kind.py``
declares ``percent`` and installs it; YAML, JSON Schema, tables, migrations, the REST API
(filters, JSON, validation, the fast path, /api/meta, OpenAPI) and expressions then know
it, on SQLite and PostgreSQL, with no other file naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import percent_kind
from support.api import assert_error

from engine.api import create_app
from engine.db import create_engine_for
from engine.db.migrate import migrate, plan
from engine.rules import load_project
from engine.settings import Settings
from metamodel.errors import DefinitionError
from metamodel.schema import json_schema

pytestmark = pytest.mark.integration

YAML = """
module: poll
entities:
  answer:
    fields:
      code: {type: string, max_length: 10, required: true}
      share: {type: percent, places: 1, required: true}
      quorum: {type: percent, places: 0, default: 50}
      half: {type: decimal, precision: 6, scale: 2, computed: "self.share / 2"}
      double: {type: percent, places: 0, computed: "self.share * 2"}
"""
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def kind() -> Iterator[None]:
    percent_kind.install_kind()
    yield
    percent_kind.uninstall_kind()


def test_one_file_adds_the_kind_everywhere(kind: None, project: Any, db_url: str) -> None:
    root = project({"modules/poll.yaml": YAML})
    model = load_project(root)
    engine = create_engine_for(db_url)
    result = migrate(engine, model, root)
    assert result.revision is not None
    assert "sa.Numeric(precision=4, scale=1)" in result.revision.read_text()
    assert plan(engine, model, root).empty
    c = create_app(model, engine, Settings()).test_client()
    r = c.post("/api/poll/answer", json={"code": "a", "share": "12.5"})
    assert r.status_code == 201, r.json
    assert r.json["share"] == "12.5" and r.json["half"] == "6.25"   # an expression read it
    assert r.json["double"] == "25"                        # and computed one (rounded)
    assert r.json["quorum"] == "50"                        # its literal default
    assert c.post("/api/poll/answer", json={"code": "b", "share": 7}).json["share"] == "7.0"
    for bad in ("100.1", "-1", "1.25", "x", True):
        body = assert_error(c.post("/api/poll/answer", json={"code": "c", "share": bad}), 422)
        assert list(body["errors"]["json"]) == ["share"], (bad, body)
    items = c.get("/api/poll/answer?share__gt=10&fields=code").json["items"]
    assert [i["code"] for i in items] == ["a"]
    assert_error(c.get("/api/poll/answer?share__gt=abc"), 400)
    meta = c.get("/api/meta/poll/answer").json
    share = next(f for f in meta["fields"] if f["name"] == "share")
    assert share["type"] == "percent" and share["places"] == 1 and share["max"] == 100
    doc = c.get("/api/openapi.json").json
    assert doc["components"]["schemas"]  # the document builds with the new kind
    engine.dispose()


def test_the_language_knows_it_only_while_installed(kind: None, project: Any) -> None:
    schema = json_schema()
    assert "PercentField" in schema["definitions"]
    assert "places" in schema["definitions"]["PercentField"]["properties"]
    root = project({"modules/poll.yaml": YAML})
    assert load_project(root).entities["poll.answer"].fields["share"].type == "percent"
    percent_kind.uninstall_kind()
    try:
        with pytest.raises(DefinitionError, match="share"):
            load_project(root)
        assert "PercentField" not in json_schema()["definitions"]
    finally:
        percent_kind.install_kind()


def test_the_kind_aggregates_as_it_says(kind: None, project: Any, db_url: str) -> None:
    root = project({"modules/poll.yaml": YAML})
    model = load_project(root)
    engine = create_engine_for(db_url)
    migrate(engine, model, root)
    c = create_app(model, engine, Settings()).test_client()
    for code, share in (("a", "12.5"), ("b", "30"), ("c", "0.1")):
        assert c.post("/api/poll/answer", json={"code": code, "share": share}).status_code == 201
    r = c.get("/api/poll/answer/aggregate?sum=share&avg=share&max=share")
    assert r.status_code == 200, r.json
    item = r.json["items"][0]
    assert item["sum"]["share"] == "42.6" and item["max"]["share"] == "30.0"
    assert item["avg"]["share"] == "14.2"
    body = assert_error(c.get("/api/poll/answer/aggregate?sum=code"), 400)
    assert "percent" in body["message"]  # the kinds that sum, from the registry
    engine.dispose()


def test_its_defaults_are_judged_by_the_kind(kind: None, project: Any) -> None:
    root = project({"modules/poll.yaml": YAML.replace("default: 50", "default: 150")})
    with pytest.raises(DefinitionError, match=r"quorum.default: default 150 is not a "
                                              r"percentage with 0 decimal place"):
        load_project(root)
