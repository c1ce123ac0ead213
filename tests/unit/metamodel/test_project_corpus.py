"""Golden tests of the whole project: ``campo validate`` reads modules/, tags/ and layouts and
checks them against each other, every mistake of every language in one run.

Each case is a folder ``tests/fixtures/project/invalid/<case>/`` (``modules/``, ``tags/``)
next to ``<case>.expected``, the exact stderr of ``campo validate`` for it. To accept new
output after a deliberate change, run this and review the diff::

    CAMPO_UPDATE_GOLDEN=1 python -m pytest tests/unit/metamodel/test_project_corpus.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from metamodel import DefinitionError
from metamodel.project import load_project

ROOT = Path(__file__).resolve().parents[3]
INVALID = ROOT / "tests" / "fixtures" / "project" / "invalid"
CASES = sorted(p.name for p in INVALID.iterdir() if p.is_dir())
UPDATE = os.environ.get("CAMPO_UPDATE_GOLDEN") == "1"


def test_every_case_has_its_report() -> None:
    assert len(CASES) >= 5
    assert [c for c in CASES if not (INVALID / f"{c}.expected").is_file()] == []


@pytest.mark.parametrize("case", CASES)
def test_validate_reports_exactly(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(INVALID / case)]) == 1
    out = capsys.readouterr()
    expected = INVALID / f"{case}.expected"
    if UPDATE:
        expected.write_text(out.err, encoding="utf-8")
    assert (out.out, out.err) == ("", expected.read_text(encoding="utf-8"))
    assert "Traceback" not in out.err and "RecursionError" not in out.err


def test_the_repository_validates_with_its_tags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and " site" in out and " tags" in out


def test_a_binding_to_a_missing_entity_fails_where_tags_are_read(tmp_path: Path) -> None:
    """The metamodel's project loader (not only the command) checks bindings."""
    shutil.copytree(INVALID / "binding_unknown_entity", tmp_path / "p")
    with pytest.raises(DefinitionError) as info:
        load_project(tmp_path / "p")
    assert [p.path for p in info.value.problems] == [
        "instances.w1.bind.entity", "instances.w2.bind.entity"]
    (tmp_path / "p" / "tags" / "sites" / "pad.yaml").write_text(
        (tmp_path / "p" / "tags" / "sites" / "pad.yaml").read_text(encoding="utf-8")
        .replace("plant.aset", "plant.asset")
        .replace("showcase.no_such_entity", "plant.asset"), encoding="utf-8")
    project = load_project(tmp_path / "p")
    assert project.tags is not None
    assert {str(i.binding) for i in project.tags.instances.values()} == {
        "plant.asset[code=W1]", "plant.asset[code=W2]"}


def test_serve_checks_bindings_too() -> None:
    """``campo serve`` (and ``campo scada``) load the tags with the same cross-checks."""
    from engine.rules import load_project as load_modules
    from engine.wiring.edge import load_site_tags

    case = INVALID / "binding_unknown_entity"
    with pytest.raises(DefinitionError, match="binding names unknown entity 'plant.aset'"):
        load_site_tags(case, load_modules(case))
