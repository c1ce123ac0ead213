"""Site overlays: what they may change, precedence, and where each part came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from metamodel import DefinitionError, load

REPO = Path(__file__).resolve().parents[3]
PAD = REPO / "sites" / "example_pad"

BASE = """
module: maint
entities:
  work_order:
    label: {es: Orden, en: Order}
    fields:
      title: {type: string, max_length: 40, label: Título}
      total: {type: decimal}
      priority: {type: enum, values: [low, high], default: low}
    validations:
      - {id: positive, rule: "self.total >= 0"}
      - {id: small, rule: "self.total < 1000"}
"""


def overlay(label: str, priority: str, extra: str = "") -> str:
    return f"""overlay: true
module: maint
entities:
  work_order:
    label: {label}
    fields:
      priority: {{default: {priority}}}
{extra}"""


def test_example_pad_overlay(tmp_path: Path) -> None:
    base = load(REPO)
    m = load(REPO, overlays=[PAD])
    wo, base_wo = m.entity("maintenance.work_order"), base.entity("maintenance.work_order")
    assert wo.labels.get("en") == "Work order (Pad 7)"
    assert wo.fields["priority"].default == "high" and base_wo.fields["priority"].default == \
        "normal"
    assert wo.fields["assigned_to"].label.en == "Crew"
    assert wo.fields["assigned_to"].max_length == 64  # the rest of the field is the base's
    assert "permit_number" in wo.fields and "permit_number" not in base_wo.fields
    assert [v.id for v in wo.validations] == ["total_not_negative", "finish_after_start", None]
    assert wo.validations[0].rule == "self.total >= 0 and self.total <= 250000"
    assert m.entity("maintenance.equipment").fields["run_hours"].hidden is True
    assert "maintenance.permit" in m.entities and "maintenance.permit" not in base.entities
    assert m.entity("maintenance.permit").series.template == "PTW-{YY}-{###}"
    assert m.overlays == (str(PAD),) and base.overlays == ()
    # what came from where
    assert wo.where_key("label").file == "sites/example_pad/modules/maintenance.yaml"
    assert wo.where_key("fields", "priority", "default").file.startswith("sites/")
    assert wo.where_key("fields", "priority", "values").file == \
        "modules/maintenance/maintenance.yaml"
    assert wo.where("validations", 0, "rule").file.startswith("sites/")
    assert wo.where("validations", 1, "rule").file.startswith("modules/")


def test_later_overlays_win(project: Any) -> None:
    root = project({"modules/maint.yaml": BASE,
                    "a/modules/o.yaml": overlay("A", "high"),
                    "b/modules/o.yaml": overlay("B", "low")})
    ab = load(root, overlays=[root / "a", root / "b"]).entity("maint.work_order")
    ba = load(root, overlays=[root / "b", root / "a"]).entity("maint.work_order")
    assert (ab.labels.get("en"), ab.fields["priority"].default) == ("B", "low")
    assert (ba.labels.get("en"), ba.fields["priority"].default) == ("A", "high")
    assert ab.where_key("label").file == "b/modules/o.yaml"


def test_validations_append_and_replace_by_id(project: Any) -> None:
    extra = """    validations:
      - {id: small, rule: "self.total < 5000", message: Big}
      - {rule: "self.title != null"}
      - {id: new_rule, rule: "self.total != 13"}
"""
    root = project({"modules/maint.yaml": BASE, "s/modules/o.yaml": overlay("X", "low", extra)})
    ent = load(root, overlays=[root / "s"]).entity("maint.work_order")
    assert [(v.id, v.rule) for v in ent.validations] == [
        ("positive", "self.total >= 0"), ("small", "self.total < 5000"),
        (None, "self.title != null"), ("new_rule", "self.total != 13")]
    assert ent.where("validations", 1, "rule").file == "s/modules/o.yaml"
    assert ent.where("validations", 1, "rule").line == 9


def test_an_entity_without_validations_gets_them(project: Any) -> None:
    base = "module: m\nentities:\n  tank:\n    fields: {level: {type: float}}\n"
    ov = ("overlay: true\nmodule: m\nentities:\n  tank:\n    validations:\n"
          "      - {rule: 'self.level >= 0'}\n")
    root = project({"modules/m.yaml": base, "s/modules/o.yaml": ov})
    ent = load(root, overlays=[root / "s"]).entity("m.tank")
    assert [v.rule for v in ent.validations] == ["self.level >= 0"]
    assert ent.where("validations", 0).file == "s/modules/o.yaml"


def test_plain_module_files_and_roles_in_an_overlay(project: Any) -> None:
    own = "module: pad_log\nentities:\n  entry:\n    fields: {text: {type: text}}\n"
    roles = "overlay: true\nmodule: maint\nroles:\n  pad_lead: {inherits: [supervisor]}\n"
    root = project({"modules/maint.yaml": BASE, "s/modules/own.yaml": own,
                    "s/modules/roles.yaml": roles})
    m = load(root, overlays=[root / "s"])
    assert "pad_log.entry" in m.entities
    assert "supervisor" in m.role_closure("pad_lead")


def test_overlay_problems_are_reported_in_the_overlay(project: Any) -> None:
    bad = overlay("X", "medium", "      titel: {label: T}\n      title: {max_length: 80}\n")
    root = project({"modules/maint.yaml": BASE, "s/modules/o.yaml": bad})
    with pytest.raises(DefinitionError) as info:
        load(root, overlays=[root / "s"])
    got = [(p.location.file, p.path, p.message) for p in info.value.problems]
    assert got == [
        ("s/modules/o.yaml", "entities.work_order.fields.priority.default",
         "default 'medium' is not one of the enum's codes"),
        ("s/modules/o.yaml", "entities.work_order.fields.titel",
         "overlay changes unknown field 'titel' of 'maint.work_order'"),
        ("s/modules/o.yaml", "entities.work_order.fields.title.max_length",
         "'max_length' of an existing field cannot be changed by an overlay"),
    ]
    assert "did you mean 'title'?" in (info.value.problems[1].hint or "")


def test_overlay_folder_problems(project: Any) -> None:
    root = project({"modules/maint.yaml": BASE, "empty/readme.txt": "no modules here"})
    with pytest.raises(DefinitionError) as info:
        load(root, overlays=[root / "missing", root / "empty", root / "empty"])
    assert [(p.location.file, p.message) for p in info.value.problems] == [
        ("empty", "overlay folder has no modules/ folder"),
        ("empty", "overlay folder is given twice"),
        ("missing", "overlay folder does not exist")]


def test_base_files_are_not_changed(project: Any) -> None:
    root = project({"modules/maint.yaml": BASE, "s/modules/o.yaml": overlay("X", "high")})
    before = (root / "modules/maint.yaml").read_text()
    load(root, overlays=[root / "s"])
    assert (root / "modules/maint.yaml").read_text() == before
    assert load(root).entity("maint.work_order").fields["priority"].default == "low"


def test_overlays_change_permission_keys(project: Any) -> None:
    extra = ("      title: {hidden_for: [viewer], readonly_for: [operator]}\n"
             "    scope: \"user.username != null\"\n")
    root = project({"modules/maint.yaml": BASE, "s/modules/o.yaml": overlay("X", "low", extra)})
    ent = load(root, overlays=[root / "s"]).entity("maint.work_order")
    assert ent.fields["title"].hidden_for == ["viewer"]
    assert ent.fields["title"].readonly_for == ["operator"]
    assert ent.fields["title"].max_length == 40
    assert ent.spec.scope == "user.username != null"
    assert ent.where("scope").file == "s/modules/o.yaml"
