"""Scopes from the model (self, links one hop, child tables, parent, user), refs, context."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from engine.expr import (
    Context,
    EvalError,
    ExprError,
    FieldType,
    ObjectType,
    Refs,
    Scope,
    Type,
    compile,
    record_type,
    scope_for_entity,
)
from metamodel import Model, load

PROD = """
module: prod
entities:
  field_area:
    fields:
      name: {type: string, required: true}
      budget: {type: decimal}
  pad:
    fields:
      name: {type: string, required: true}
      site: {type: string}
      area: {type: link, to: field_area}
  well:
    fields:
      name: {type: string, required: true}
      status: {type: enum, values: [planned, drilling, producing, shut_in]}
      depth_m: {type: decimal, precision: 10, scale: 2}
      rate: {type: float}
      stages: {type: int}
      active: {type: bool}
      spud_date: {type: date}
      tested_at: {type: datetime}
      notes: {type: text}
      attrs: {type: json}
      pad: {type: link, to: pad}
      tests: {type: table, of: well_test}
  well_test:
    child: true
    fields:
      taken_on: {type: date}
      oil_bpd: {type: float}
      ok: {type: bool}
      pad: {type: link, to: pad}
"""


@pytest.fixture
def model(project: Callable[[dict[str, str]], Path]) -> Model:
    return load(project({"modules/prod/prod.yaml": PROD}))


def test_record_fields_map_to_expression_types(model: Model) -> None:
    rec = record_type(model, "prod.well")
    expected = {
        "name": Type.STRING, "status": Type.STRING, "depth_m": Type.NUMBER,
        "rate": Type.NUMBER, "stages": Type.NUMBER, "active": Type.BOOL,
        "spud_date": Type.DATE, "tested_at": Type.DATETIME, "notes": Type.STRING,
        "attrs": Type.ANY, "pad": Type.NUMBER, "tests": Type.ROWS, "id": Type.NUMBER,
        "created_at": Type.DATETIME, "updated_by": Type.STRING, "version": Type.NUMBER,
    }
    assert {k: rec.fields[k].type for k in expected} == expected
    assert rec.fields["status"].enum == ("planned", "drilling", "producing", "shut_in")
    pad = rec.fields["pad"].target
    assert pad is not None and pad.name == "prod.pad"
    assert pad.fields["site"].type is Type.STRING
    # one hop: the pad's own link is an id that cannot be followed further
    assert pad.fields["area"].target is not None and not pad.fields["area"].target.fields
    rows = rec.fields["tests"].rows
    assert rows is not None and rows.fields["oil_bpd"].type is Type.NUMBER
    assert rows.fields["parent_id"].type is Type.NUMBER


def test_entity_scope_compiles_and_evaluates(model: Model) -> None:
    scope = scope_for_entity(model, "prod.well")
    assert scope.parent is None
    rule = compile(
        "self.status == 'producing' and self.pad.site in user.sites\n"
        "  and sum(self.tests.oil_bpd) > 100 and count(self.tests) >= 2\n"
        "  and days_between(self.spud_date, today()) > 30",
        scope, expect=Type.BOOL)
    assert rule.refs == Refs(
        fields=frozenset({"status", "pad", "spud_date"}),
        links={"pad": frozenset({"site"})},
        children={"tests": frozenset({"oil_bpd"})},
        user=frozenset({"sites"}), clock=True)
    ctx = Context(
        record={"status": "producing", "pad": 4, "spud_date": dt.date(2024, 1, 1)},
        links={"pad": {"id": 4, "site": "pad7"}},
        children={"tests": [{"oil_bpd": 80.0}, {"oil_bpd": 30.5}]},
        user={"id": 1, "username": "ana", "roles": {"operator"}, "sites": ["pad7"]},
        clock=lambda: dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    assert rule.evaluate(ctx) is True
    ctx.children = {"tests": [{"oil_bpd": 80.0}]}
    assert rule.evaluate(ctx) is False


def test_child_entity_scope_has_parent(model: Model) -> None:
    scope = scope_for_entity(model, "prod.well_test")
    assert scope.parent is not None and scope.parent.name == "prod.well"
    rule = compile("self.oil_bpd <= parent.rate and self.idx >= 0", scope)
    assert rule.refs.parent == frozenset({"rate"})
    assert rule.evaluate(Context(record={"oil_bpd": 10, "idx": 0}, parent={"rate": 12})) is True
    with pytest.raises(EvalError, match=r"parent record was not given .*Context.parent"):
        rule.evaluate(Context(record={"oil_bpd": 10, "idx": 0}))
    with pytest.raises(ExprError) as info:
        compile("parent.pad.site == 'x'", scope)
    assert info.value.message == ("links are followed one hop from self; parent.pad is the id "
                                  "of a prod.pad record")
    assert info.value.offset == 11


def test_link_hops_and_table_errors(model: Model) -> None:
    scope = scope_for_entity(model, "prod.well")
    with pytest.raises(ExprError) as info:
        compile("self.pad.area.name == 'x'", scope)
    assert info.value.message == ("links are followed one hop from self; self.pad.area is the "
                                  "id of a prod.field_area record")
    assert info.value.offset == 14
    with pytest.raises(ExprError, match="unknown field 'oil' of self.tests"):
        compile("sum(self.tests.oil)", scope)
    with pytest.raises(ExprError, match="'parent' is not available here"):
        compile("parent.name", scope)


def test_missing_link_row_and_child_rows_are_eval_errors(model: Model) -> None:
    scope = scope_for_entity(model, "prod.well")
    link = compile("self.pad.name", scope)
    assert link.evaluate(Context(record={"pad": None})) is None
    with pytest.raises(EvalError) as info:
        link.evaluate(Context(record={"pad": 3}))
    assert info.value.message == ("the record linked by self.pad was not given to evaluate "
                                  "(Context.links['pad'])")
    assert link.evaluate(Context(record={"pad": 3}, links={"pad": {"name": "P3"}})) == "P3"
    rows = compile("count(self.tests)", scope)
    assert rows.refs.children == {"tests": frozenset()}
    with pytest.raises(EvalError, match=r"rows of self.tests were not given.*children\['tests'\]"):
        rows.evaluate(Context())
    assert rows.evaluate(Context(children={"tests": []})) == 0


def test_user_needs_to_be_given(model: Model) -> None:
    rule = compile("'admin' in user.roles", scope_for_entity(model, "prod.well"))
    with pytest.raises(EvalError, match="no user was given"):
        rule.evaluate(Context())
    no_user = scope_for_entity(model, "prod.well", user=None)
    with pytest.raises(ExprError) as info:
        compile("'admin' in user.roles", no_user)
    assert info.value.message == "'user' is not available here"
    assert info.value.offset == 11


def test_variables_for_alarm_style_scopes() -> None:
    tag = ObjectType("tag", {"value": FieldType(Type.NUMBER),
                             "quality": FieldType(Type.STRING, enum=("good", "bad"))})
    scope = Scope(user=None, variables={"value": FieldType(Type.NUMBER),
                                        "limit": FieldType(Type.NUMBER),
                                        "pip": FieldType(Type.ANY, target=tag)})
    rule = compile("value > limit and pip.quality == 'good' and pip.value < 300", scope,
                   expect=Type.BOOL)
    assert rule.refs.variables == frozenset({"value", "limit", "pip"})
    assert rule.evaluate(Context(variables={"value": 5, "limit": 3,
                                            "pip": {"value": 250, "quality": "good"}})) is True
    assert rule.evaluate(Context(variables={"value": 5, "limit": 3, "pip": None})) is False
    with pytest.raises(ExprError, match="'goood' is not a value of pip.quality"):
        compile("pip.quality == 'goood'", scope)
    with pytest.raises(ExprError, match="'self' is not available here"):
        compile("self.x > 1", scope)


def test_decimal_fields_from_the_database_keep_exactness(model: Model) -> None:
    expr = compile("self.depth_m * 3 + 0.5 > self.depth_m", scope_for_entity(model, "prod.well"))
    assert expr.evaluate(Context(record={"depth_m": Decimal("0.10")})) is True
    exact = compile("self.depth_m * 3", scope_for_entity(model, "prod.well"))
    assert exact.evaluate(Context(record={"depth_m": Decimal("0.10")})) == Decimal("0.30")


def test_unknown_entity_is_a_key_error(model: Model) -> None:
    with pytest.raises(KeyError):
        scope_for_entity(model, "prod.nope")
