"""engine.rules: every expression of a model compiled at load time, located errors, runtime use."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.expr import Context, Type
from engine.rules import expression_location, load_project, rules_for
from metamodel import DefinitionError, load
from metamodel.behaviour import self_refs
from metamodel.source import read_yaml

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def model() -> Any:
    return load_project(REPO, overlays=[REPO / "sites" / "example_pad"])


def problems_of(root: Path, overlays: tuple[Path, ...] = ()) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_project(root, overlays)
    return [f"{p.location.line}:{p.location.column} {p.path}: {p.message}"
            for p in info.value.problems]


# --------------------------------------------------------------------------- compiled rules


def test_every_expression_of_the_repository_compiles(model: Any) -> None:
    rules = rules_for(model)
    assert rules is rules_for(model)  # cached on the model
    wo = rules.entity("maintenance.work_order")
    assert list(wo.computed) == ["total", "age_days"]
    assert set(wo.visible_if) == {"cause"}
    assert set(wo.required_if) == {"cause", "finished_at", "permit_number"}
    assert set(wo.readonly_if) == {"cause"}
    assert set(wo.defaults) == {"due_on"}
    assert [spec.id for spec, _ in wo.validations] == [
        "total_not_negative", "finish_after_start", None]
    assert wo.guard("approve", "draft") is not None
    assert wo.guard("start", "approved") is None and wo.guard("nope", "draft") is None
    for expr in (*wo.visible_if.values(), *(e for _, e in wo.validations)):
        assert expr.type is Type.BOOL


def test_scan_of_self_references_agrees_with_the_compiler(model: Any) -> None:
    """Entity.computed_order relies on a scan of self.<name>; it must see what compile sees."""
    checked = 0
    for qual, er in rules_for(model).entities.items():
        ent = model.entity(qual)
        for site in ent.expressions():
            if site.kind == "computed":
                expr = er.computed[site.field]
                assert self_refs(site.source) == set(expr.refs.fields) | set(expr.refs.links) \
                    | set(expr.refs.children), (qual, site.source)
                checked += 1
    assert checked >= 5


def test_work_order_rules_evaluate(model: Any) -> None:
    wo = rules_for(model).entity("maintenance.work_order")
    line = rules_for(model).entity("maintenance.work_order_line")
    rows = [{"qty": Decimal("2"), "unit_cost": Decimal("10.50")},
            {"qty": Decimal("1"), "unit_cost": Decimal("4")}]
    for row in rows:
        for name, expr in line.computed.items():
            row[name] = expr.evaluate(Context(record=row))
    assert [r["amount"] for r in rows] == [Decimal("21.00"), Decimal("4")]
    record: dict[str, Any] = {"status": "draft", "kind": "corrective", "priority": "high",
                              "created_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}
    clock = lambda: dt.datetime(2025, 1, 11, 12, tzinfo=dt.UTC)  # noqa: E731
    for name, expr in wo.computed.items():
        record[name] = expr.evaluate(Context(record=record, children={"lines": rows},
                                             clock=clock))
    assert record["total"] == Decimal("25.00") and record["age_days"] == 10
    assert wo.guard("approve", "draft").evaluate(Context(record=record)) is True
    assert wo.visible_if["cause"].evaluate(Context(record=record)) is True
    failed = [spec.id for spec, e in wo.validations if not e.evaluate(Context(record=record))]
    assert failed == []
    record["priority"] = "low"
    failed = [spec.field for spec, e in wo.validations if not e.evaluate(Context(record=record))]
    assert failed == ["priority"]  # the overlay's rule
    due = wo.defaults["due_on"].evaluate(Context(record={}, clock=clock))
    assert due == dt.date(2025, 1, 14)  # the overlay's default: three days


def test_journal_entry_must_balance(model: Any) -> None:
    je = rules_for(model).entity("finance.journal_entry")
    balanced = {"balanced": True, "two_lines": True}
    rows = [{"debit": Decimal("100"), "credit": Decimal("0")},
            {"debit": Decimal("0"), "credit": Decimal("100")}]

    def check(lines: list[dict[str, Any]]) -> dict[str, bool]:
        ctx = Context(record={}, children={"lines": lines})
        return {spec.id: e.evaluate(ctx) for spec, e in je.validations}

    assert check(rows) == balanced
    assert check([rows[0], {"debit": Decimal("0"), "credit": Decimal("99.99")}]) == {
        "balanced": False, "two_lines": True}
    assert check([]) == {"balanced": True, "two_lines": False}
    line = rules_for(model).entity("finance.journal_line")
    (spec, rule), = line.validations
    assert rule.evaluate(Context(record={"debit": Decimal(1), "credit": Decimal(1)})) is False


# --------------------------------------------------------------------------- located errors


def test_errors_land_on_the_character(project: Any) -> None:
    root = project({"modules/m.yaml": """module: m
entities:
  job:
    fields:
      kind: {type: enum, values: [a, b]}
      cost: {type: decimal}
      plain: {type: int, computed: self.cots + 1}
      single: {type: bool, visible_if: 'self.kind == ''c'''}
      double: {type: bool, visible_if: "self.kind == \\"c\\" or self.cots > 1"}
      folded:
        type: bool
        visible_if: >-
          self.kind == 'a'
            and self.cots > 1
      default_expr: {type: date, default: "=today() + self.cots"}
    validations:
      - rule: |
          self.cost > 0 and
            self.cots < 10
"""})
    got = problems_of(root)
    lines = (root / "modules/m.yaml").read_text().split("\n")
    pointed = [lines[int(p.split(":")[0]) - 1][int(p.split(":")[1].split()[0]) - 1:][:6]
               for p in got]
    # the first mistake of each expression: an unknown field, or an enum code (its quote)
    assert pointed == ["cots +", "''c'''", '"c\\" o', "cots >", 'cots"}', "cots <"]
    assert got[0].startswith("7:41 entities.job.fields.plain.computed: unknown field 'cots'")


def test_expression_location_falls_back_gracefully(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text('a: "x\\ty > 1"\n')
    from metamodel.errors import Problems

    doc = read_yaml(path, "x.yaml", Problems())
    loc = expression_location(doc, ("a",), "x\ty > 1", 4)  # an escape the aligner cannot undo
    assert (loc.line, loc.column) == (1, 9)
    no_text = type("D", (), {"where": doc.where, "texts": {}})()
    assert expression_location(no_text, ("a",), "x", 0) == doc.where(("a",))


def test_incomplete_entities_are_not_checked_twice(project: Any) -> None:
    root = project({"modules/m.yaml": """module: m
entities:
  job:
    fields:
      cost: {type: decmal}
      total: {type: decimal, computed: "self.cost * 2"}
  other:
    fields:
      job: {type: link, to: job}
      note: {type: text, visible_if: "self.job.cost > 0 and self.nope"}
"""})
    got = problems_of(root)
    assert len(got) == 1 and "unknown field type 'decmal'" in got[0]


def test_metamodel_load_alone_does_not_compile_expressions(project: Any) -> None:
    root = project({"modules/m.yaml": "module: m\nentities:\n  t:\n    fields:\n"
                                      "      a: {type: int, computed: self.nope}\n"})
    assert load(root).entity("m.t").fields["a"].computed == "self.nope"
    assert problems_of(root) == ["5:37 entities.t.fields.a.computed: unknown field 'nope' of "
                                 "self (m.t)"]
    with pytest.raises(DefinitionError):
        rules_for(load(root))


def test_virtual_fields_are_in_scope_but_not_columns(project: Any) -> None:
    root = project({"modules/m.yaml": """module: m
entities:
  t:
    fields:
      born: {type: date}
      age: {type: int, computed: "days_between(self.born, today()) // 365", stored: false}
      adult: {type: bool, computed: "self.age >= 18", stored: false}
      note: {type: text, visible_if: "self.adult"}
"""})
    m = load_project(root)
    er = rules_for(m).entity("m.t")
    assert list(er.computed) == ["age", "adult"]
    assert "age" in er.scope.record.fields and "age" not in m.entity("m.t").stored_fields()
    rec: dict[str, Any] = {"born": dt.date(2000, 1, 1)}
    clock = lambda: dt.datetime(2025, 6, 1, tzinfo=dt.UTC)  # noqa: E731
    for name, expr in er.computed.items():
        rec[name] = expr.evaluate(Context(record=rec, clock=clock))
    assert rec["age"] == 25 and rec["adult"] is True
