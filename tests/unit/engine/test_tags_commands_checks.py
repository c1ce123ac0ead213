"""``campo tags ...`` refuses what ``campo validate`` refuses: a zero scan period (the plan
would divide by it) and bindings to entities the modules do not define."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def test_plan_refuses_a_zero_period(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "tags" / "invalid" / "scan_period_zero", tmp_path / "p")
    assert main(["tags", "plan", "--project", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tags/scan_classes.yaml:3:19: scan_classes.never.period: a scan "
                          "period must be longer than 0, got '0s'\n")
    assert "ZeroDivisionError" not in err and "Traceback" not in err


def test_expand_checks_bindings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "project" / "invalid" / "binding_unknown_entity", tmp_path / "p")
    assert main(["tags", "expand", "--project", str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err
    assert "tags/sites/pad.yaml:5:64: instances.w1.bind.entity: binding names unknown entity " \
           "'plant.aset'" in err
    site = tmp_path / "p" / "tags" / "sites" / "pad.yaml"
    site.write_text(site.read_text(encoding="utf-8").replace("plant.aset", "plant.asset")
                    .replace("showcase.no_such_entity", "plant.asset"), encoding="utf-8")
    assert main(["tags", "expand", "--project", str(tmp_path / "p")]) == 0
    assert "plant.asset[code=W1]" in capsys.readouterr().out
