"""Resolved behaviour of entities: series, workflow, computed order, expressions, helpers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from metamodel import DefinitionError, load
from metamodel.behaviour import dependency_order, parse_series, self_refs

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model() -> Any:
    return load(REPO)


# --------------------------------------------------------------------------- series


def test_series_renders_dates_counter_and_fields() -> None:
    s = parse_series("{site}-WO-{YY}{MM}{DD}-{####}", "number")
    on = dt.date(2025, 3, 9)
    assert [p.kind for p in s.parts] == ["field", "literal", "date", "date", "date", "literal",
                                         "counter"]
    assert s.fields == ("site",)
    assert s.counter is not None and s.counter.digits == 4
    assert s.render({"site": "PAD7"}, on, 42) == "PAD7-WO-250309-0042"
    assert s.render({"site": "PAD7"}, on, 123456) == "PAD7-WO-250309-123456"  # kept whole
    assert s.key({"site": "PAD7"}, on) == "PAD7-WO-250309-{#}"
    assert s.key({"site": None}, on) == "-WO-250309-{#}"


def test_series_key_changes_with_the_year_only_when_the_template_has_it() -> None:
    yearly = parse_series("WO-{YYYY}-{#####}", "n")
    plain = parse_series("WO-{#####}", "n")
    a, b = dt.date(2025, 12, 31), dt.date(2026, 1, 1)
    assert yearly.key({}, a) != yearly.key({}, b)
    assert plain.key({}, a) == plain.key({}, b) == "WO-{#}"
    assert yearly.min_length() == len("WO-2025-00001")


def test_entity_series_from_the_maintenance_module(model: Any) -> None:
    s = model.entity("maintenance.work_order").series
    assert s.field == "number" and s.template == "WO-{YYYY}-{#####}"
    assert s.render({}, dt.date(2025, 1, 2), 7) == "WO-2025-00007"
    assert model.entity("maintenance.equipment").series is None


# --------------------------------------------------------------------------- workflow


def test_workflow_has_every_enum_value_as_a_state(model: Any) -> None:
    wf = model.entity("maintenance.work_order").workflow
    assert wf.field == "status" and wf.initial == "draft"
    assert list(wf.states) == ["draft", "approved", "in_progress", "done", "cancelled"]
    assert wf.states["draft"].labels.get("en") == "Draft"
    assert wf.states["done"].editable == frozenset()
    assert wf.states["approved"].editable is None
    assert wf.editable_in("approved") is None
    assert "lines" in wf.editable_in("draft")
    assert wf.actions() == ("approve", "start", "finish", "cancel")


def test_workflow_transition_lookup(model: Any) -> None:
    wf = model.entity("maintenance.work_order").workflow
    approve = wf.transition("approve", "draft")
    assert approve.to == "approved" and approve.roles == ["supervisor"]
    assert approve.guard == "self.total > 0" and approve.requires == ["assigned_to"]
    assert wf.transition("approve", "approved") is None
    assert wf.transition("cancel", "approved").to == "cancelled"
    assert [t.action for t in wf.actions_from("draft")] == ["approve", "cancel"]
    assert wf.actions_from("done") == []


def test_workflow_initial_defaults_and_state_labels(project: Any) -> None:
    root = project({"modules/m.yaml": """
module: m
entities:
  job:
    fields:
      state:
        type: enum
        values: {open: {es: Abierta, en: Open}, closed: Cerrada}
        default: closed
    workflow:
      field: state
      states: {open: {color: "#12ab34"}}
      transitions: [{action: close, from: open, to: closed}]
  task:
    fields:
      state: {type: enum, values: [todo, done]}
    workflow: {field: state}
"""})
    m = load(root)
    wf = m.entity("m.job").workflow
    assert wf.initial == "closed"  # the field's default
    assert wf.states["open"].labels.get("es") == "Abierta"
    assert wf.states["open"].color == "#12ab34"
    assert wf.states["closed"].labels.get("en") == "Cerrada"
    assert wf.transition("close", "open").sources() == ("open",)
    assert m.entity("m.task").workflow.initial == "todo"  # the first value


# --------------------------------------------------------------------------- computed


def test_self_refs_skip_strings_and_comments() -> None:
    assert self_refs("self.a + self . b  # self.c") == {"a", "b"}
    assert self_refs("concat('self.x', \"self.y\", self.z)") == {"z"}
    assert self_refs("parent.self_total + myself.q") == set()
    assert self_refs("sum(self.lines.amount)") == {"lines"}


def test_dependency_order_and_cycles() -> None:
    order, cycles = dependency_order({"total": {"net", "tax"}, "tax": {"net"}, "net": set()})
    assert order == ["net", "tax", "total"] and cycles == []
    order, cycles = dependency_order({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}})
    assert sorted(order) == ["a", "b", "c", "d"]
    assert cycles == [["a", "b", "c", "a"], ["d", "d"]]


def test_computed_order_follows_dependencies(project: Any) -> None:
    root = project({"modules/m.yaml": """
module: m
entities:
  bill:
    fields:
      total: {type: decimal, computed: "self.net + self.tax"}
      tax: {type: decimal, computed: "self.net * 0.21", stored: false}
      net: {type: decimal, computed: "self.gross - self.discount"}
      gross: {type: decimal}
      discount: {type: decimal}
"""})
    ent = load(root).entity("m.bill")
    assert ent.computed_order == ("net", "tax", "total")
    assert list(ent.virtual_fields()) == ["tax"]
    assert "tax" not in ent.stored_fields() and "total" in ent.stored_fields()
    assert ent.derived_fields() == {"net", "tax", "total"}


# --------------------------------------------------------------------------- helpers


def test_field_helpers(model: Any) -> None:
    f = model.entity("maintenance.work_order").fields
    assert f["due_on"].default_expression == "add_days(today(), 7)"
    assert f["due_on"].literal_default is None
    assert f["status"].default_expression is None and f["status"].literal_default == "draft"
    assert f["age_days"].is_virtual and not f["total"].is_virtual
    assert f["cause"].expressions() == {
        "visible_if": "self.kind == 'corrective'",
        "required_if": "self.kind == 'corrective' and self.status == 'done'",
        "readonly_if": "self.status in ['done', 'cancelled']"}
    assert f["due_on"].expressions() == {"default": "add_days(today(), 7)"}


def test_entity_helpers(model: Any) -> None:
    ent = model.entity("maintenance.work_order")
    assert ent.fetched_fields() == {"equipment_name": ("equipment", "name")}
    assert ent.derived_fields() == {"number", "equipment_name", "total", "age_days", "status"}
    assert [v.id for v in ent.validations] == ["total_not_negative", "finish_after_start"]
    assert ent.validations[0].messages().get("en") == "Total cannot be negative"
    kinds = [(s.kind, s.field, s.index) for s in ent.expressions()]
    assert ("guard", None, 0) in kinds and ("validation", "total", 0) in kinds
    assert ("default", "due_on", None) in kinds and ("computed", "total", None) in kinds
    site = next(s for s in ent.expressions() if s.kind == "computed" and s.field == "total")
    assert site.path == ("entities", "work_order", "fields", "total", "computed")
    loc = ent.where(*site.path[2:])
    line = (REPO / loc.file).read_text().split("\n")[loc.line - 1]
    assert line[loc.column - 1:].startswith('"sum(self.lines.amount)"')
    assert ent.where_key("workflow").line < ent.where("workflow", "field").line + 1


def test_validation_message_defaults_to_the_rule(project: Any) -> None:
    root = project({"modules/m.yaml": """
module: m
entities:
  tank:
    fields: {level: {type: float}}
    validations: [{rule: "self.level >= 0"}]
"""})
    msg = load(root).entity("m.tank").validations[0].messages()
    assert msg.get("en") == "Rule not met: self.level >= 0"
    assert msg.get("es") == "No se cumple la regla: self.level >= 0"


def test_reserved_module_names(project: Any) -> None:
    root = project({"modules/a.yaml": "module: campo_x\nentities: {n: {fields: {t: {type: text}}}}",
                    "modules/b.yaml": "module: campos\nentities: {n: {fields: {t: {type: text}}}}"})
    with pytest.raises(DefinitionError) as info:
        load(root)
    assert [p.location.file for p in info.value.problems] == ["modules/a.yaml"]
    assert "reserved" in info.value.problems[0].message
