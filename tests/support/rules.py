"""Shared helpers for the tests of the model's rules in the REST API (issue 3): a model
using every rule key, and an app factory with stub access hooks.

Imported by ``test_rules_*``, ``test_workflow*``, ``test_naming*`` and
``test_aggregate*``; holds no tests itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from engine.api import create_app
from engine.db import build_metadata, create_engine_for
from engine.rules import load_project
from engine.settings import Settings
from metamodel import Entity, Model

WORKS_YAML = """
module: works
label: {es: Obras, en: Works}
roles:
  foreman: {inherits: [supervisor]}
entities:
  crew:
    naming: {field: code}
    fields:
      code: {type: string, max_length: 10, required: true, unique: true}
      name: {type: string, max_length: 40, required: true}
      site: {type: string, max_length: 8}
  item:
    fields:
      code: {type: string, max_length: 10, required: true, unique: true}
      price: {type: decimal, precision: 10, scale: 2, required: true}
  job:
    label: {es: Trabajo, en: Job}
    naming: {field: number, series: "JOB-{YYYY}-{####}"}
    fields:
      number: {type: string, max_length: 20, unique: true}
      crew: {type: link, to: crew}
      crew_name: {type: string, max_length: 40, fetch_from: crew.name}
      kind: {type: enum, values: [preventive, corrective], default: preventive}
      cause: {type: text, visible_if: "self.kind == 'corrective'",
              required_if: "self.kind == 'corrective'", readonly_if: "self.locked"}
      locked: {type: bool, default: false}
      assigned_to: {type: string, max_length: 20}
      due_on: {type: date, default: "=add_days(today(), 7)"}
      lines: {type: table, of: job_line}
      total: {type: decimal, precision: 12, scale: 2, computed: "sum(self.lines.amount)"}
      line_count: {type: int, computed: "count(self.lines)", stored: false}
      crew_site: {type: string, max_length: 8, computed: "self.crew.site", stored: false}
      status: {type: enum, values: [draft, approved, done, cancelled], default: draft}
    validations:
      - id: total_cap
        rule: "self.total <= 10000"
        message: {es: "El total supera el tope", en: "Total exceeds the cap"}
        field: total
      - id: due_after_created
        rule: "self.due_on == null or self.due_on >= date(self.created_at)"
        message: {es: "Vence antes de crearse", en: "Due before it was created"}
    workflow:
      field: status
      initial: draft
      states:
        draft: {label: {es: Borrador, en: Draft}, color: grey,
                editable: [crew, kind, cause, locked, assigned_to, due_on, lines]}
        approved: {label: {es: Aprobada, en: Approved}, color: blue}
        done: {label: {es: Hecha, en: Done}, color: green, editable: []}
      transitions:
        - action: approve
          from: [draft]
          to: approved
          roles: [supervisor]
          guard: "self.total > 0"
          requires: [assigned_to]
          label: {es: Aprobar, en: Approve}
        - action: finish
          from: approved
          to: done
          roles: [supervisor, operator]
        - action: cancel
          from: [draft, approved]
          to: cancelled
  job_line:
    child: true
    fields:
      item: {type: link, to: item}
      description: {type: string, max_length: 40, required: true}
      qty: {type: decimal, precision: 10, scale: 3, default: 1}
      unit_price: {type: decimal, precision: 10, scale: 2, fetch_from: item.price}
      amount: {type: decimal, precision: 12, scale: 2, computed: "self.qty * self.unit_price"}
    validations:
      - rule: "self.qty > 0"
        message: {es: "La cantidad debe ser positiva", en: "Quantity must be positive"}
        field: qty
  ticket:
    naming: {field: ref, series: "{site}-{YY}-{###}"}
    fields:
      ref: {type: string, max_length: 20, unique: true}
      site: {type: string, max_length: 6, required: true}
      code: {type: string, max_length: 10, unique: true}
  meter:
    fields:
      area: {type: enum, values: [north, south]}
      kind: {type: string, max_length: 10}
      volume: {type: decimal, precision: 12, scale: 2}
      hours: {type: int}
      rate: {type: float}
      read_on: {type: date}
      read_at: {type: datetime}
      meta: {type: json}
"""


@dataclass
class Hooks:
    """Stub access hooks whose answers a test changes as it goes."""

    roles: frozenset[str] = frozenset({"admin"})
    user: str | None = "tester"
    denied: set[tuple[str, str]] = field(default_factory=set)
    #: entity qualname -> SQL text of a row filter (a stand-in for auth's row scope)
    scopes: dict[str, str] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def authorize(self, entity: Entity, action: str) -> bool:
        return (entity.qualname, action) not in self.denied

    def current_roles(self) -> frozenset[str]:
        return self.roles

    def current_user(self) -> str | None:
        return self.user

    def row_filter(self, entity: Entity, table: sa.Table) -> Any:
        text = self.scopes.get(entity.qualname)
        return None if text is None else sa.text(text)

    def record_change(self, conn: Any, *, action: str, entity: str, record_id: Any,
                      before: Mapping[str, Any] | None,
                      after: Mapping[str, Any] | None) -> None:
        self.changes.append({"action": action, "entity": entity, "record_id": record_id,
                             "before": before, "after": after,
                             "in_transaction": conn.in_transaction()})


@dataclass
class RulesEnv:
    """A test client over a fresh database with the works model."""

    app: Flask
    client: FlaskClient
    engine: Engine
    model: Model
    hooks: Hooks

    def post(self, url: str, body: Any, **kw: Any) -> Any:
        return self.client.post(f"/api/works/{url}", json=body, **kw)

    def patch(self, url: str, body: Any, **kw: Any) -> Any:
        return self.client.patch(f"/api/works/{url}", json=body, **kw)

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(f"/api/works/{url}", **kw)

    def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.post(entity, body)
        assert r.status_code == 201, r.json
        return dict(r.json)


def make_rules_env(root: Path, db_url: str, yaml_text: str = WORKS_YAML) -> RulesEnv:
    """Write the model under ``root``, create its tables on ``db_url``, build the app."""
    (root / "modules").mkdir(parents=True, exist_ok=True)
    (root / "modules" / "works.yaml").write_text(yaml_text, encoding="utf-8")
    model = load_project(root)
    engine = create_engine_for(db_url)
    build_metadata(model).create_all(engine)
    hooks = Hooks()
    app = create_app(model, engine, Settings(max_page_size=50, default_page_size=20),
                     authorize=hooks.authorize, current_user=hooks.current_user,
                     current_roles=hooks.current_roles, row_filter=hooks.row_filter,
                     record_change=hooks.record_change)
    return RulesEnv(app, app.test_client(), engine, model, hooks)


def seed(env: RulesEnv) -> dict[str, int]:
    """Two crews and two items; their ids by code."""
    ids = {}
    for code, name, site in (("C1", "Alpha crew", "PAD7"), ("C2", "Bravo crew", "PAD9")):
        ids[code] = env.create("crew", {"code": code, "name": name, "site": site})["id"]
    for code, price in (("BOLT", "2.50"), ("PUMP", "1200.00")):
        ids[code] = env.create("item", {"code": code, "price": price})["id"]
    return ids
