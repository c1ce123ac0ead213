"""campo show, --overlay and CAMPO_OVERLAYS; campo validate reports expression mistakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.cli import build_parser, main, settings_from
from engine.settings import Settings

REPO = Path(__file__).resolve().parents[3]
PAD = REPO / "sites" / "example_pad"
OVERLAY_FILE = "sites/example_pad/modules/maintenance.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_prints_the_effective_definition_with_origins(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "maintenance.work_order", "--project", str(REPO),
                       "--overlay", str(PAD))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "# maintenance.work_order (table maintenance_work_order)"
    assert lines[1] == f"# overlays: {PAD}"
    label = next(line for line in lines if line.lstrip().startswith("label:"))
    assert "Pad 7" in label and label.endswith(f"# {OVERLAY_FILE}:9:5")
    priority = next(line for line in lines if line.lstrip().startswith("priority:"))
    assert "default: high" in priority
    assert "# modules/maintenance/maintenance.yaml:" in priority
    assert f"; default {OVERLAY_FILE}:11:18" in priority
    number = next(line for line in lines if line.lstrip().startswith("number:"))
    assert OVERLAY_FILE not in number
    rules = [line for line in lines if line.lstrip().startswith("- {") and "rule:" in line]
    assert [OVERLAY_FILE in r for r in rules] == [True, False, True]
    assert "#   computed (in order): total, age_days" in lines
    assert any(line.startswith("#   workflow on status: initial draft; approve: draft -> "
                               "approved") for line in lines)


def test_show_without_overlay_and_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "maintenance.work_order", "--project", str(REPO),
                       "--json")
    assert code == 0
    data = json.loads(out)
    assert data["overlays"] == [] and data["table"] == "maintenance_work_order"
    assert data["definition"]["fields"]["priority"]["default"] == "normal"
    assert data["sources"]["fields.priority.default"].startswith(
        "modules/maintenance/maintenance.yaml:")
    assert data["sources"]["workflow.transitions"].startswith("modules/maintenance/")


def test_show_a_module_and_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "finance", "--project", str(REPO))
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        "finance.account", "finance.journal_entry", "finance.journal_line"]
    code, _, err = run(capsys, "show", "finance.jornal_entry", "--project", str(REPO))
    assert code == 1 and "unknown entity 'finance.jornal_entry'" in err
    assert "did you mean 'finance.journal_entry'?" in err
    code, _, err = run(capsys, "show", "financ", "--project", str(REPO))
    assert code == 1 and "did you mean 'finance'?" in err


def test_validate_with_overlays_from_flags_and_environment(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "validate", str(REPO))
    base_entities = int(out.split(", ")[1].split()[0])
    code, out, _ = run(capsys, "validate", str(REPO), "--overlay", str(PAD))
    assert code == 0 and int(out.split(", ")[1].split()[0]) == base_entities + 1
    monkeypatch.setenv("CAMPO_OVERLAYS", f"{PAD}, ")
    assert Settings().overlays == [PAD]
    code, out, _ = run(capsys, "validate", str(REPO))
    assert code == 0 and int(out.split(", ")[1].split()[0]) == base_entities + 1
    args = build_parser().parse_args(["validate", "--overlay", "a", "--overlay", "b"])
    assert settings_from(args).overlays == [Path("a"), Path("b")]  # the flag wins


def test_validate_reports_expression_mistakes(project: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = project({"modules/m.yaml": "module: m\nentities:\n  t:\n    fields:\n"
                                      "      a: {type: int}\n"
                                      "      b: {type: bool, visible_if: 'self.aa > 1'}\n"})
    code, _, err = run(capsys, "validate", str(root))
    assert code == 1
    assert err.splitlines() == [
        "modules/m.yaml:6:41: entities.t.fields.b.visible_if: unknown field 'aa' of self (m.t)",
        "  hint: did you mean 'a'?", "1 problem in 1 file"]
