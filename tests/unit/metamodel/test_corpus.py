"""Golden tests: every broken project under tests/fixtures/defs/invalid/ and its exact report.

Each case is a folder ``invalid/<case>/modules/...`` next to ``invalid/<case>.expected``, the
full output of ``campo validate`` for it (problems, hints and the summary line). Messages are
part of the contract: a change to any of them shows up here. To accept new output after a
deliberate change, run this and review the diff::

    CAMPO_UPDATE_GOLDEN=1 python -m pytest tests/unit/metamodel/test_corpus.py
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine.rules import load_project
from metamodel import DefinitionError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "defs"
INVALID = FIXTURES / "invalid"
VALID = FIXTURES / "valid"
CASES = sorted(p.name for p in INVALID.iterdir() if p.is_dir())
UPDATE = os.environ.get("CAMPO_UPDATE_GOLDEN") == "1"


def overlays_of(case: Path) -> list[Path]:
    """A case's overlay folders: ``<case>/sites/*``, in name order."""
    sites = case / "sites"
    return sorted(p for p in sites.iterdir() if p.is_dir()) if sites.is_dir() else []


def report_for(case: Path) -> str:
    """What ``campo validate`` prints for a project (problems, then the summary line).

    Expressions are checked too (``engine.rules``), as ``campo validate`` does; a case with
    a ``sites/`` folder is loaded with each of its subfolders as an overlay.
    """
    with pytest.raises(DefinitionError) as info:
        load_project(case, overlays_of(case))
    return info.value.report() + "\n"


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    missing = [c for c in CASES if not (INVALID / f"{c}.expected").is_file()]
    orphans = [p.stem for p in INVALID.glob("*.expected") if p.stem not in CASES]
    assert (missing, orphans) == ([], [])


@pytest.mark.parametrize("case", CASES)
def test_invalid_case_reports_exactly(case: str) -> None:
    got = report_for(INVALID / case)
    expected_file = INVALID / f"{case}.expected"
    if UPDATE:
        expected_file.write_text(got, encoding="utf-8")
    assert got == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES)
def test_invalid_case_lines_are_well_formed(case: str) -> None:
    """Every problem line is `file:line:col: message`, points into its file, leaks nothing."""
    text = report_for(INVALID / case)
    lines = text.rstrip("\n").split("\n")
    assert re.fullmatch(r"\d+ problems? in \d+ files?", lines[-1])
    heads = [line for line in lines[:-1] if not line.startswith("  hint: ")]
    assert heads
    for line in heads:
        m = re.match(r"^((?:modules|sites)/[^:]+):(\d+):(\d+): (.+)$", line)
        assert m, line
        source = (INVALID / case / m.group(1)).read_text(encoding="utf-8").split("\n")
        row, col = int(m.group(2)), int(m.group(3))
        assert 1 <= row <= len(source), line
        assert 1 <= col <= len(source[row - 1]) + 1, line
    for leak in ("function-after", "constrained-", "[key]", "union[", "Input should",
                 "Value error", "pydantic", "Traceback", "NoneType", "<class"):
        assert leak not in text, (leak, case)


def test_summary_counts_problems_and_files() -> None:
    lines = report_for(INVALID / "many_files_sorted").rstrip("\n").split("\n")
    assert lines[-1] == "3 problems in 3 files"
    assert [line.split(":")[0] for line in lines[:-1] if not line.startswith("  ")] == [
        "modules/a/x.yaml", "modules/a/y.yml", "modules/b.yaml"]
