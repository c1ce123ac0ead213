"""The YAML ways to forbid a self-link and a delete by workflow state, as the shipped
modules use them: an asset cannot be its own parent (modules/showcase, a validation), and a
posted journal entry cannot be deleted (modules/finance, ``deletable_in: [draft]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.api import create_app
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project
from engine.settings import Settings
from metamodel.errors import DefinitionError

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(db_url: str) -> Any:
    model = load_project(REPO)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    yield create_app(model, engine, Settings()).test_client()
    engine.dispose()


def test_an_asset_cannot_be_its_own_parent(client: Any) -> None:
    area = client.post("/api/showcase/field_area", json={"name": "North"}).json
    a = client.post("/api/showcase/asset", json={"code": "A-1", "name": "One",
                                                 "field_area": area["id"]})
    assert a.status_code == 201, a.json
    aid = a.json["id"]
    r = client.patch(f"/api/showcase/asset/{aid}", json={"parent_asset": aid})
    assert r.status_code == 422 and "parent_asset" in r.json["errors"]["json"], r.json
    b = client.post("/api/showcase/asset", json={"code": "B-1", "name": "Two",
                                                 "field_area": area["id"], "parent_asset": aid})
    assert b.status_code == 201, b.json
    assert client.patch(f"/api/showcase/asset/{aid}", json={"parent_asset": b.json["id"]}
                        ).status_code == 200


def test_a_posted_journal_entry_cannot_be_deleted(client: Any) -> None:
    acc = [client.post("/api/finance/account", json=body).json for body in (
        {"code": "1000", "name": "Cash", "kind": "asset"},
        {"code": "4000", "name": "Sales", "kind": "income"})]
    body = {"lines": [{"account": acc[0]["id"], "debit": "10.00"},
                      {"account": acc[1]["id"], "credit": "10.00"}]}
    for _ in range(2):
        r = client.post("/api/finance/journal_entry", json=body)
        assert r.status_code == 201, r.json
    draft, posted = [e["id"] for e in client.get("/api/finance/journal_entry").json["items"]]
    r = client.post(f"/api/finance/journal_entry/{posted}/actions/post")
    assert r.status_code == 200 and r.json["status"] == "posted", r.json
    r = client.delete(f"/api/finance/journal_entry/{posted}")
    assert r.status_code == 409 and "draft" in r.json["message"], r.json
    assert "status" in r.json["errors"]["json"]
    assert client.get(f"/api/finance/journal_entry/{posted}").status_code == 200
    assert client.delete(f"/api/finance/journal_entry/{draft}").status_code == 204


def test_deletable_in_names_states_of_the_workflow(project: Any) -> None:
    root = project({"modules/m.yaml": """
module: m
entities:
  doc:
    fields:
      status: {type: enum, values: [draft, done]}
    workflow:
      field: status
      deletable_in: [drafts]
      transitions:
        - {action: finish, from: draft, to: done}
"""})
    with pytest.raises(DefinitionError) as err:
        load_project(root)
    text = str(err.value)
    assert "workflow.deletable_in" in text and "unknown state 'drafts'" in text
    assert "did you mean 'draft'" in text
